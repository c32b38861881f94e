//! Every table keyed by tenant and every query scoped by it (issue 16, docs/scaling.md): what
//! distributing the schema by `tenant_id` on Citus relies on, checked here where no Citus
//! package can be installed. A new table or query that breaks it must say why below.

use std::collections::BTreeSet;
use std::path::Path;

use crate::helpers::TestEnv;

/// Tables without a tenant: reference tables on a distributed engine.
const SYSTEM: [(&str, &str); 7] = [
    ("_sqlx_migrations", "sqlx's ledger of the applied migrations"),
    ("api_keys", "looked up by the key's hash before the tenant is known; platform keys have no tenant"),
    ("consumer_offsets", "Kafka partitions are shared by every tenant"),
    ("legacy_dedup_bound", "one row: the time bound of the keys stored before migration 20261205000010"),
    (
        "legacy_dedup_keys",
        "keys stored before migration 20261205000010, by hash alone (the hash covers the tenant); the \
         janitor empties it once the dedup horizon passes the upgrade: drop it before distributing",
    ),
    ("rebuilds", "one row per rebuild of every tenant's views"),
    ("view_generation", "one row: the views' generation, bumped by replays and rebuilds"),
];

/// Tables whose key holds `tenant_id` but not first.
/// (Citus needs the distribution column in every unique key, not first.)
const NOT_FIRST: [(&str, &str); 2] = [
    ("dedup_keys", "its random 16-byte key first makes inserts 45 % cheaper (BENCHMARKS.md)"),
    ("running_total_days", "the chain's view first (migration 20261206000010, applied: not to be edited)"),
];

/// Statements that read or write tenant tables across tenants, on purpose.
const ACROSS_TENANTS: [(&str, &str, &str); 4] = [
    (
        "src/api/ingest.rs",
        "FROM dead_letter_counts GROUP BY topic",
        "a platform key's ingest status: every tenant's dead-letter counts (an operator's view)",
    ),
    ("consumers/src/janitor.rs", "legacy_dedup_keys", "retention of the keys stored before the dedup upgrade"),
    ("consumers/src/janitor.rs", "DELETE FROM decision_trace_ids", "retention: every tenant's expired trace ids"),
    (
        "consumers/src/apply/dedup.rs",
        "FROM legacy_dedup_keys WHERE key = ANY",
        "keys stored before the upgrade, probed by hash (which covers the tenant), only for events older than it",
    ),
];

#[derive(sqlx::FromRow, Debug)]
struct Key {
    table: String,
    primary: bool,
    columns: Vec<String>,
}

async fn tenant_tables(env: &TestEnv) -> (BTreeSet<String>, Vec<Key>) {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class
          WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let keys: Vec<Key> = sqlx::query_as(
        "SELECT c.relname::text AS table, i.indisprimary AS primary,
                ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.n) AS columns
           FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            AND i.indisunique",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let system: BTreeSet<&str> = SYSTEM.iter().map(|(t, _)| *t).collect();
    (tables.into_iter().filter(|t| !system.contains(t.as_str())).collect(), keys)
}

