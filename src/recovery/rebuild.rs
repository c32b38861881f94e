//! `decision-views rebuild`: the views again from the retained Kafka log, built beside the
//! live ones and swapped in whole.
//!
//! 1. A shadow schema made by the migrations ([`shadow`]); a rebuild that was interrupted is
//!    resumed from where its shadow stands (`--restart` starts over).
//! 2. The ordinary ingest pipeline, in a consumer group of its own, writes the shadow from the
//!    log's start, the catalog and the segment memberships first ([`References`]): the same decode, dedup, dead letters and offsets, committed together, so
//!    exactly-once holds in the shadow as it does live, across crashes and restarts.
//! 3. Once the shadow is within `swap_within` messages of live ingest, live ingest is paused
//!    (the swap holds `consumer_offsets` in EXCLUSIVE mode: readers go on, the next batch's
//!    offset compare-and-set waits), the shadow catches up with the paused position, its
//!    pipeline stops, and one transaction moves the live relations to `dv_retired_<id>` and the
//!    shadow's to `public`. Live ingest resumes on the new tables: its next batch's
//!    compare-and-set finds the shadow's offsets, at or past its own, and where they are past
//!    it resyncs from them (the fencing every ownership change goes through), so no message is
//!    applied twice or skipped.
//!
//! The pause is bounded (`max_pause`); past it the swap gives up, ingest resumes, and it tries
//! again once the shadow is close again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consumers::apply::{load_offsets, StoredOffset};
use consumers::events::TopicKind;
use consumers::kafka::IngestConfig;
use sqlx::{Acquire, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::log::{Extents, Log};
use super::progress::{record, Meter, Snapshot};
use super::shadow;
use crate::settings::Settings;

/// What `rebuild` is asked to do.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// Drop an interrupted rebuild's shadow and start over instead of resuming it.
    pub restart: bool,
    /// Rebuild even though retention has deleted the start of some partition (the views then
    /// lose those events).
    pub allow_truncated_log: bool,
    /// Pause live ingest for the swap once the shadow is this many messages behind it.
    pub swap_within: i64,
    /// Longest pause of live ingest before the swap gives up and tries again later.
    pub max_pause: Duration,
}

/// How a rebuild ended.
#[derive(Debug)]
pub struct Rebuilt {
    pub id: i64,
    /// Where the views before it are kept (`DROP SCHEMA … CASCADE` frees the space).
    pub retired: String,
    pub messages: i64,
    pub elapsed: Duration,
    /// How long live ingest was paused for the swap.
    pub paused: Duration,
}

const ONE_AT_A_TIME: &str = "SELECT pg_try_advisory_lock(hashtext('decision-views rebuild'))";

