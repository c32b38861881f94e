//! The integration suite: one binary (fast linking), one module per capability. Needs the
//! local services (`scripts/services.sh up`): PostgreSQL, Redis and the Kafka-protocol broker.

mod anomaly;
mod api_hardening;
mod auth;
mod bad_input;
mod coalescing;
mod crash;
mod dedup_days;
mod exactly_once;
mod explain;
mod extremes;
mod fixture;
mod grouped_top;
mod helpers;
mod interaction_types;
mod isolation;
mod model;
mod model_types;
mod pipeline;
mod poison;
mod policy_types;
mod processes;
mod read_path;
mod reliability;
mod rollups;
mod scale;
mod schemas;
mod score_distribution;
mod sealed;
mod selection;
mod trace_types;
mod traces_api;
mod undeliverable;
mod upgrades;
mod wide_rows;
mod wire;
