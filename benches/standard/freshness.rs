//! Freshness: publish → visible in the API, under a steady background load of the standard
//! workload. A probe tenant publishes one impression every 100 ms on a single key (one
//! partition, so they apply in order) and polls its `daily_trend` as a dashboard would, with
//! the response cache at its default TTL: the time until the count covers a probe is its
//! latency. Each probe's delivery report splits that latency in two: the broker's write
//! (send → acknowledged) and the rest (acknowledged → visible: the broker's fetch, the ingest
//! batch and its commit, the API's read).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::publish::{self, EventTime, Workload, WorkloadShape};
use hdrhistogram::Histogram;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};

use crate::env::{self, Broker, Process};

pub struct Freshness {
    pub probes: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub load_per_s: f64,
    /// Probes still invisible when the run stopped (15 s after the last one was sent): their
    /// latency is recorded as the time they had waited, so the percentiles are lower bounds.
    pub unseen: usize,
    /// Worst latency (ms) of the probes sent in each 5-second slice of the probing window:
    /// shows whether the tail is a start-up transient, periodic stalls or a growing lag.
    pub worst_by_slice: Vec<f64>,
    /// The warm-up probe's latency (a new producer's first send; not in the percentiles).
    pub warm_up_ms: f64,
    /// p50 and p99 (ms) of the broker's part, send → acknowledged…
    pub acked_ms: (f64, f64),
    /// …and of the rest, acknowledged → visible in the API.
    pub after_ack_ms: (f64, f64),
}

/// When each probe's delivery report arrived.
type Acks = Arc<Mutex<HashMap<i64, Instant>>>;

/// Sends probe `k` and records when the broker acknowledges it.
fn send_probe(producer: &FutureProducer, topic: &str, k: i64, payload: &str, acks: &Acks) -> anyhow::Result<()> {
    let record = FutureRecord::to(topic).key("probe:cust_probe").payload(payload);
    let delivery = producer.send_result(record).map_err(|(e, _)| e)?;
    let acks = acks.clone();
    tokio::spawn(async move {
        if let Ok(Ok(_)) = delivery.await {
            acks.lock().unwrap().insert(k, Instant::now());
        }
    });
    Ok(())
}

