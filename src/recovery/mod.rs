//! Recovery (issue 17): what an operator reaches for after a wrong view, a fixed producer bug
//! or a raised limit.
//!
//! - [`rebuild`]: the views again from the retained Kafka log, built in a [`shadow`] schema
//!   while live ingest serves the current ones, then swapped in whole; [`progress`] draws and
//!   records where it stands.
//! - [`dead_letters`]: replay dead letters through ingest's path, exactly once, or purge them.
//! - [`log`]: the Kafka log as both read it; `generation`: the views' generation both bump.
//!
//! Below `api` and `startup` (both call in; nothing here calls out to them).

pub mod cli;
pub mod dead_letters;
mod generation;
pub mod log;
pub mod progress;
pub mod rebuild;
pub mod shadow;