/// Rebuilds the views; `Ok(None)` when `shutdown` stopped it first (the shadow is kept and the
/// next `rebuild` resumes it).
/// `public`: a pool of the live database, migrated.
pub async fn run(
    settings: &Settings,
    public: &PgPool,
    options: RebuildOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<Rebuilt>> {
    let started = Instant::now();
    let public = public.clone();
    // Held by this connection for the whole rebuild.
    let mut guard = public.acquire().await?.detach();
    let alone: bool = sqlx::query_scalar(ONE_AT_A_TIME).fetch_one(&mut guard).await?;
    anyhow::ensure!(alone, "another rebuild is running against this database");

    let topics: Vec<String> = settings.kafka.topics.values().cloned().collect();
    let log = Arc::new(Log::new(settings.kafka.client())?);
    let extents = extents(&log, &topics).await?;
    let truncated: Vec<String> = extents
        .iter()
        .filter(|(_, (low, _))| *low > 0)
        .map(|((t, p), (low, _))| format!("{t}[{p}] from {low}"))
        .collect();
    anyhow::ensure!(
        truncated.is_empty() || options.allow_truncated_log,
        "retention has deleted the start of {}: a rebuild would lose those events; \
         --allow-truncated-log rebuilds from what is retained",
        truncated.join(", ")
    );

    let (id, schema) = begin(&public, options.restart).await?;
    let shadow_pool = shadow::pool(settings, &schema, settings.database.max_connections).await?;
    shadow::prepare(&public, &schema, &shadow_pool).await?;
    tracing::info!(id, schema, "rebuilding the views from the log's start");

    let mut config = settings.ingest_config();
    config.group_id = format!("{}.rebuild-{id}", config.group_id);
    config.instance_id = format!("{}-rebuild-{id}", config.instance_id);
    let first = References::of(&config, &extents);
    let mut references_done = first.done(&shadow_pool).await?;
    let spawn = |config: &IngestConfig, stop: CancellationToken| -> JoinHandle<anyhow::Result<()>> {
        tokio::spawn(consumers::kafka::run(config.clone(), shadow_pool.clone(), Arc::default(), stop))
    };
    let mut stop = shutdown.child_token();
    let mut pipeline = spawn(if references_done { &config } else { &first.config }, stop.clone());
    if !references_done {
        tracing::info!(topics = ?first.config.topic_names(), "rebuilding the catalog and the segment memberships first");
    }
    let mut meter = Meter::default();
    let retired = format!("dv_retired_{id}");
    let tick = Duration::from_millis(500);
    loop {
        if shutdown.is_cancelled() {
            stop.cancel();
            pipeline.await??;
            meter.finish("stopped: `rebuild` resumes it".into());
            return Ok(None);
        }
        if pipeline.is_finished() {
            let e = pipeline.await?.err().unwrap_or_else(|| anyhow::anyhow!("the rebuild pipeline stopped"));
            fail(&public, id, &e).await;
            return Err(e);
        }
        let s = snapshot(&log, &topics, &shadow_pool, &public).await?;
        let stage = if references_done { "building" } else { "catalog and memberships first" };
        let (rate, eta) = meter.update(&s, stage);
        record(&public, id, &s, rate, eta).await?;
        if !references_done {
            if first.done(&shadow_pool).await? {
                stop.cancel();
                pipeline.await??;
                references_done = true;
                stop = shutdown.child_token();
                pipeline = spawn(&config, stop.clone());
            }
            tokio::time::sleep(tick).await;
            continue;
        }
        if s.behind_live > options.swap_within || s.unstarted > 0 {
            tokio::time::sleep(tick).await;
            continue;
        }
        let target =
            Target { public: &public, shadow: &shadow_pool, schema: &schema, retired: &retired, id, topics: &topics };
        let swapped = match try_swap(&target, &options, &stop, pipeline).await {
            Ok(s) => s,
            Err(e) => {
                fail(&public, id, &e).await;
                return Err(e);
            }
        };
        match swapped {
            Swap::Done(messages, paused) => {
                meter.finish(format!("done: {messages} messages; the views before it are in schema {retired}"));
                return Ok(Some(Rebuilt { id, retired, messages, elapsed: started.elapsed(), paused }));
            }
            Swap::Later(still_running) => pipeline = still_running,
            Swap::Stopped => {
                // The pipeline was stopped for a swap that could not take its locks: go on.
                stop = shutdown.child_token();
                pipeline = spawn(&config, stop.clone());
            }
        }
        tokio::time::sleep(tick).await;
    }
}

/// The topics other events are processed against: the catalog (tenant settings among it) and
/// segment memberships.
const REFERENCES: [TopicKind; 2] = [TopicKind::Catalog, TopicKind::SegmentMembership];

/// The [`REFERENCES`] topics, applied to the shadow up to where the log ends at the start
/// before any other topic. Ingest reads its topics at once, so a rebuild left to it would meet
/// many traces before their tenant's settings or their customer's membership events (published
/// long before them, and applied before them live): SPEC 2.4 counts a trace in the segments of
/// its customer *at processing time*, so those would count in none. Applied first, every event
/// of the log is processed with the settings and memberships of the rebuild's start: for the
/// usual history (memberships added before their customers' events) that is what live ingest
/// counted, and whatever the history, a rebuild decides the same every time.
struct References {
    /// The ingest configuration of these topics alone.
    config: IngestConfig,
    /// Their partitions holding messages, and where each ended at the start.
    end: Vec<((String, i32), i64)>,
}

impl References {
    fn of(config: &IngestConfig, extents: &Extents) -> References {
        let mut first = config.clone();
        first.topics.retain(|_, kind| REFERENCES.contains(kind));
        first.group_id = format!("{}.references", config.group_id);
        let names = first.topic_names();
        let end = extents
            .iter()
            .filter(|((t, _), (low, high))| names.contains(t) && high > low)
            .map(|(k, (_, high))| (k.clone(), *high))
            .collect();
        References { config: first, end }
    }

    async fn done(&self, shadow: &PgPool) -> Result<bool, sqlx::Error> {
        let at = load_offsets(shadow, &self.config.topic_names()).await?;
        Ok(self.end.iter().all(|(k, high)| at.get(k).is_some_and(|o| o.next_offset >= *high)))
    }
}

enum Swap {
    /// Swapped: messages applied, and how long live ingest was paused.
    Done(i64, Duration),
    /// Not now; the pipeline still runs.
    Later(JoinHandle<anyhow::Result<()>>),
    /// Not now; the pipeline was stopped.
    Stopped,
}

/// What a swap replaces with what.
struct Target<'a> {
    public: &'a PgPool,
    shadow: &'a PgPool,
    schema: &'a str,
    retired: &'a str,
    id: i64,
    topics: &'a [String],
}

