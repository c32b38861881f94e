//! The bench's output: docs/guarantees.md 7's rows with pass/fail, then the detail tables, in Markdown.

use std::fmt::Write;
use std::time::Duration;

use consumers::events::TopicKind;

use crate::ceiling::Rate;
use crate::freshness::Freshness;
use crate::ingest::IngestFigures;
use crate::load::LoadFigure;
use crate::reads::ReadFigure;
use crate::shap::ShapFigure;
use crate::Config;

#[derive(Default)]
pub struct Report {
    pub ingest: Vec<IngestFigures>,
    /// (traces, interactions, other topics) through the in-memory pipeline.
    pub ceiling: Option<(Rate, Rate, Rate)>,
    /// (traces in the database, figures).
    pub reads: Vec<(u64, Vec<ReadFigure>)>,
    pub load: Vec<LoadFigure>,
    pub freshness: Option<Freshness>,
    pub shap: Option<ShapFigure>,
    pub elapsed: Duration,
}

/// Types computed from the catalog alone: no event table exists for them, so their "raw SQL"
/// is the same query over the same rows and the 100× comparison does not apply.
const CATALOG_ONLY: [&str; 2] = ["summary", "funnel"];

fn verdict(ok: bool) -> &'static str {
    if ok {
        "**pass**"
    } else {
        "**FAIL**"
    }
}

impl Report {
    fn ingest_of(&self, kind: TopicKind) -> Option<&IngestFigures> {
        self.ingest.iter().find(|f| f.kind == kind)
    }

