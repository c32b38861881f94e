//! The bench's output: docs/guarantees.md 7's rows with pass/fail, then the detail tables, in Markdown.

use std::fmt::Write;
use std::time::Duration;

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
    /// (traces, trace rate, interaction rate): the ceiling stage, at the ingest stage's density.
    pub ceilings: Vec<(u64, Rate, Rate)>,
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
    pub fn markdown(&self, cfg: &Config) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## docs/guarantees.md 7 figures (run took {:.0} s)\n", self.elapsed.as_secs_f64());
        let _ = writeln!(s, "| figure | bar | measured | verdict |\n|---|---|---|---|");
        if let Some((t, i, _)) = &self.ceiling {
            let _ = writeln!(
                s,
                "| processor ceiling (in memory → committed views, no broker) | ≥ 50,000 traces/s; ≥ 250,000 interactions/s | {:.0} traces/s ({}); {:.0} interactions/s ({}) | {} |",
                t.per_s(),
                t.cpu(),
                i.per_s(),
                i.cpu(),
                verdict(t.per_s() >= 50_000.0 && i.per_s() >= 250_000.0)
            );
        }
        for (n, t, i) in &self.ceilings {
            let _ = writeln!(
                s,
                "| processor ceiling, newest {n} traces of the standard stream (in memory → committed views, no broker) | ≥ 50,000 traces/s; ≥ 250,000 interactions/s | {:.0} traces/s ({}); {:.0} interactions/s ({}) | {} |",
                t.per_s(),
                t.cpu(),
                i.per_s(),
                i.cpu(),
                verdict(t.per_s() >= 50_000.0 && i.per_s() >= 250_000.0)
            );
        }
        for f in &self.ingest {
            let ratio = f.ingest_per_s / f.raw_consume_per_s;
            let _ = writeln!(
                s,
                "| ingest end to end, {} | ≥ 0.8 × a bare consumer tuned for throughput | {:.0}/s; bare consumer {:.0}/s ({:.0} MB/s); ratio {:.2}; exact: {} | {} |",
                f.label,
                f.ingest_per_s,
                f.raw_consume_per_s,
                f.raw_consume_mb_per_s,
                ratio,
                f.exact,
                verdict(ratio >= 0.8 && f.exact)
            );
        }
        if let Some(f) = &self.freshness {
            let _ = writeln!(
                s,
                "| freshness at {} events/s | p99 ≤ 500 ms | p50 {}{:.0} ms, p99 {}{:.0} ms (max {:.0} ms, {} probes, {} not visible by the end, load {:.0}/s; the warm-up probe of a new producer, not counted: {:.0} ms); of which the broker's write (send → acknowledged) p50 {:.0} / p99 {:.0} ms, the rest (acknowledged → visible) p50 {:.0} / p99 {:.0} ms | {} |",
                cfg.fresh_rate,
                if f.unseen > 0 { "≥ " } else { "" },
                f.p50_ms,
                if f.unseen > 0 { "≥ " } else { "" },
                f.p99_ms,
                f.max_ms,
                f.probes,
                f.unseen,
                f.load_per_s,
                f.warm_up_ms,
                f.acked_ms.0,
                f.acked_ms.1,
                f.after_ack_ms.0,
                f.after_ack_ms.1,
                verdict(f.p99_ms <= 500.0)
            );
        }
        if let (Some((_, small)), Some((_, large))) = (self.reads.first(), self.reads.get(1)) {
            let worst = |v: &[ReadFigure]| v.iter().map(|f| f.p99_ms).fold(0.0, f64::max);
            let min_ratio = large
                .iter()
                .filter(|f| !CATALOG_ONLY.contains(&f.kind))
                .filter_map(|f| f.raw_ms.map(|r| r / f.p99_ms))
                .fold(f64::INFINITY, f64::min);
            let _ = writeln!(
                s,
                "| read latency, 18 types and their filters × days 7/30/90/365, uncached | p99 ≤ 10 ms at {} and {} traces; ≥ 100× raw SQL at {} | worst p99 {:.1} ms / {:.1} ms; smallest raw ÷ p99 {:.0}× (summary and funnel n/a: catalog only) | {} |",
                cfg.small,
                cfg.large,
                cfg.large,
                worst(small),
                worst(large),
                min_ratio,
                verdict(worst(small) <= 10.0 && worst(large) <= 10.0 && min_ratio >= 100.0)
            );
        }
        if let (Some((small_n, small)), Some((xl_n, xl))) = (self.reads.first(), self.reads.get(2)) {
            let worst = xl.iter().map(|f| f.p99_ms).fold(0.0, f64::max);
            let (ratio, at) = growth(small, xl);
            let _ = writeln!(
                s,
                "| read latency at {xl_n} traces (DV_BENCH_XL_TRACES) | p99 ≤ 10 ms; p99 at {xl_n} ÷ at {small_n} ≤ 1.5 for each | worst p99 {worst:.1} ms; largest ratio {ratio:.2} ({at}) | {} |",
                verdict(worst <= 10.0 && ratio <= 1.5)
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
                "| processor memory | peak RSS ≤ 150 MiB, flat | {peak:.0} MiB peak (see samples below) | {} |",
                verdict(peak <= 150.0)
            );
        }
        self.details(&mut s);
        s
    }

    fn details(&self, s: &mut String) {
        let _ = writeln!(s, "\n### Ingest (broker → committed views, release binary)\n");
        let _ = writeln!(s, "| topic | events | mean size | publish/s | bare consumer/s | ingest/s | ratio | exact | RSS by progress (MiB) | peak RSS | CPU while ingesting (of 2 cores) |\n|---|---|---|---|---|---|---|---|---|---|---|");
        for f in &self.ingest {
            let rss: Vec<String> = f.rss.iter().map(|(p, r)| format!("{:.0}%: {r:.0}", p * 100.0)).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} B | {:.0} | {:.0} | {:.0} | {:.2} | {} | {} | {:.0} MiB | {} |",
                f.label,
                f.events,
                f.mean_bytes,
                f.publish_per_s,
                f.raw_consume_per_s,
                f.ingest_per_s,
                f.ingest_per_s / f.raw_consume_per_s,
                f.exact,
                rss.join(", "),
                f.peak_rss_mib,
                f.cpu
            );
        }
        if let Some((t, i, o)) = &self.ceiling {
            let _ = writeln!(s, "\n### Processor ceiling (pre-encoded events in memory, no broker)\n");
            let _ = writeln!(s, "| events | count | seconds | per second | CPU (of one core) |\n|---|---|---|---|---|");
            for (name, r) in
                [("decision traces", t), ("interactions", i), ("suppressions, attributions, model metrics", o)]
            {
                let _ = writeln!(s, "| {name} | {} | {:.1} | {:.0} | {} |", r.events, r.secs, r.per_s(), r.cpu());
            }
        }
        if self.reads.len() > 2 {
            self.sizes_table(s);
        }
        if let (Some((small_n, small)), Some((large_n, large))) = (self.reads.first(), self.reads.get(1)) {
            let _ = writeln!(s, "\n### Read latency, uncached, through the API (ms)\n");
            let _ = writeln!(s, "| type | parameters | days | p50 @{small_n} | p99 @{small_n} | raw SQL @{small_n} | p50 @{large_n} | p99 @{large_n} | raw SQL @{large_n} | raw ÷ p99 @{large_n} |\n|---|---|---|---|---|---|---|---|---|---|");
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
                    "| {} | {} | {} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {} | {} |",
                    a.kind,
                    a.params.trim_start_matches('&').replace('&', ", "),
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
        let _ = writeln!(
            s,
            "\n### API throughput (wrk -t2 -c64, rotating over the 18 types and their filters × 4 windows)\n"
        );
        let _ =
            writeln!(s, "| mode | req/s | p50 ms | p99 ms | non-2xx | CPU of both cores |\n|---|---|---|---|---|---|");
        for l in &self.load {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.2} | {:.2} | {} | {} |",
                l.label,
                l.requests_per_s,
                l.p50_ms,
                l.p99_ms,
                l.non_2xx,
                l.cpu_text()
            );
        }
    }

    /// p99 of every read at every size, and the largest size's ÷ the smallest's.
    fn sizes_table(&self, s: &mut String) {
        let sizes: Vec<String> = self.reads.iter().map(|(n, _)| format!("p99 @{n}")).collect();
        let (first, last) = (self.reads[0].0, self.reads[self.reads.len() - 1].0);
        let _ = writeln!(s, "\n### Read latency at every size, uncached, p99 (ms)\n");
        let _ = writeln!(
            s,
            "| type | parameters | days | {} | @{last} ÷ @{first} |\n|---|---|---|{}---|",
            sizes.join(" | "),
            "---|".repeat(sizes.len())
        );
        for (i, f) in self.reads[0].1.iter().enumerate() {
            let p99: Vec<f64> = self.reads.iter().filter_map(|(_, v)| v.get(i)).map(|g| g.p99_ms).collect();
            let cells: Vec<String> = p99.iter().map(|ms| format!("{ms:.2}")).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.2} |",
                f.kind,
                f.params.trim_start_matches('&').replace('&', ", "),
                f.days,
                cells.join(" | "),
                p99.last().unwrap_or(&f64::NAN) / f.p99_ms
            );
        }
    }
}

/// The largest p99 ratio of `to` over `from` (the same reads in the same order), and the read.
fn growth(from: &[ReadFigure], to: &[ReadFigure]) -> (f64, String) {
    from.iter()
        .zip(to)
        .map(|(a, b)| (b.p99_ms / a.p99_ms, format!("{} {} days {}", a.kind, a.params.trim_start_matches('&'), a.days)))
        .fold((0.0, String::new()), |best, x| if x.0 > best.0 { x } else { best })
}
