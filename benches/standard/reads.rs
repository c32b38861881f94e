//! Read latency per dashboard type, uncached, through the real API (HTTP, auth, JSON), next to
//! the same answer computed by SQL over the raw event tables in the same PostgreSQL.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sqlx::{Connection, PgConnection};

use crate::raw;

pub const DAYS: [i64; 4] = [7, 30, 90, 365];
/// why_not_ranked needs an offer: one the standard workload ranks often.
pub const WHY_NOT_OFFER: &str = "off_007";

/// The reads of one type: with no parameter (the one compared with raw SQL), then with each
/// filter and grouping it accepts (`DashboardType::params`), set to a value the standard
/// workload has (its ids: `src/publish/workload.rs`).
pub fn cases(kind: &str) -> Vec<&'static str> {
    const SEGMENT: &str = "&segmentId=seg_03";
    let mut v = vec![""];
    v.extend_from_slice(match kind {
        "acceptance_rate" | "offer_performance" | "channel_effectiveness" | "daily_trend" | "revenue_trend" => {
            &[SEGMENT][..]
        }
        "offer_performance_grouped" => &["&groupBy=category", "&groupBy=segment", SEGMENT][..],
        "score_distribution" => {
            &["&groupBy=offer", "&groupBy=channel", "&groupBy=category", "&groupBy=channel&filterId=ch_1"]
        }
        "selection_frequency" => &[SEGMENT, "&channelId=ch_1", "&decisionFlowId=df_1", "&categoryId=cat_1"],
        "model_metrics_trend" => &["&modelId=model_0"],
        "anomaly_candidates" => &["&baselineDays=365"],
        "why_not_ranked" => &[SEGMENT],
        _ => &[],
    });
    v
}

#[derive(Debug, Clone)]
pub struct ReadFigure {
    pub kind: &'static str,
    /// The query parameters beyond type and days ([`cases`]), `&`-separated.
    pub params: &'static str,
    pub days: i64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Best raw-SQL time; `capped` when the statement hit the time cap (a lower bound).
    pub raw_ms: Option<f64>,
    pub capped: bool,
}

pub fn path(kind: &str, days: i64, params: &str) -> String {
    let extra = if kind == "why_not_ranked" { format!("&offerId={WHY_NOT_OFFER}") } else { String::new() };
    format!("/api/v1/dashboard-data?type={kind}&days={days}{extra}{params}")
}

pub struct Api<'a> {
    pub base: &'a str,
    pub key: &'a str,
    pub tenant: &'a str,
}

impl Api<'_> {
    pub async fn get(&self, client: &reqwest::Client, path: &str) -> anyhow::Result<()> {
        let resp = client
            .get(format!("{}{path}", self.base))
            .header("X-API-Key", self.key)
            .header("X-Tenant-Id", self.tenant)
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {}", String::from_utf8_lossy(&body));
        Ok(())
    }
}

/// `samples` sequential requests per (type, days) after two warm-ups; then the raw query,
/// best of `raw_runs`, each capped at `raw_cap`.
pub async fn measure(
    api: &Api<'_>,
    raw_url: &str,
    samples: usize,
    raw_runs: usize,
    raw_cap: Duration,
) -> anyhow::Result<Vec<ReadFigure>> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let mut raw_conn = PgConnection::connect(raw_url).await?;
    sqlx::raw_sql(&format!("SET statement_timeout = {}", raw_cap.as_millis())).execute(&mut raw_conn).await?;
    let today = chrono::Utc::now().date_naive();
    let queries = raw::queries();
    let mut out = Vec::new();
    for (kind, params) in
        decision_views::api::DASHBOARD_TYPES.iter().flat_map(|k| cases(k).into_iter().map(move |c| (*k, c)))
    {
        for days in DAYS {
            let p = path(kind, days, params);
            api.get(&client, &p).await?;
            api.get(&client, &p).await?;
            let mut h = Histogram::<u64>::new(3)?;
            for _ in 0..samples {
                let t = Instant::now();
                api.get(&client, &p).await?;
                h.record(t.elapsed().as_micros() as u64)?;
            }
            let (mut raw_ms, mut capped) = (None::<f64>, false);
            if let Some(q) = queries.iter().find(|q| q.kind == kind && params.is_empty()) {
                let since = today - chrono::Duration::days(days - 1);
                for _ in 0..raw_runs {
                    let t = Instant::now();
                    let r = sqlx::query(q.sql).bind(api.tenant).bind(since).bind(today).fetch_all(&mut raw_conn).await;
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    match r {
                        Ok(_) => raw_ms = Some(raw_ms.map_or(ms, |b: f64| b.min(ms))),
                        Err(e) if is_timeout(&e) => {
                            capped = true;
                            raw_ms = Some(raw_cap.as_secs_f64() * 1e3);
                            break;
                        }
                        Err(e) => anyhow::bail!("raw query of {kind}: {e}"),
                    }
                }
            }
            let f = ReadFigure {
                kind,
                params,
                days,
                p50_ms: h.value_at_quantile(0.5) as f64 / 1e3,
                p99_ms: h.value_at_quantile(0.99) as f64 / 1e3,
                raw_ms,
                capped,
            };
            eprintln!(
                "[bench] read {kind}{params} days={days}: p50 {:.2} ms p99 {:.2} ms; raw {}{:.0} ms",
                f.p50_ms,
                f.p99_ms,
                if capped { ">" } else { "" },
                raw_ms.unwrap_or(f64::NAN)
            );
            out.push(f);
        }
    }
    Ok(out)
}

/// One request per (type, parameters, days): fills a response cache before a cached measurement.
pub async fn warm(api: &Api<'_>) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for kind in decision_views::api::DASHBOARD_TYPES {
        for params in cases(kind) {
            for days in DAYS {
                api.get(&client, &path(kind, days, params)).await?;
            }
        }
    }
    Ok(())
}

fn is_timeout(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("57014"))
}
