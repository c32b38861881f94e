//! The shadow schema a rebuild builds the views in, and the swap that makes them the live ones.
//!
//! The shadow is made by this build's own migrations, run with the shadow first on the
//! `search_path`: every table, view, partitioned table and sequence exactly as the live ones,
//! empty. Ingest's statements name their tables unqualified, so the rebuild's pipeline, given
//! connections with the same `search_path`, writes the shadow without a line of its own.
//!
//! The swap is one transaction of `ALTER … SET SCHEMA`: the live relations move to a retired
//! schema and the shadow's to `public`, so every reader sees the old views or the new ones,
//! never a mix. PostgreSQL re-plans a prepared statement whose relations changed, so the API's
//! cached statements follow the new tables at their next use.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};

use super::generation;
use crate::settings::Settings;

/// Tables a rebuild keeps: they hold what no Kafka event determines (keys, the audit log, the
/// rebuilds themselves, the views' generation, the catalog's versions, the migrations' ledger).
/// The shadow has them too (its migrations make them), unused and dropped with it; its
/// migrations make `catalog_versions` in `public` only, and the swap moves every version on.
pub const KEPT: &[&str] =
    &["_sqlx_migrations", "api_keys", "audit_log", "catalog_versions", "rebuilds", "view_generation"];

/// Connections that resolve unqualified names in `schema` first, then in `public`.
pub async fn pool(settings: &Settings, schema: &str, connections: u32) -> anyhow::Result<PgPool> {
    let path = format!("{schema},public");
    let options = PgConnectOptions::from_str(settings.database.url.expose())?.options([("search_path", path.as_str())]);
    Ok(PgPoolOptions::new().max_connections(connections).connect_with(options).await?)
}

/// Creates `schema` if absent and brings it to this build's migrations (a resumed rebuild
/// applies only those added since it started).
pub async fn prepare(public: &PgPool, schema: &str, shadow: &PgPool) -> anyhow::Result<()> {
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema))).execute(public).await?;
    crate::MIGRATOR.run(shadow).await?;
    Ok(())
}

pub async fn exists(pool: &PgPool, schema: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(pool)
        .await
}

pub async fn drop(pool: &PgPool, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(schema))).execute(pool).await?;
    Ok(())
}

/// A relation to move: its name and whether it is a view.
#[derive(Debug, sqlx::FromRow)]
struct Relation {
    name: String,
    view: bool,
}

/// Every table (partitions included) and view of `schema` except the [`KEPT`] tables.
async fn movable(conn: &mut PgConnection, schema: &str) -> Result<Vec<Relation>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.relname::text AS name, c.relkind = 'v' AS view FROM pg_class c
          WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v') AND NOT c.relname = ANY($2)
          ORDER BY c.relname",
    )
    .bind(schema)
    .bind(KEPT)
    .fetch_all(conn)
    .await
}

/// The live relations the shadow replaces: those of the same names, and every partition of
/// those (the live tables may hold days the rebuild has not, or the other way round).
async fn replaced(conn: &mut PgConnection, names: &[String]) -> Result<Vec<Relation>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.relname::text AS name, c.relkind = 'v' AS view FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v')
            AND (c.relname = ANY($1) OR c.oid IN (
                   SELECT i.inhrelid FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                    WHERE p.relnamespace = 'public'::regnamespace AND p.relname = ANY($1)))
          ORDER BY c.relname",
    )
    .bind(names)
    .fetch_all(conn)
    .await
}

/// Takes every lock the swap needs, all at once, giving up after `timeout_ms`: a reader holding
/// one of them then waits for the swap's retry instead of meeting it in a deadlock (PostgreSQL
/// looks for deadlocks after `deadlock_timeout`, 1 s by default, so a shorter wait never gets
/// there and no reader is ever cancelled). `Ok(false)`: not all free now, nothing held.
pub async fn lock(conn: &mut PgConnection, schema: &str, timeout_ms: u64) -> Result<bool, sqlx::Error> {
    let new = movable(conn, schema).await?;
    let names: Vec<String> = new.iter().map(|r| r.name.clone()).collect();
    let old = replaced(conn, &names).await?;
    let tables: Vec<String> = old
        .iter()
        .map(|r| format!("public.{}", ident(&r.name)))
        .chain(new.iter().map(|r| format!("{}.{}", ident(schema), ident(&r.name))))
        .collect();
    sqlx::query("SAVEPOINT swap_locks").execute(&mut *conn).await?;
    sqlx::query(&format!("SET LOCAL lock_timeout = '{timeout_ms}ms'")).execute(&mut *conn).await?;
    let locked =
        sqlx::query(&format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", tables.join(", "))).execute(&mut *conn).await;
    match locked {
        Ok(_) => {
            sqlx::query("RELEASE SAVEPOINT swap_locks").execute(&mut *conn).await?;
            Ok(true)
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
            sqlx::query("ROLLBACK TO SAVEPOINT swap_locks").execute(&mut *conn).await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Inside the caller's transaction, holding [`lock`]'s locks: moves the live relations to
/// `retired` and the shadow's to `public`, keeps the tenant settings an admin changed through
/// the API (they live among the catalog, but no event carries them), then drops the shadow
/// schema with what is left in it (its copies of the [`KEPT`] tables, its functions).
pub async fn swap(conn: &mut PgConnection, schema: &str, retired: &str) -> Result<(), sqlx::Error> {
    // The newer of the two wins: a settings event in the log, or the admin's change.
    sqlx::query(&format!(
        "INSERT INTO {s}.catalog_entities SELECT * FROM public.catalog_entities WHERE entity = 'tenant_settings'
         ON CONFLICT (tenant_id, entity, entity_id) DO UPDATE
            SET data = EXCLUDED.data, deleted = EXCLUDED.deleted, updated_at = EXCLUDED.updated_at
          WHERE EXCLUDED.updated_at > {s}.catalog_entities.updated_at",
        s = ident(schema)
    ))
    .execute(&mut *conn)
    .await?;
    let new = movable(conn, schema).await?;
    let names: Vec<String> = new.iter().map(|r| r.name.clone()).collect();
    let old = replaced(conn, &names).await?;
    sqlx::query(&format!("CREATE SCHEMA {}", ident(retired))).execute(&mut *conn).await?;
    for r in &old {
        sqlx::query(&set_schema(r, "public", retired)).execute(&mut *conn).await?;
    }
    for r in &new {
        sqlx::query(&set_schema(r, schema, "public")).execute(&mut *conn).await?;
    }
    sqlx::query(&format!("DROP SCHEMA {} CASCADE", ident(schema))).execute(&mut *conn).await?;
    // The names the API holds are the old catalog's: every tenant's catalog version moves on
    // (migration `catalog_versions`; the table stays in `public`, outside the swap).
    sqlx::query("UPDATE public.catalog_versions SET version = nextval('public.catalog_version_seq')")
        .execute(&mut *conn)
        .await?;
    generation::bump(conn).await
}

fn set_schema(r: &Relation, from: &str, to: &str) -> String {
    let kind = if r.view { "VIEW" } else { "TABLE" };
    format!("ALTER {kind} {}.{} SET SCHEMA {}", ident(from), ident(&r.name), ident(to))
}

/// A quoted identifier (schema names are ours, `dv_rebuild_<n>`; quoting costs nothing).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
