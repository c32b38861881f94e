//! The per-offer reads of a segment (offer_performance_grouped by segment, acceptance_rate and
//! offer_performance with a segmentId) read `interaction_segment_totals` from migration
//! 20261206000050 on, one wide row per checkpoint of each segment's chain, backfilled from the
//! chains of `interaction_offer_totals` that the code of before maintained: for windows that
//! take some of the days, the answers are what the stored chains' rows give.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::helpers::database_url_before;
use crate::viewer::{acceptance_rows, ViewerApi};

/// One day's interactions of an offer in a segment.
struct Day {
    ago: i64,
    segment: &'static str,
    offer: &'static str,
    /// impressions, clicks, accepts, converts, rejects, dismisses.
    c: [i64; 6],
    revenue_micros: i128,
}

const fn day(ago: i64, segment: &'static str, offer: &'static str, c: [i64; 6], revenue_micros: i128) -> Day {
    Day { ago, segment, offer, c, revenue_micros }
}

/// Past 2^64 micro-units (a revenue the `numeric` column holds and an `int8` does not), a
/// negative one, an offer with clicks only, a non-ASCII id, two segments.
const DAYS: [Day; 8] = [
    day(0, "seg_a", "o1", [3, 1, 1, 0, 1, 0], 1_500_000),
    day(0, "seg_a", "off_é", [0, 2, 0, 0, 0, 0], 0),
    day(2, "seg_a", "o1", [4, 0, 1, 1, 0, 2], (1 << 70) + 7_250_000),
    day(2, "seg_a", "o2", [9, 0, 0, 2, 1, 1], -3_000_000),
    day(5, "seg_a", "o2", [1, 0, 1, 0, 0, 0], 250_000),
    day(12, "seg_a", "o3", [6, 0, 0, 0, 3, 0], 0),
    day(2, "seg_b", "o3", [2, 0, 2, 0, 0, 0], 40_000_000),
    day(9, "seg_b", "o1", [20, 0, 0, 0, 0, 1], 0),
];

