//! The segments' chains of `interaction_offer_channel_totals` became one wide row per
//! (checkpoint, channel) in migration 20261207000020 (`interaction_segment_channel_totals`),
//! backfilled from the narrow rows the code of before maintained: `interaction_segment_daily`
//! gives the same daily rows (sums past `int8` exact), all customers' chain stays narrow, and
//! offer_performance_grouped by channel, with and without a segmentId, answers for windows that
//! take some of the days what the stored chains give.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, Utc};

use super::grouped_segments::{assert_offers, ranked, Window};
use crate::helpers::database_url_before;
use crate::viewer::ViewerApi;

/// One day's interactions of an offer on a channel in a chain ('' all customers).
struct Day {
    ago: i64,
    segment: &'static str,
    offer: &'static str,
    channel: &'static str,
    /// impressions, clicks, accepts, converts, rejects, dismisses.
    c: [i64; 6],
    revenue_micros: i128,
    cost_micros: i128,
}

const fn day(
    ago: i64,
    segment: &'static str,
    offer: &'static str,
    channel: &'static str,
    c: [i64; 6],
    revenue_micros: i128,
) -> Day {
    Day { ago, segment, offer, channel, c, revenue_micros, cost_micros: revenue_micros / 3 }
}

/// Past 2^64 micro-units, a negative revenue, clicks only, a non-ASCII id, two channels of one
/// offer, a channel seen only before the shorter windows.
const DAYS: [Day; 10] = [
    day(0, "seg_a", "o1", "web", [3, 1, 1, 0, 1, 0], 1_500_000),
    day(0, "seg_a", "off_é", "app", [0, 2, 0, 0, 0, 0], 0),
    day(2, "seg_a", "o1", "web", [4, 0, 1, 1, 0, 2], (1 << 70) + 7_250_000),
    day(2, "seg_a", "o1", "app", [9, 0, 0, 2, 1, 1], -3_000_000),
    day(5, "seg_a", "o2", "app", [1, 0, 1, 0, 0, 0], 250_000),
    day(12, "seg_a", "o3", "email", [6, 0, 0, 0, 3, 0], 0),
    day(2, "seg_b", "o3", "web", [2, 0, 2, 0, 0, 0], 40_000_000),
    day(0, "", "o1", "web", [30, 1, 4, 1, 1, 0], 9_000_000),
    day(3, "", "o2", "app", [12, 0, 0, 3, 0, 0], 3_000_000),
    day(8, "", "o3", "web", [5, 0, 1, 0, 0, 0], 0),
];