    pub fn markdown(&self, cfg: &Config) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## docs/guarantees.md 7 figures (run took {:.0} s)\n", self.elapsed.as_secs_f64());
        let _ = writeln!(s, "| figure | bar | measured | verdict |\n|---|---|---|---|");
        if let Some(t) = self.ingest_of(TopicKind::DecisionTraces) {
            let ratio = t.ingest_per_s / t.raw_consume_per_s;
            let _ = writeln!(
                s,
                "| ingest, decision traces | ≥ 50,000/s and ≥ 0.5 × raw consume | {:.0}/s; raw consume {:.0}/s; ratio {:.2}; exact: {} | {} |",
                t.ingest_per_s,
                t.raw_consume_per_s,
                ratio,
                t.exact,
                verdict(t.ingest_per_s >= 50_000.0 && ratio >= 0.5 && t.exact)
            );
        }
        if let Some(i) = self.ingest_of(TopicKind::Interactions) {
            let _ = writeln!(
                s,
                "| ingest, interactions | ≥ 200,000/s | {:.0}/s (raw consume {:.0}/s, ratio {:.2}; exact: {}) | {} |",
                i.ingest_per_s,
                i.raw_consume_per_s,
                i.ingest_per_s / i.raw_consume_per_s,
                i.exact,
                verdict(i.ingest_per_s >= 200_000.0 && i.exact)
            );
        }
        if let Some(f) = &self.freshness {
            let _ = writeln!(
                s,
                "| freshness at {} events/s | p99 ≤ 1 s | p50 {}{:.0} ms, p99 {}{:.0} ms (max {:.0} ms, {} probes, {} not visible by the end, load {:.0}/s) | {} |",
                cfg.fresh_rate,
                if f.unseen > 0 { "≥ " } else { "" },
                f.p50_ms,
                if f.unseen > 0 { "≥ " } else { "" },
                f.p99_ms,
                f.max_ms,
                f.probes,
                f.unseen,
                f.load_per_s,
                verdict(f.p99_ms <= 1000.0)
            );
        }
        if let (Some((_, small)), Some((_, large))) = (self.reads.first(), self.reads.last()) {
            let worst = |v: &[ReadFigure]| v.iter().map(|f| f.p99_ms).fold(0.0, f64::max);
            let min_ratio = large
                .iter()
                .filter(|f| !CATALOG_ONLY.contains(&f.kind))
                .filter_map(|f| f.raw_ms.map(|r| r / f.p99_ms))
                .fold(f64::INFINITY, f64::min);
            let _ = writeln!(
                s,
                "| read latency, 18 types × days 7/30/90, uncached | p99 ≤ 10 ms at {} and {} traces; ≥ 100× raw SQL at {} | worst p99 {:.1} ms / {:.1} ms; smallest raw ÷ p99 {:.0}× (summary and funnel n/a: catalog only) | {} |",
                cfg.small,
                cfg.large,
                cfg.large,
                worst(small),
                worst(large),
                min_ratio,
                verdict(worst(small) <= 10.0 && worst(large) <= 10.0 && min_ratio >= 100.0)
            );
        }
        if let Some(c) =
            self.load.iter().filter(|l| l.label.starts_with("cached")).map(|l| l.requests_per_s).reduce(f64::max)
        {
            let _ = writeln!(s, "| API throughput, wrk 64 connections | ≥ 10,000 req/s cached | {c:.0} req/s cached (best cache) | {} |", verdict(c >= 10_000.0));
        }
        if let Some(f) = &self.shap {
            let _ = writeln!(
                s,
                "| SHAP, {} trees of depth {} | p99 ≤ 5 ms through the API | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} requests (TreeSHAP alone on one thread p50 {:.2} ms, p99 {:.2} ms; model {:.1} MB; worst additivity residual {:.1e}) | {} |",
                f.trees,
                f.depth,
                f.p50_ms,
                f.p99_ms,
                f.max_ms,
                f.requests,
                f.compute_p50_ms,
                f.compute_p99_ms,
                f.model_bytes as f64 / 1e6,
                f.worst_residual,
                verdict(f.p99_ms <= 5.0)
            );
        }
        let peak = self.ingest.iter().map(|f| f.peak_rss_mib).fold(0.0, f64::max);
        if !self.ingest.is_empty() {
            let _ = writeln!(
                s,
                "| processor memory | peak RSS ≤ 300 MB, flat | {peak:.0} MiB peak (see samples below) | {} |",
                verdict(peak <= 300.0 / 1.048_576)
            );
        }
        self.details(&mut s);
        s
    }

    fn details(&self, s: &mut String) {
        let _ = writeln!(s, "\n### Ingest (broker → committed views, release binary)\n");
        let _ = writeln!(s, "| topic | events | mean size | publish/s | bare consumer/s | ingest/s | ratio | exact | RSS by progress (MiB) | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|");
        for f in &self.ingest {
            let rss: Vec<String> = f.rss.iter().map(|(p, r)| format!("{:.0}%: {r:.0}", p * 100.0)).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} B | {:.0} | {:.0} | {:.0} | {:.2} | {} | {} | {:.0} MiB |",
                f.kind.default_name(),
                f.events,
                f.mean_bytes,
                f.publish_per_s,
                f.raw_consume_per_s,
                f.ingest_per_s,
                f.ingest_per_s / f.raw_consume_per_s,
                f.exact,
                rss.join(", "),
                f.peak_rss_mib
            );
        }
        if let Some((t, i, o)) = &self.ceiling {
            let _ = writeln!(s, "\n### Processor ceiling (pre-encoded events in memory, no broker)\n");
            let _ = writeln!(s, "| events | count | seconds | per second |\n|---|---|---|---|");
            for (name, r) in
                [("decision traces", t), ("interactions", i), ("suppressions, attributions, model metrics", o)]
            {
                let _ = writeln!(s, "| {name} | {} | {:.1} | {:.0} |", r.events, r.secs, r.per_s());
            }
        }
        if let (Some((small_n, small)), Some((large_n, large))) = (self.reads.first(), self.reads.last()) {
            let _ = writeln!(s, "\n### Read latency, uncached, through the API (ms)\n");
            let _ = writeln!(s, "| type | days | p50 @{small_n} | p99 @{small_n} | raw SQL @{small_n} | p50 @{large_n} | p99 @{large_n} | raw SQL @{large_n} | raw ÷ p99 @{large_n} |\n|---|---|---|---|---|---|---|---|---|");
            for (a, b) in small.iter().zip(large) {
                let raw = |f: &ReadFigure| match f.raw_ms {
                    Some(r) => format!("{}{r:.0}", if f.capped { ">" } else { "" }),
                    None => "–".into(),
                };
                let ratio = match b.raw_ms {
                    _ if CATALOG_ONLY.contains(&b.kind) => "n/a".into(),
                    Some(r) => format!("{}{:.0}×", if b.capped { ">" } else { "" }, r / b.p99_ms),
                    None => "–".into(),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {} | {} |",
                    a.kind,
                    a.days,
                    a.p50_ms,
                    a.p99_ms,
                    raw(a),
                    b.p50_ms,
                    b.p99_ms,
                    raw(b),
                    ratio
                );
            }
        }
        if let Some(f) = &self.freshness {
            let slices: Vec<String> = f.worst_by_slice.iter().map(|ms| format!("{ms:.0}")).collect();
            let _ =
                writeln!(s, "\n### Freshness: worst probe latency per 5 s of probing (ms)\n\n{}", slices.join(", "));
        }
        let _ = writeln!(s, "\n### API throughput (wrk -t2 -c64, rotating over 18 types × 3 windows)\n");
        let _ = writeln!(s, "| mode | req/s | p50 ms | p99 ms | non-2xx |\n|---|---|---|---|---|");
        for l in &self.load {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.2} | {:.2} | {} |",
                l.label, l.requests_per_s, l.p50_ms, l.p99_ms, l.non_2xx
            );
        }
    }
}
