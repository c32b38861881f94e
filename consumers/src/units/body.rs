//! How a decision trace's bytes are held and stored: one zstd frame at level 1
//! (`decision_traces.body_zstd`). A batch holds its traces' payloads this way from the moment
//! they are read, so the raw-trace store writes the very bytes the consumer thread made.

use std::cell::RefCell;

/// zstd level 1, the fastest: the point is to spare PostgreSQL the jsonb parse and pglz, and a
/// batch the memory of its payloads, not the last byte.
const LEVEL: i32 = 1;

thread_local! {
    /// One compression context per thread: creating one per trace was a visible share of the
    /// ingest's own CPU (`ZSTD_createCCtx` in the profile).
    static CONTEXT: RefCell<zstd::bulk::Compressor<'static>> =
        RefCell::new(zstd::bulk::Compressor::new(LEVEL).expect("zstd context"));
}

/// A trace's stored bytes.
pub fn compress(payload: &[u8]) -> Vec<u8> {
    // Compressing into memory fails only on allocation failure, which aborts anyway.
    CONTEXT.with(|c| c.borrow_mut().compress(payload).expect("zstd compression into memory"))
}

/// The published bytes of a stored trace.
pub fn decompress(stored: &[u8]) -> std::io::Result<Vec<u8>> {
    zstd::stream::decode_all(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_come_back_exactly() {
        let trace = br#"{"id":"tr1","n":123456789012345678901234567890,"x":1e2,"s":"\u00e9"}"#;
        let stored = compress(trace);
        assert_eq!(decompress(&stored).unwrap(), trace);
        assert_eq!(decompress(&compress(b"")).unwrap(), b"");
        assert!(decompress(b"not zstd").is_err());
    }
}
