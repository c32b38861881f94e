// `sqlx::migrate!` embeds migrations/ at compile time, but cargo does not know that: without
// this, adding a migration file leaves a stale binary that silently lacks it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
