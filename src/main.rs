use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use decision_views::api::auth::Role;
use decision_views::publish::{self, PublishArgs};
use decision_views::recovery::cli::{self as recovery, DeadLetterCommand, RebuildArgs};
use decision_views::settings::{help, Settings};
use decision_views::startup::{cancel_on_signal, connect, Application, Mode};

/// jemalloc instead of glibc malloc: ingest allocates decoded batches on the consumer thread
/// and frees them on the committer's. Peak RSS ingesting 5 KB traces was 466 MiB with glibc and
/// 226 MiB with jemalloc and a 1 s decay (`DV_BENCH_STAGES=ingest cargo bench --bench standard`,
/// BENCHMARKS.md "Memory"; docs/guarantees.md 7 bars 300 MB).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exactly-once Kafka → PostgreSQL views and the dashboard API of a next-best-action platform.
/// Configuration comes from the environment variables listed below, or a TOML file of them.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file of settings, keyed by the variables' names below (`DV_HTTP_ADDR = "…"`); the
    /// environment overrides it.
    #[arg(long, global = true, env = "DV_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// A tenant key's role.
#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Viewer,
    Editor,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Editor => Role::Editor,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Ingest and API in one process (the default).
    Run,
    /// Only the Kafka consumers.
    Ingest,
    /// Only the HTTP API.
    Api,
    /// Apply the database migrations and exit.
    Migrate,
    /// Create an API key and print it (it is shown only this once).
    CreateApiKey {
        /// The tenant whose data the key reads.
        #[arg(long, required_unless_present = "platform", conflicts_with = "platform")]
        tenant: Option<String>,
        /// What the key may do.
        #[arg(long, value_enum, default_value = "viewer", conflicts_with = "platform")]
        role: RoleArg,
        /// A platform operator key: bound to no tenant, it reads only GET /api/v1/ingest/status
        /// (partitions, offsets and lag of every tenant's topics), never tenant data.
        #[arg(long)]
        platform: bool,
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List API keys (ids, tenants, roles, names, creation and revocation times; never the keys).
    ListApiKeys {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke an API key by its id (as listed): it stops working on every API replica within 5 s.
    RevokeApiKey {
        #[arg(long)]
        id: String,
    },
    /// Rebuild the views from the retained Kafka log beside the live ones, then swap them in
    /// whole (live ingest and the API keep running); shows its progress, resumable.
    Rebuild(RebuildArgs),
    /// Replay or purge dead letters.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
    /// Publish a synthetic workload to Kafka.
    Publish(PublishArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    decision_views::telemetry::init_tracing();
    // The epilogue of every command lists every DV_* variable with its default.
    let mut command = Cli::command().after_help(help::text());
    let names: Vec<String> = command.get_subcommands().map(|c| c.get_name().to_owned()).collect();
    for name in names {
        command = command.mut_subcommand(name, |c| c.after_help(help::text()));
    }
    let cli = Cli::from_arg_matches(&command.get_matches())?;
    let settings = Settings::load(cli.config.as_deref())?;
    let mode = match cli.command.unwrap_or(Command::Run) {
        Command::Run => Mode::All,
        Command::Ingest => Mode::Ingest,
        Command::Api => Mode::Api,
        Command::Migrate => {
            let pool = connect(&settings).await?;
            decision_views::MIGRATOR.run(&pool).await?;
            println!("migrations applied");
            return Ok(());
        }
        Command::ListApiKeys { tenant } => {
            let pool = connect(&settings).await?;
            decision_views::MIGRATOR.run(&pool).await?;
            println!("{:<16}  {:<16}  {:<8}  {:<20}  {:<25}  revoked", "id", "tenant", "role", "name", "created");
            for k in decision_views::keys::list(&pool, tenant.as_deref()).await? {
                let revoked = k.revoked_at.map_or("-".to_string(), |t| t.to_rfc3339());
                let tenant = k.tenant_id.unwrap_or_else(|| "(platform)".into());
                println!(
                    "{:<16}  {tenant:<16}  {:<8}  {:<20}  {:<25}  {revoked}",
                    k.id,
                    k.role,
                    k.name,
                    k.created_at.to_rfc3339()
                );
            }
            return Ok(());
        }
        Command::RevokeApiKey { id } => {
            let pool = connect(&settings).await?;
            decision_views::MIGRATOR.run(&pool).await?;
            anyhow::ensure!(decision_views::keys::revoke(&pool, &id, None).await?, "no active key with id {id}");
            println!("revoked {id}: it stops working on every API replica within 5 s");
            return Ok(());
        }
        Command::CreateApiKey { tenant, role, platform, name } => {
            let pool = connect(&settings).await?;
            decision_views::MIGRATOR.run(&pool).await?;
            let key = match tenant {
                Some(tenant) if !platform => {
                    decision_views::keys::create_api_key(&pool, &tenant, role.into(), &name).await?
                }
                // clap requires --tenant unless --platform, and refuses both.
                _ => decision_views::keys::create_platform_key(&pool, &name).await?,
            };
            println!("{key}");
            return Ok(());
        }
        Command::Rebuild(args) => {
            let pool = connect(&settings).await?;
            decision_views::MIGRATOR.run(&pool).await?;
            let shutdown = tokio_util::sync::CancellationToken::new();
            cancel_on_signal(shutdown.clone());
            return recovery::rebuild(&settings, &pool, args, shutdown).await;
        }
        Command::DeadLetters { command } => {
            let pool = connect(&settings).await?;
            decision_views::MIGRATOR.run(&pool).await?;
            return recovery::dead_letters(&settings, &pool, command).await;
        }
        Command::Publish(args) => return publish::run(&settings, args).await,
    };
    let app = Application::build(settings, mode).await?;
    if let Some(port) = app.port() {
        tracing::info!(port, ?mode, "listening");
    }
    cancel_on_signal(app.shutdown_token());
    app.run_until_stopped().await
}
