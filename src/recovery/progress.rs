//! A rebuild's progress: where the shadow stands in each partition against the log's end and
//! against live ingest, its rate and the time left; drawn in the terminal (indicatif: the
//! whole and a bar per partition) and written to `rebuilds` for `GET /api/v1/ingest/status`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use consumers::apply::StoredOffset;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::log::Extents;

/// One partition's position in the rebuild.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionProgress {
    pub topic: String,
    pub partition: i32,
    /// The next offset the shadow applies (the log's start until its first commit).
    pub position: i64,
    /// The log's end when last read.
    pub end: i64,
}

/// The rebuild at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub partitions: Vec<PartitionProgress>,
    /// Messages applied to the shadow (or dead-lettered there) since the log's start.
    pub applied: i64,
    /// Messages from the shadow's positions to the log's end.
    pub remaining: i64,
    /// Messages live ingest has committed that the shadow has not: the swap waits for this to
    /// be small, then for zero.
    pub behind_live: i64,
    /// Partitions live ingest has applied something of and the shadow nothing yet (its
    /// pipeline has not joined, or not reached them): no swap before these are started.
    pub unstarted: usize,
}

type Offsets = BTreeMap<(String, i32), StoredOffset>;

impl Snapshot {
    pub fn of(log: &Extents, shadow: &Offsets, live: &Offsets) -> Snapshot {
        let mut s = Snapshot { partitions: Vec::new(), applied: 0, remaining: 0, behind_live: 0, unstarted: 0 };
        for ((topic, partition), &(low, high)) in log {
            let key = (topic.clone(), *partition);
            let position = shadow.get(&key).map_or(low, |o| o.next_offset);
            let live_at = live.get(&key).map_or(low, |o| o.next_offset);
            s.applied += (position - low).max(0);
            s.remaining += (high.max(live_at) - position).max(0);
            s.behind_live += (live_at - position).max(0);
            s.unstarted += usize::from(live_at > low && !shadow.contains_key(&key));
            s.partitions.push(PartitionProgress { topic: topic.clone(), partition: *partition, position, end: high });
        }
        s
    }

    /// Whether the shadow has applied everything live ingest had committed at `live`.
    pub fn reached(shadow: &Offsets, live: &Offsets) -> bool {
        live.iter().all(|(k, l)| shadow.get(k).is_some_and(|s| s.next_offset >= l.next_offset))
    }
}

/// Rate and time left, smoothed; the terminal's bars: the whole and one per partition.
pub struct Meter {
    bars: MultiProgress,
    total: ProgressBar,
    partitions: BTreeMap<(String, i32), ProgressBar>,
    last: Option<(Instant, i64)>,
    rate: Option<f64>,
    last_log: Instant,
}

impl Default for Meter {
    fn default() -> Meter {
        // Drawn only on a terminal (indicatif hides itself otherwise); a log line every 10 s
        // tells the totals to a process whose output is collected.
        let bars = MultiProgress::new();
        let total = bars.add(ProgressBar::new(0));
        total.set_style(style(
            "{spinner} rebuild [{elapsed_precise}] [{wide_bar}] {human_pos}/{human_len} messages  {msg}",
        ));
        Meter { bars, total, partitions: BTreeMap::new(), last: None, rate: None, last_log: Instant::now() }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("a valid template")
}

impl Meter {
    /// Events per second and seconds left, once two readings are apart.
    pub fn update(&mut self, s: &Snapshot, stage: &str) -> (Option<f64>, Option<f64>) {
        let now = Instant::now();
        if let Some((t, applied)) = self.last {
            let dt = now.duration_since(t).as_secs_f64();
            if dt > 0.0 {
                let r = (s.applied - applied).max(0) as f64 / dt;
                // Exponential smoothing over a few readings: a batch lands in one of them.
                self.rate = Some(self.rate.map_or(r, |old| 0.7 * old + 0.3 * r));
            }
        }
        self.last = Some((now, s.applied));
        let eta = self.rate.filter(|r| *r > 0.0).map(|r| s.remaining as f64 / r);
        self.total.set_length((s.applied + s.remaining) as u64);
        self.total.set_position(s.applied as u64);
        let rate = self.rate.map_or("-".into(), |r| format!("{r:.0}/s"));
        let left = eta.map_or("-".into(), |e| format!("{:.0}s", e.ceil()));
        self.total.set_message(format!("{rate}  eta {left}  behind live {}  {stage}", s.behind_live));
        for p in &s.partitions {
            let bar = self.partitions.entry((p.topic.clone(), p.partition)).or_insert_with(|| {
                let bar = self.bars.add(ProgressBar::new(0));
                bar.set_style(style("  {prefix:<40} [{bar:30}] {pos}/{len}"));
                bar.set_prefix(format!("{}[{}]", p.topic, p.partition));
                bar
            });
            bar.set_length(p.end.max(p.position) as u64);
            bar.set_position(p.position as u64);
        }
        self.total.tick();
        if now.duration_since(self.last_log) >= Duration::from_secs(10) {
            self.last_log = now;
            tracing::info!(applied = s.applied, remaining = s.remaining, behind_live = s.behind_live, rate = %rate, eta = %left, stage, "rebuild progress");
        }
        (self.rate, eta)
    }

