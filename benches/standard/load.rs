//! API throughput under wrk (a separate process on loopback), 64 connections, rotating over
//! every dashboard type and window so that no single query is favoured.

use std::process::Command;

use crate::reads::{self, DAYS};

pub struct LoadFigure {
    pub label: String,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
    /// Where the CPU went during the run: the API process, PostgreSQL, the rest (wrk itself
    /// and the bench) and idle.
    pub cpu: crate::cpu::Split,
}

/// `api_pid`: the API process serving `base`, whose CPU share is reported.
pub fn wrk(label: &str, base: &str, key: &str, tenant: &str, secs: u64, api_pid: u32) -> anyhow::Result<LoadFigure> {
    let paths: Vec<String> = decision_views::api::DASHBOARD_TYPES
        .iter()
        .flat_map(|t| reads::cases(t).into_iter().flat_map(move |c| DAYS.iter().map(move |d| reads::path(t, *d, c))))
        .map(|p| format!("  {p:?},"))
        .collect();
    let script = format!(
        "local paths = {{\n{}\n}}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  \
         return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n",
        paths.join("\n")
    );
    let file = std::env::temp_dir().join(format!("dv-bench-{}.lua", std::process::id()));
    std::fs::write(&file, script)?;
    let before = crate::cpu::snapshot(api_pid, None);
    let out = Command::new("wrk")
        .args(["-t", "2", "-c", "64", "-d", &format!("{secs}s"), "--latency", "-s"])
        .arg(&file)
        .args(["-H", &format!("X-API-Key: {key}"), "-H", &format!("X-Tenant-Id: {tenant}")])
        .arg(base)
        .output()
        .map_err(|e| anyhow::anyhow!("run wrk (apt-get install wrk): {e}"))?;
    let cpu = crate::cpu::split(before, crate::cpu::snapshot(api_pid, None));
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    let figure = LoadFigure {
        label: label.to_owned(),
        requests_per_s: field(&text, "Requests/sec:").unwrap_or(0.0),
        p50_ms: latency(&text, "50%").unwrap_or(f64::NAN),
        p99_ms: latency(&text, "99%").unwrap_or(f64::NAN),
        non_2xx: field(&text, "Non-2xx or 3xx responses:").unwrap_or(0.0) as u64,
        cpu,
    };
    eprintln!(
        "[bench] wrk {label}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, non-2xx {}; CPU {}",
        figure.requests_per_s,
        figure.p50_ms,
        figure.p99_ms,
        figure.non_2xx,
        figure.cpu_text()
    );
    Ok(figure)
}

impl LoadFigure {
    /// The CPU split, of both cores.
    pub fn cpu_text(&self) -> String {
        let c = &self.cpu;
        format!(
            "API {:.0} %, PostgreSQL {:.0} %, wrk and the rest {:.0} %, idle {:.0} %",
            c.ingest, c.postgres, c.other, c.idle
        )
    }
}

fn field(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.trim().strip_prefix(name)).and_then(|v| v.trim().parse().ok())
}

/// A line of wrk's latency distribution, e.g. "     99%    3.21ms", in milliseconds.
fn latency(text: &str, quantile: &str) -> Option<f64> {
    let v = text.lines().map(str::trim).find_map(|l| l.strip_prefix(quantile))?.trim();
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let x: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => x / 1e3,
        "ms" => x,
        "s" => x * 1e3,
        _ => return None,
    })
}
