//! How the views store money, durations and many ids' counters in one row, and how a trace's
//! bytes are held and stored: the encodings shared by decoding (ranges), folding (sums),
//! applying (column types) and the API (formatting). At the bottom of the crate: every
//! other module imports it, it imports none of them.

pub mod body;
pub mod latency;
pub mod money;
pub mod wide;

/// Largest accepted `totalDurationMs` (one hour); the latency histograms cover 1 ms ..= this.
pub const MAX_DURATION_MS: u64 = 3_600_000;
