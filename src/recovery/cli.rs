//! The `rebuild` and `dead-letters` subcommands: their arguments and what they print.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::dead_letters::{self, Filter, Replayer};
use super::rebuild::{self, RebuildOptions};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    /// Start over, dropping an interrupted rebuild's shadow, instead of resuming it.
    #[arg(long)]
    restart: bool,
    /// Rebuild even though retention has deleted the start of some partition: the rebuilt views
    /// then lack those events.
    #[arg(long)]
    allow_truncated_log: bool,
    /// Start the swap once the rebuilt views are this many messages behind live ingest.
    #[arg(long, default_value_t = 10_000, value_name = "MESSAGES")]
    swap_within: i64,
    /// Longest pause of live ingest during the swap; past it the swap gives up and tries again.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    max_pause_ms: u64,
}

#[derive(Debug, clap::Subcommand)]
pub enum DeadLetterCommand {
    /// Re-apply dead letters through ingest's decode path, exactly once (after a fix or a
    /// raised limit); each is marked with its outcome and kept.
    Replay(Selection),
    /// Delete dead letters, replayed or not.
    Purge {
        #[command(flatten)]
        selection: Selection,
        /// Purge every dead letter when no filter is given (a guard against a forgotten filter).
        #[arg(long)]
        all: bool,
    },
}

/// Which dead letters: every filter given holds.
#[derive(Debug, clap::Args)]
pub struct Selection {
    /// Only this tenant's (`""`: those attributed to no tenant).
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long)]
    topic: Option<String>,
    /// A reason code as listed (`too_large`, `rejected_by_database`, …).
    #[arg(long)]
    reason: Option<String>,
    /// Received at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Only this id (repeatable).
    #[arg(long = "id")]
    ids: Vec<i64>,
}

impl From<Selection> for Filter {
    fn from(s: Selection) -> Filter {
        Filter { tenant: s.tenant, topic: s.topic, reason: s.reason, since: s.since, ids: s.ids }
    }
}

pub async fn rebuild(
    settings: &Settings,
    pool: &PgPool,
    args: RebuildArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let options = RebuildOptions {
        restart: args.restart,
        allow_truncated_log: args.allow_truncated_log,
        swap_within: args.swap_within,
        max_pause: Duration::from_millis(args.max_pause_ms),
    };
    match rebuild::run(settings, pool, options, shutdown).await? {
        Some(r) => println!(
            "rebuild {} done: {} messages in {:.1} s, live ingest paused {} ms for the swap; the views before it \
             are in schema {} (DROP SCHEMA {} CASCADE frees them)",
            r.id,
            r.messages,
            r.elapsed.as_secs_f64(),
            r.paused.as_millis(),
            r.retired,
            r.retired
        ),
        None => println!("rebuild stopped; run `decision-views rebuild` again to resume it"),
    }
    Ok(())
}

pub async fn dead_letters(settings: &Settings, pool: &PgPool, command: DeadLetterCommand) -> anyhow::Result<()> {
    match command {
        DeadLetterCommand::Replay(selection) => {
            let report = Replayer::for_deployment(settings)?.replay(pool, &selection.into()).await?;
            for o in &report.outcomes {
                println!("{:>10}  {:<8}  {}", o.id, o.outcome, o.detail);
            }
            println!(
                "{} matched: {} applied, {} rejected again, {} skipped (held by another replay)",
                report.matched, report.applied, report.rejected, report.skipped
            );
        }
        DeadLetterCommand::Purge { selection, all } => {
            let filter: Filter = selection.into();
            anyhow::ensure!(
                all || filter.tenant.is_some() || filter.narrows(),
                "no filter given: pass --all to purge every dead letter"
            );
            println!("purged {} dead letters", dead_letters::purge(pool, &filter).await?);
        }
    }
    Ok(())
}
