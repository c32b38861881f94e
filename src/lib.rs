//! decision-views: Kafka → exactly-once PostgreSQL views → dashboard API.
//!
//! - [`settings`]: the one typed configuration, from the environment.
//! - [`startup`]: builds the application (ingest, API or both) and runs it until stopped.
//! - [`api`]: the axum routes.
//! - [`explain`]: exact TreeSHAP over XGBoost models, for the decision SHAP endpoint.
//! - [`keys`]: API key creation.
//! - [`narrative`]: decision narratives and their providers; [`store`]: the byte cache (Redis or
//!   in-process) that the response cache and the narratives keep entries in.
//! - [`publish`]: the synthetic workload publisher.
//! - [`recovery`]: rebuild the views from the log; replay or purge dead letters.
//!
//! Ingest itself (decode, fold, apply) lives in the `consumers` crate.

pub mod api;
pub mod explain;
pub mod keys;
pub mod narrative;
pub mod publish;
pub mod recovery;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;

/// The migrations of this build, embedded: applied at start-up and by `decision-views migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