/// What the code of before stored: at each day a segment had interactions, a checkpoint holding
/// every offer seen up to then, its counters summed up to then.
async fn store_chains(pool: &sqlx::PgPool, today: chrono::NaiveDate) {
    for segment in ["seg_a", "seg_b"] {
        let mut agos: Vec<i64> = DAYS.iter().filter(|d| d.segment == segment).map(|d| d.ago).collect();
        agos.sort_unstable();
        agos.dedup();
        for ago in agos {
            let day = today - Duration::days(ago);
            sqlx::query("INSERT INTO running_total_days VALUES ('interaction_offer_totals', 'acme', $1, $2)")
                .bind(segment)
                .bind(day)
                .execute(pool)
                .await
                .unwrap();
            let mut upto: BTreeMap<&str, ([i64; 6], i128)> = BTreeMap::new();
            for d in DAYS.iter().filter(|d| d.segment == segment && d.ago >= ago) {
                let (c, r) = upto.entry(d.offer).or_default();
                c.iter_mut().zip(d.c).for_each(|(c, v)| *c += v);
                *r += d.revenue_micros;
            }
            for (offer, (c, revenue)) in upto {
                let mut insert = sqlx::query(
                    "INSERT INTO interaction_offer_totals (tenant_id, segment_id, day, offer_id, impressions, clicks,
                         accepts, converts, rejects, dismisses, revenue_micros)
                     VALUES ('acme', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::numeric)",
                )
                .bind(segment)
                .bind(day)
                .bind(offer);
                for v in c {
                    insert = insert.bind(v);
                }
                insert.bind(revenue.to_string()).execute(pool).await.unwrap();
            }
        }
        for insert in [
            "INSERT INTO catalog_entities (tenant_id, entity, entity_id, status, updated_at)
             VALUES ('acme', 'segment', $1, 'active', now())",
            "INSERT INTO segments_materialized (tenant_id, segment_id) VALUES ('acme', $1)",
        ] {
            sqlx::query(insert).bind(segment).execute(pool).await.unwrap();
        }
    }
    // offer_performance lists the active catalog offers, with or without interactions.
    for offer in ["o1", "o2", "o3", "off_é", "o9"] {
        sqlx::query(
            "INSERT INTO catalog_entities (tenant_id, entity, entity_id, status, updated_at)
             VALUES ('acme', 'offer', $1, 'active', now())",
        )
        .bind(offer)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// An offer's window: impressions, conversions (accepts + converts), negatives (rejects +
/// dismisses), revenue micros.
pub(super) type Window = (i64, i64, i64, i128);

/// The window's days summed per segment and offer (offers with interactions in it only).
fn windows(days: i64) -> BTreeMap<&'static str, BTreeMap<&'static str, Window>> {
    let mut out: BTreeMap<&str, BTreeMap<&str, Window>> = BTreeMap::new();
    for d in DAYS.iter().filter(|d| d.ago < days) {
        let s = out.entry(d.segment).or_default().entry(d.offer).or_default();
        *s = (s.0 + d.c[0], s.1 + d.c[2] + d.c[3], s.2 + d.c[4] + d.c[5], s.3 + d.revenue_micros);
    }
    out
}

/// Offers in offer_performance's order: conversions, impressions (both descending), id.
pub(super) fn ranked(offers: impl IntoIterator<Item = (&'static str, Window)>) -> Vec<(&'static str, Window)> {
    let mut v: Vec<(&str, Window)> = offers.into_iter().collect();
    v.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(b.1 .0.cmp(&a.1 .0)).then(a.0.cmp(b.0)));
    v
}

/// Listed offers against the expected ones: ids, impressions, conversions, revenue.
pub(super) fn assert_offers(listed: &Value, want: &[(&str, Window)], what: &str) {
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), want.len(), "{what}: {listed:?}");
    for (o, (offer, (impressions, conversions, _, revenue))) in listed.iter().zip(want) {
        assert_eq!(o["offerId"], *offer, "{what}");
        assert_eq!(
            (o["impressions"].as_i64(), o["conversions"].as_i64()),
            (Some(*impressions), Some(*conversions)),
            "{what} {offer}"
        );
        let (got, want) = (o["revenue"].as_f64().unwrap(), *revenue as f64 / 1e6);
        assert!((got - want).abs() <= want.abs() * 1e-12 + 0.005, "{what} {offer}: revenue {got}, want {want}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_chains_carry_over_into_the_wide_checkpoints() {
    let (db_url, pool) = database_url_before(20261206000050).await;
    let today = Utc::now().date_naive();
    store_chains(&pool, today).await;
    decision_views::MIGRATOR.run(&pool).await.unwrap();

    let api = ViewerApi::start(db_url, pool.clone(), "acme").await;
    let get = |query: String| {
        let api = &api;
        async move { api.dashboard(&format!("{query}&asOf={today}")).await }
    };
    for days in [1, 2, 3, 6, 10, 30] {
        let want = windows(days);
        let query = format!("type=offer_performance_grouped&groupBy=segment&days={days}");
        let body = get(query.clone()).await;
        let mut groups: Vec<(&str, i64)> =
            want.iter().map(|(s, offers)| (*s, offers.values().map(|o| o.0).sum())).collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let got = body["groups"].as_array().unwrap();
        let ids: Vec<&str> = got.iter().map(|g| g["groupId"].as_str().unwrap()).collect();
        assert_eq!(ids, groups.iter().map(|g| g.0).collect::<Vec<_>>(), "{query}");
        for (group, (segment, _)) in got.iter().zip(&groups) {
            let offers = ranked(want[segment].iter().map(|(o, w)| (*o, *w)));
            assert_offers(&group["offers"], &offers, &format!("{query} {segment}"));
        }

        for segment in ["seg_a", "seg_b"] {
            let none = BTreeMap::new();
            let mine = want.get(segment).unwrap_or(&none);
            let query = format!("type=offer_performance&days={days}&segmentId={segment}");
            let active = ["o1", "o2", "o3", "off_é", "o9"].map(|o| (o, mine.get(o).copied().unwrap_or_default()));
            assert_offers(&get(query.clone()).await["data"], &ranked(active), &query);

            let query = format!("type=acceptance_rate&days={days}&segmentId={segment}");
            let got = acceptance_rows(&get(query.clone()).await);
            let mut expected: Vec<(String, i64, i64, i64)> =
                mine.iter().map(|(o, w)| ((*o).to_owned(), w.0, w.1, w.2)).collect();
            expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            assert_eq!(got, expected, "{query}");
        }
    }
    api.stop().await;
}