    pub fn finish(&self, message: String) {
        for bar in self.partitions.values() {
            bar.finish();
        }
        self.total.finish_with_message(message);
    }
}

/// Writes the progress to the rebuild's row.
pub async fn record(
    pool: &PgPool,
    id: i64,
    s: &Snapshot,
    rate: Option<f64>,
    eta: Option<f64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE rebuilds SET applied = $2, remaining = $3, events_per_second = $4, eta_seconds = $5,
                partitions = $6, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(s.applied)
    .bind(s.remaining)
    .bind(rate)
    .bind(eta)
    .bind(sqlx::types::Json(&s.partitions))
    .execute(pool)
    .await?;
    Ok(())
}

/// The latest rebuild as `GET /api/v1/ingest/status` shows it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebuildStatus {
    pub id: i64,
    /// `building`, `swapping`, `done`, `failed` (see `detail`) or `abandoned`.
    pub state: String,
    pub started_at: DateTime<Utc>,
    /// When the rebuilding process last wrote this (about every second while it runs).
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Messages applied to the rebuilt views so far…
    pub applied: i64,
    /// …and left to the log's end.
    pub remaining: Option<i64>,
    pub events_per_second: Option<f64>,
    pub eta_seconds: Option<f64>,
    #[schema(value_type = Vec<PartitionProgress>)]
    pub partitions: sqlx::types::Json<Vec<PartitionProgress>>,
    pub detail: Option<String>,
}

/// The latest rebuild, if any ever ran.
pub async fn latest(pool: &PgPool) -> Result<Option<RebuildStatus>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, state, started_at, updated_at, finished_at, applied, remaining, events_per_second,
                eta_seconds, partitions, detail
           FROM rebuilds ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn at(next: i64) -> StoredOffset {
        StoredOffset { next_offset: next, event_time_watermark: None, last_commit_at: Utc::now() }
    }

    #[test]
    fn positions_count_from_the_log_start() {
        let log: Extents = [(("t".into(), 0), (10, 100)), (("t".into(), 1), (0, 50))].into();
        let shadow: Offsets = [(("t".into(), 0), at(40))].into();
        let live: Offsets = [(("t".into(), 0), at(100)), (("t".into(), 1), at(30))].into();
        let s = Snapshot::of(&log, &shadow, &live);
        assert_eq!((s.applied, s.remaining, s.behind_live, s.unstarted), (30, 60 + 50, 60 + 30, 1));
        assert_eq!(s.partitions[1], PartitionProgress { topic: "t".into(), partition: 1, position: 0, end: 50 });
        assert!(!Snapshot::reached(&shadow, &live));
        let caught: Offsets = [(("t".into(), 0), at(100)), (("t".into(), 1), at(31))].into();
        assert!(Snapshot::reached(&caught, &live));
    }
}