pub async fn run(broker: &Broker, rate: u64, secs: u64) -> anyhow::Result<Freshness> {
    let topics = broker.topics(&format!("bench-fresh-{}", &uuid::Uuid::new_v4().simple().to_string()[..6])).await?;
    let (db_url, pool) = env::fresh_database("freshness").await?;
    let key = decision_views::keys::create_api_key(&pool, "probe", Role::Viewer, "bench").await?;
    let port = env::free_port();
    let mut vars = env::child_env(&db_url, &broker.addr, &topics);
    vars.push(("DV_HTTP_ADDR".into(), format!("127.0.0.1:{port}")));
    let app = Process::start("run", &vars)?;
    let base = format!("http://127.0.0.1:{port}");
    env::wait_http(&format!("{base}/healthz")).await?;

    // The catalog and memberships first, applied before the clock starts.
    let producer = publish::producer(&broker.addr)?;
    let mut workload =
        Workload::new(WorkloadShape { time: EventTime::Live, ..WorkloadShape::default() }, 7, chrono::Utc::now());
    let mut counts: std::collections::BTreeMap<TopicKind, i64> = Default::default();
    for g in workload.catalog_and_segments() {
        publish::send(&producer, &topics[&g.topic], &g.key, g.payload.as_bytes())?;
        *counts.entry(g.topic).or_default() += 1;
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(60))?;
    for (kind, high) in counts {
        let deadline = Instant::now() + Duration::from_secs(120);
        while env::committed(&pool, &topics[&kind]).await? < high {
            anyhow::ensure!(Instant::now() < deadline, "ingest did not apply the catalog within 120 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Background load, paced against its schedule.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, sent, topics) = (stop.clone(), sent.clone(), topics.clone());
        std::thread::spawn(move || -> anyhow::Result<f64> {
            let started = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for g in workload.next_trace() {
                    publish::send(&producer, &topics[&g.topic], &g.key, g.payload.as_bytes())?;
                    n += 1;
                }
                sent.store(n, Ordering::Relaxed);
                let due = Duration::from_secs_f64(n as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            Ok(n as f64 / started.elapsed().as_secs_f64())
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await; // let the load reach its steady state

    let probe_producer: FutureProducer =
        publish::producer_config(ClientConfig::new().set("bootstrap.servers", &broker.addr).clone()).create()?;
    let acks: Acks = Arc::default();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let url = format!("{base}/api/v1/dashboard-data?type=daily_trend&days=1");
    // One probe before the clock: a new producer's first send also waits for its bootstrap
    // and metadata, which a platform's long-lived producer does not (seen: 600–700 ms, the
    // run's worst probe). Its latency is printed, not recorded.
    let warm_up = Instant::now();
    let probe = |k: i64| {
        json!({"id": format!("probe_{k}"), "tenantId": "probe", "customerId": "cust_probe",
               "offerId": "off_000", "channelId": "ch_0", "outcome": "impression",
               "revenue": 0.0, "cost": 0.0, "occurredAt": chrono::Utc::now().to_rfc3339()})
        .to_string()
    };
    send_probe(&probe_producer, &topics[&TopicKind::Interactions], 1, &probe(1), &acks)?;
    loop {
        let body: Value =
            client.get(&url).header("X-API-Key", &key).header("X-Tenant-Id", "probe").send().await?.json().await?;
        if body["data"][0]["impressions"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        anyhow::ensure!(warm_up.elapsed() < Duration::from_secs(60), "the warm-up probe was not visible within 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let warm_up_ms = warm_up.elapsed().as_secs_f64() * 1e3;
    eprintln!("[bench] freshness: warm-up probe (new producer) visible after {warm_up_ms:.0} ms");
    let mut pending: VecDeque<(i64, Instant)> = VecDeque::new();
    let mut h = Histogram::<u64>::new(3)?;
    let (mut acked, mut after_ack) = (Histogram::<u64>::new(3)?, Histogram::<u64>::new(3)?);
    let started = Instant::now();
    let mut worst_by_slice = vec![0.0f64; secs.div_ceil(5) as usize];
    let mut record = |k: i64, at: Instant, h: &mut Histogram<u64>| -> anyhow::Result<()> {
        let seen = Instant::now();
        let ms = (seen - at).as_secs_f64() * 1e3;
        // The report may be handled after the read that saw the probe: then it counts as
        // acknowledged when seen.
        if let Some(ack) = acks.lock().unwrap().remove(&k) {
            let ack = ack.min(seen);
            acked.record((ack - at).as_micros() as u64)?;
            after_ack.record((seen - ack).as_micros() as u64)?;
        }
        let slice = ((at - started).as_secs() / 5) as usize;
        if let Some(w) = worst_by_slice.get_mut(slice) {
            *w = w.max(ms);
        }
        Ok(h.record((ms * 1e3) as u64)?)
    };
    let (mut k, mut last_probe) = (1i64, Instant::now() - Duration::from_secs(1));
    let probing_until = Instant::now() + Duration::from_secs(secs);
    let hard_stop = probing_until + Duration::from_secs(15);
    while (Instant::now() < probing_until || !pending.is_empty()) && Instant::now() < hard_stop {
        if Instant::now() < probing_until && last_probe.elapsed() >= Duration::from_millis(100) {
            k += 1;
            let event = probe(k);
            last_probe = Instant::now();
            send_probe(&probe_producer, &topics[&TopicKind::Interactions], k, &event, &acks)?;
            pending.push_back((k, last_probe));
        }
        let body: Value =
            client.get(&url).header("X-API-Key", &key).header("X-Tenant-Id", "probe").send().await?.json().await?;
        let seen = body["data"][0]["impressions"].as_i64().unwrap_or(0);
        while pending.front().is_some_and(|(p, _)| *p <= seen) {
            let (k, at) = pending.pop_front().unwrap();
            record(k, at, &mut h)?;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let load_per_s = load.join().map_err(|_| anyhow::anyhow!("load thread panicked"))??;
    let unseen = pending.len();
    // An unseen probe has no visible time to split: it counts in the whole latency only.
    acks.lock().unwrap().clear();
    for (k, at) in pending {
        record(k, at, &mut h)?;
    }
    app.stop();
    pool.close().await;
    env::drop_database(&db_url).await?;
    let f = Freshness {
        probes: h.len(),
        p50_ms: h.value_at_quantile(0.5) as f64 / 1e3,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1e3,
        max_ms: h.max() as f64 / 1e3,
        load_per_s,
        unseen,
        worst_by_slice,
        warm_up_ms,
        acked_ms: quantiles(&acked),
        after_ack_ms: quantiles(&after_ack),
    };
    eprintln!(
        "[bench] freshness at {load_per_s:.0} ev/s: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} probes ({unseen} not visible at the end)",
        f.p50_ms, f.p99_ms, f.max_ms, f.probes
    );
    eprintln!("[bench] freshness: worst latency per 5 s of probing (ms): {:.0?}", f.worst_by_slice);
    eprintln!(
        "[bench] freshness split over {} acknowledged probes: send -> acknowledged p50 {:.0} ms, p99 {:.0} ms; acknowledged -> visible p50 {:.0} ms, p99 {:.0} ms",
        acked.len(), f.acked_ms.0, f.acked_ms.1, f.after_ack_ms.0, f.after_ack_ms.1
    );
    Ok(f)
}

/// p50 and p99 in ms of a histogram of µs.
fn quantiles(h: &Histogram<u64>) -> (f64, f64) {
    (h.value_at_quantile(0.5) as f64 / 1e3, h.value_at_quantile(0.99) as f64 / 1e3)
}