/// What the code of before stored: at each day a chain had interactions, a checkpoint holding
/// every (offer, channel) seen up to then, its counters summed up to then.
async fn store_chains(pool: &sqlx::PgPool, today: NaiveDate) {
    for segment in ["", "seg_a", "seg_b"] {
        let mut agos: Vec<i64> = DAYS.iter().filter(|d| d.segment == segment).map(|d| d.ago).collect();
        agos.sort_unstable();
        agos.dedup();
        for ago in agos {
            let day = today - Duration::days(ago);
            sqlx::query("INSERT INTO running_total_days VALUES ('interaction_offer_channel_totals', 'acme', $1, $2)")
                .bind(segment)
                .bind(day)
                .execute(pool)
                .await
                .unwrap();
            let mut upto: BTreeMap<(&str, &str), ([i64; 6], i128, i128)> = BTreeMap::new();
            for d in DAYS.iter().filter(|d| d.segment == segment && d.ago >= ago) {
                let (c, r, k) = upto.entry((d.offer, d.channel)).or_default();
                c.iter_mut().zip(d.c).for_each(|(c, v)| *c += v);
                (*r, *k) = (*r + d.revenue_micros, *k + d.cost_micros);
            }
            for ((offer, channel), (c, revenue, cost)) in upto {
                let mut insert = sqlx::query(
                    "INSERT INTO interaction_offer_channel_totals (tenant_id, segment_id, day, offer_id, channel_id,
                         impressions, clicks, accepts, converts, rejects, dismisses, revenue_micros, cost_micros)
                     VALUES ('acme', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text::numeric, $12::text::numeric)",
                )
                .bind(segment)
                .bind(day)
                .bind(offer)
                .bind(channel);
                for v in c {
                    insert = insert.bind(v);
                }
                insert.bind(revenue.to_string()).bind(cost.to_string()).execute(pool).await.unwrap();
            }
        }
    }
    sqlx::query(
        "INSERT INTO segments_materialized (tenant_id, segment_id) VALUES ('acme', 'seg_a'), ('acme', 'seg_b')",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// A daily row as the views give it: (segment, days ago, offer, channel, counts, revenue, cost).
type DailyRow = (String, i64, String, String, Vec<i64>, String, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_channel_chains_carry_over_into_wide_rows() {
    let (db_url, pool) = database_url_before(20261207000020).await;
    let today = Utc::now().date_naive();
    store_chains(&pool, today).await;
    decision_views::MIGRATOR.run(&pool).await.unwrap();

    let narrow: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT segment_id FROM interaction_offer_channel_totals
          UNION ALL SELECT DISTINCT segment_id FROM running_total_days WHERE view = 'interaction_offer_channel_totals'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(narrow, ["", ""], "only all customers' chain stays narrow");
    // The daily rows, through the views, as stored.
    let daily: Vec<DailyRow> = sqlx::query_as(
        "SELECT segment_id, ($1 - day)::int8, offer_id, channel_id,
                ARRAY[impressions, clicks, accepts, converts, rejects, dismisses], revenue_micros::text, cost_micros::text
           FROM (SELECT tenant_id, '' AS segment_id, day, offer_id, channel_id, impressions, clicks, accepts,
                        converts, rejects, dismisses, revenue_micros, cost_micros FROM interaction_daily
                  UNION ALL
                 SELECT tenant_id, segment_id, day, offer_id, channel_id, impressions, clicks, accepts, converts,
                        rejects, dismisses, revenue_micros, cost_micros FROM interaction_segment_daily) d
          WHERE tenant_id = 'acme' ORDER BY 1, 2, 3, 4",
    )
    .bind(today)
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut want: Vec<DailyRow> = DAYS
        .iter()
        .map(|d| {
            let (s, o, c) = (d.segment.into(), d.offer.into(), d.channel.into());
            (s, d.ago, o, c, d.c.to_vec(), d.revenue_micros.to_string(), d.cost_micros.to_string())
        })
        .collect();
    want.sort_by(|a, b| (&a.0, a.1, &a.2, &a.3).cmp(&(&b.0, b.1, &b.2, &b.3)));
    assert_eq!(daily, want, "interaction_daily and interaction_segment_daily after the upgrade");

    let api = ViewerApi::start(db_url, pool.clone(), "acme").await;
    for days in [1, 2, 3, 6, 10, 30] {
        for segment in ["", "seg_a", "seg_b"] {
            // Per channel, per offer: the window's days summed.
            let mut channels: BTreeMap<&str, BTreeMap<&str, Window>> = BTreeMap::new();
            for d in DAYS.iter().filter(|d| d.segment == segment && d.ago < days) {
                let s = channels.entry(d.channel).or_default().entry(d.offer).or_default();
                *s = (s.0 + d.c[0], s.1 + d.c[2] + d.c[3], s.2 + d.c[4] + d.c[5], s.3 + d.revenue_micros);
            }
            let mut groups: Vec<(&str, i64)> =
                channels.iter().map(|(c, offers)| (*c, offers.values().map(|o| o.0).sum())).collect();
            groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let filter = if segment.is_empty() { String::new() } else { format!("&segmentId={segment}") };
            let query = format!("type=offer_performance_grouped&days={days}&asOf={today}{filter}");
            let body = api.dashboard(&query).await;
            let got = body["groups"].as_array().unwrap();
            let ids: Vec<&str> = got.iter().map(|g| g["groupId"].as_str().unwrap()).collect();
            assert_eq!(ids, groups.iter().map(|g| g.0).collect::<Vec<_>>(), "{query}: {body}");
            for (group, (channel, _)) in got.iter().zip(&groups) {
                let offers = ranked(channels[channel].iter().map(|(o, w)| (*o, *w)));
                assert_offers(&group["offers"], &offers, &format!("{query} {channel}"));
            }
        }
    }
    api.stop().await;
}