/// Pauses live ingest, lets the shadow reach its position, stops the shadow's pipeline and
/// swaps, all within `options.max_pause`; otherwise undoes the pause.
async fn try_swap(
    t: &Target<'_>,
    options: &RebuildOptions,
    stop: &CancellationToken,
    pipeline: JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<Swap> {
    let (public, schema, retired, id) = (t.public, t.schema, t.retired, t.id);
    let deadline = Instant::now() + options.max_pause;
    let mut conn = public.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query(&format!("SET LOCAL lock_timeout = '{}ms'", options.max_pause.as_millis())).execute(&mut *tx).await?;
    // From here live ingest's next commit waits: its first statement updates this table.
    if let Err(e) = sqlx::query("LOCK TABLE public.consumer_offsets IN EXCLUSIVE MODE").execute(&mut *tx).await {
        tracing::info!(error = %e, "live ingest could not be paused for the swap; trying again");
        return Ok(Swap::Later(pipeline));
    }
    let paused = Instant::now();
    let live = offsets(&mut tx, t.topics).await?;
    loop {
        let shadow_at = load_offsets(t.shadow, t.topics).await?;
        if Snapshot::reached(&shadow_at, &live) {
            break;
        }
        if Instant::now() >= deadline || pipeline.is_finished() {
            tracing::info!("the shadow did not reach live ingest within the pause; resuming live ingest");
            return Ok(Swap::Later(pipeline));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    pipeline.await??;
    sqlx::query("UPDATE rebuilds SET state = 'swapping', updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(public)
        .await?;
    tracing::info!(id, "the shadow has reached live ingest, which is paused: swapping");
    let left = || deadline.saturating_duration_since(Instant::now());
    while !shadow::lock(&mut tx, schema, 200).await? {
        if left().is_zero() {
            tracing::info!("the swap could not take its locks within the pause; resuming");
            sqlx::query("UPDATE rebuilds SET state = 'building' WHERE id = $1").bind(id).execute(public).await?;
            return Ok(Swap::Stopped);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shadow::swap(&mut tx, schema, retired).await?;
    let messages: i64 = sqlx::query_scalar(
        "UPDATE rebuilds SET state = 'done', finished_at = now(), updated_at = now(), remaining = 0,
                detail = 'the views before it are in schema ' || $2
          WHERE id = $1 RETURNING applied",
    )
    .bind(id)
    .bind(retired)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Swap::Done(messages, paused.elapsed()))
}

/// The rebuild to run: the interrupted one, or a new one.
async fn begin(public: &PgPool, restart: bool) -> anyhow::Result<(i64, String)> {
    let open: Option<(i64, String)> = sqlx::query_as(
        "SELECT id, schema_name FROM rebuilds WHERE state IN ('building', 'swapping', 'failed') ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(public)
    .await?;
    if let Some((id, schema)) = open {
        if !restart && shadow::exists(public, &schema).await? {
            sqlx::query("UPDATE rebuilds SET state = 'building', detail = NULL, updated_at = now() WHERE id = $1")
                .bind(id)
                .execute(public)
                .await?;
            tracing::info!(id, schema, "resuming an interrupted rebuild (--restart starts over)");
            return Ok((id, schema));
        }
    }
    let stale: Vec<String> = sqlx::query_scalar(
        "UPDATE rebuilds SET state = 'abandoned', finished_at = now(), updated_at = now()
          WHERE state IN ('building', 'swapping', 'failed') RETURNING schema_name",
    )
    .fetch_all(public)
    .await?;
    for schema in stale {
        shadow::drop(public, &schema).await?;
    }
    let id: i64 = sqlx::query_scalar("INSERT INTO rebuilds (schema_name, state) VALUES ('', 'building') RETURNING id")
        .fetch_one(public)
        .await?;
    let schema = format!("dv_rebuild_{id}");
    sqlx::query("UPDATE rebuilds SET schema_name = $2 WHERE id = $1").bind(id).bind(&schema).execute(public).await?;
    Ok((id, schema))
}

async fn fail(public: &PgPool, id: i64, e: &anyhow::Error) {
    let r = sqlx::query("UPDATE rebuilds SET state = 'failed', detail = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(format!("{e:#}"))
        .execute(public)
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "could not record the rebuild's failure");
    }
}

async fn extents(log: &Arc<Log>, topics: &[String]) -> anyhow::Result<Extents> {
    let (log, topics) = (log.clone(), topics.to_vec());
    tokio::task::spawn_blocking(move || log.extents(&topics)).await?
}

async fn snapshot(log: &Arc<Log>, topics: &[String], shadow: &PgPool, public: &PgPool) -> anyhow::Result<Snapshot> {
    let extents = extents(log, topics).await?;
    let shadow_at = load_offsets(shadow, topics).await?;
    let live = load_offsets(public, topics).await?;
    Ok(Snapshot::of(&extents, &shadow_at, &live))
}

type Row = (String, i32, i64, Option<chrono::DateTime<chrono::Utc>>, chrono::DateTime<chrono::Utc>);

/// Live ingest's offsets of `topics`, read in the swap's transaction (so they cannot move any
/// more).
async fn offsets(
    conn: &mut sqlx::PgConnection,
    topics: &[String],
) -> Result<BTreeMap<(String, i32), StoredOffset>, sqlx::Error> {
    let rows: Vec<(String, i32, StoredOffset)> = sqlx::query_as::<_, Row>(
        "SELECT topic, partition, next_offset, event_time_watermark, last_commit_at
           FROM public.consumer_offsets WHERE topic = ANY($1)",
    )
    .bind(topics)
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|(t, p, next_offset, event_time_watermark, last_commit_at)| {
        (t, p, StoredOffset { next_offset, event_time_watermark, last_commit_at })
    })
    .collect();
    Ok(rows.into_iter().map(|(t, p, o)| ((t, p), o)).collect())
}
