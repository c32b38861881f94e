//! Latency histograms: HdrHistogram with 3 significant digits over 1 ms ..= 1 h, serialized in
//! the V2 format, merged by adding (exact: counts per bucket).

use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

use super::MAX_DURATION_MS;

pub type Latency = Histogram<u64>;

pub fn new_histogram() -> Latency {
    Histogram::new_with_bounds(1, MAX_DURATION_MS, 3).expect("static bounds are valid")
}

/// A duration in integer milliseconds (rounded); decode bounds it to 0 ..= 1 h.
pub fn millis(duration_ms: f64) -> u64 {
    duration_ms.round().clamp(0.0, MAX_DURATION_MS as f64) as u64
}

/// Records integer milliseconds (in range by `millis`: recording cannot fail).
pub fn record(h: &mut Latency, ms: u64) {
    let _ = h.record(ms.min(MAX_DURATION_MS));
}

pub fn serialize(h: &Latency) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = V2Serializer::new().serialize(h, &mut out);
    out
}

pub fn deserialize(bytes: &[u8]) -> Result<Latency, String> {
    let h: Latency = Deserializer::new().deserialize(&mut std::io::Cursor::new(bytes)).map_err(|e| format!("{e:?}"))?;
    // Normalize the bounds so that adds never hit a range error.
    let mut out = new_histogram();
    out.add(&h).map_err(|e| format!("{e:?}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_merges_exactly() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        for v in 0..1000 {
            record(if v % 2 == 0 { &mut a } else { &mut b }, millis(v as f64));
        }
        let mut merged = deserialize(&serialize(&a)).unwrap();
        merged.add(deserialize(&serialize(&b)).unwrap()).unwrap();
        assert_eq!(merged.len(), 1000);
        assert_eq!(merged.value_at_quantile(0.5), 499);
        assert_eq!(merged.max(), 999);
    }
}
