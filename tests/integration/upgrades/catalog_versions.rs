//! Catalog versions came with migration 20261207000030 (`catalog_versions`): a catalog stored
//! before it gives each of its tenants a version, all different, and from then on a change to
//! one tenant's catalog moves that tenant's version only.

use crate::helpers::database_before;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_catalog_gets_a_version_per_tenant() {
    let pool = database_before(20261207000030).await;
    for (tenant, id) in [("acme", "o1"), ("acme", "o2"), ("globex", "o1")] {
        sqlx::query(
            "INSERT INTO catalog_entities (tenant_id, entity, entity_id, name, updated_at)
             VALUES ($1, 'offer', $2, $2, now())",
        )
        .bind(tenant)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    }
    decision_views::MIGRATOR.run(&pool).await.unwrap();

    let versions = || async {
        sqlx::query_as::<_, (String, i64)>("SELECT tenant_id, version FROM catalog_versions ORDER BY tenant_id")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    let before = versions().await;
    let tenants: Vec<&str> = before.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tenants, ["acme", "globex"]);
    assert_ne!(before[0].1, before[1].1, "two tenants share a version");

    sqlx::query("UPDATE catalog_entities SET name = 'renamed' WHERE tenant_id = 'globex'")
        .execute(&pool)
        .await
        .unwrap();
    let after = versions().await;
    assert_eq!(after[0], before[0], "acme's catalog did not change");
    assert_ne!(after[1].1, before[1].1, "globex's version did not move");
    assert_ne!(after[1].1, after[0].1, "a version was given twice");
}
