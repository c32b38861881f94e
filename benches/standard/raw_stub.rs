//! TEMPORARY stub while raw.rs is written.
pub const DDL: &str = "CREATE SCHEMA IF NOT EXISTS raw";
pub async fn load(_pool: &sqlx::PgPool, _events: &[consumers::events::Event]) -> anyhow::Result<()> {
    Ok(())
}
pub struct RawQuery {
    pub kind: &'static str,
    pub sql: &'static str,
}
pub fn queries() -> Vec<RawQuery> {
    Vec::new()
}