/// The table names of a `SELECT … FROM unnest(ARRAY[…]) AS t` list in docs/scaling.md after `marker`.
fn listed(doc: &str, marker: &str) -> BTreeSet<String> {
    let from = doc.find(marker).unwrap_or_else(|| panic!("docs/scaling.md: {marker}"));
    let list = &doc[from..];
    let list = &list[list.find("ARRAY[").unwrap() + 6..list.find("])").unwrap()];
    list.split(',').map(|t| t.trim().trim_matches('\'').to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_is_keyed_by_tenant_or_listed_as_a_system_table() {
    let env = TestEnv::new().await;
    let (tenant, keys) = tenant_tables(&env).await;
    for (table, _) in SYSTEM {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(table).fetch_one(&env.pool).await.unwrap();
        assert!(exists, "{table} is listed as a system table but does not exist");
    }
    for table in &tenant {
        let mine: Vec<&Key> = keys.iter().filter(|k| &k.table == table).collect();
        let primary = mine.iter().find(|k| k.primary).unwrap_or_else(|| panic!("{table} has no primary key"));
        let first = NOT_FIRST.iter().all(|(t, _)| t != table);
        assert!(
            if first { primary.columns[0] == "tenant_id" } else { primary.columns.contains(&"tenant_id".into()) },
            "{table}: primary key {:?} does not start with tenant_id (or list it as a system table, with why)",
            primary.columns
        );
        for k in mine {
            assert!(k.columns.contains(&"tenant_id".into()), "{table}: a unique key {:?} without tenant_id", k.columns);
        }
    }
    // docs/scaling.md distributes exactly these, and references the rest.
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scaling.md")).unwrap();
    // The first distributed table names the co-location group; the list holds the others.
    let mut distributed = listed(&doc, "colocate_with");
    distributed.insert("catalog_entities".into());
    assert_eq!(distributed, tenant, "docs/scaling.md's create_distributed_table list");
    let reference = listed(&doc, "create_reference_table");
    let system: BTreeSet<String> =
        SYSTEM.iter().map(|(t, _)| t.to_string()).filter(|t| t != "_sqlx_migrations").collect();
    assert_eq!(reference, system, "docs/scaling.md's create_reference_table list");
}

/// Every string literal of a Rust source, with its line; test modules (after the first
/// `#[cfg(test)]`) left out.
fn literals(source: &str) -> Vec<(usize, String)> {
    let code = source.split("#[cfg(test)]").next().unwrap();
    let b = code.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < b.len() {
        let raw = b[i] == b'r' && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'));
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            i = code[i..].find('\n').map_or(b.len(), |n| i + n);
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            i += 3; // a char literal such as '"'
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') && b.get(i + 3) == Some(&b'\'') {
            i += 4; // an escaped one such as '\"'
        } else if raw && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) {
            let hashes = code[i + 1..].bytes().take_while(|c| *c == b'#').count();
            let start = i + 2 + hashes;
            let close = format!("\"{}", "#".repeat(hashes));
            let end = code[start..].find(&close).map_or(b.len(), |n| start + n);
            out.push((code[..i].matches('\n').count() + 1, code[start..end].to_owned()));
            i = end + close.len();
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            out.push((code[..i].matches('\n').count() + 1, code[i + 1..j.min(b.len())].to_owned()));
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Whether a `{name}` placeholder of `text` is a filter on tenant_id defined in the same file
/// (`let name = "tenant_id = $1 …"` or `const NAME: &str = "… tenant_id …"`).
fn placeholder_scoped(text: &str, file: &[(usize, String)], source: &str) -> bool {
    text.split('{').skip(1).filter_map(|p| p.split('}').next()).any(|name| {
        let defined = [format!("let {name} = \""), format!("const {name}: &str = \"")];
        defined.iter().any(|d| {
            source.find(d.as_str()).is_some_and(|at| {
                let line = source[..at].matches('\n').count() + 1;
                file.iter().any(|(l, lit)| (*l == line || *l == line + 1) && lit.contains("tenant_id"))
            })
        })
    })
}

/// The project's Rust sources (`src/` and `consumers/src/`), each with its contents; shared
/// with the deployment test.
pub fn rust_sources() -> Vec<(std::path::PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    walk(&root.join("src"), &mut out);
    walk(&root.join("consumers/src"), &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_of_a_tenant_table_filters_or_writes_by_tenant() {
    let env = TestEnv::new().await;
    let (tenant, _) = tenant_tables(&env).await;
    let views: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v'",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let tenant: BTreeSet<String> = tenant.into_iter().chain(views).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut checked, mut unscoped) = (0, Vec::new());
    for (path, source) in rust_sources() {
        let name = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let lits = literals(&source);
        for (line, text) in &lits {
            let words: Vec<&str> =
                text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
            let touches = words.windows(2).any(|w| {
                ["FROM", "JOIN", "INTO", "UPDATE", "TABLE"].contains(&w[0].to_ascii_uppercase().as_str())
                    && tenant.contains(w[1])
            });
            if !touches {
                continue;
            }
            checked += 1;
            let allowed = ACROSS_TENANTS.iter().any(|(f, snippet, _)| name == *f && text.contains(snippet));
            if !(text.contains("tenant_id") || placeholder_scoped(text, &lits, &source) || allowed) {
                unscoped.push(format!("{name}:{line}: {}", text.split_whitespace().collect::<Vec<_>>().join(" ")));
            }
        }
    }
    assert!(checked > 60, "only {checked} statements found: the scan is broken");
    assert!(unscoped.is_empty(), "statements on tenant tables without tenant_id:\n{}", unscoped.join("\n"));
}
