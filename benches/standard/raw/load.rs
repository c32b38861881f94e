//! Loading the raw tables: every applied event once, as received, by COPY.

use chrono::{DateTime, Utc};
use consumers::batch::Entry;
use consumers::events::{Event, MembershipOp, SuppressionOp};
use sqlx::postgres::PgPoolCopyExt;
use sqlx::PgPool;

/// Bytes per COPY message: large enough to amortize round trips, small enough to stream.
const CHUNK: usize = 4 << 20;

/// Whether an event goes in a table.
type Belongs = fn(&Event) -> bool;

/// The tables COPY fills besides `raw.traces`, with the events that go in each.
const TABLES: [(&str, Belongs); 5] = [
    (
        "raw.interactions (tenant_id, id, customer_id, offer_id, channel_id, creative_id, decision_trace_id, outcome, \
         revenue, cost, occurred_at)",
        |e| matches!(e, Event::Interaction(_)),
    ),
    (
        "raw.suppressions (tenant_id, id, suppression_id, customer_id, offer_id, channel_id, policy_id, policy_type, \
         op, created_at, expires_at)",
        |e| matches!(e, Event::Suppression(_)),
    ),
    ("raw.attributions (tenant_id, id, conversion_id, model, value, offer_id, channel_id, occurred_at)", |e| {
        matches!(e, Event::Attribution(_))
    }),
    ("raw.model_metrics (tenant_id, id, model_id, model_name, auc, feature_importance, evaluated_at)", |e| {
        matches!(e, Event::ModelMetric(_))
    }),
    ("raw.segment_membership (tenant_id, id, segment_id, customer_id, op, at)", |e| matches!(e, Event::Membership(_))),
];

/// Appends `events` (catalog changes are skipped) with one COPY (text format) per table, rows
/// in the order given (suppressions rely on it); the traces go through two concurrent COPYs, so
/// that both cores parse jsonb.
pub async fn load(pool: &PgPool, events: &[Entry]) -> anyhow::Result<()> {
    let traces: Vec<&Entry> = events.iter().filter(|e| matches!(e.event, Event::Trace(_))).collect();
    let (a, b) = traces.split_at(traces.len() / 2);
    let trace_copy = "COPY raw.traces (tenant_id, id, customer_id, decision_flow_id, channel_id, degraded, \
                      total_duration_ms, created_at, doc) FROM STDIN";
    let others = async {
        for (table, belongs) in TABLES {
            let rows: Vec<&Entry> = events.iter().filter(|e| belongs(&e.event)).collect();
            copy(pool, &format!("COPY {table} FROM STDIN"), &rows).await?;
        }
        Ok(())
    };
    let (r1, r2, r3) = tokio::join!(copy(pool, trace_copy, a), copy(pool, trace_copy, b), others);
    r1.and(r2).and(r3)
}

/// Streams the rows of `events` (all of one table, in order) into one COPY.
async fn copy(pool: &PgPool, statement: &str, events: &[&Entry]) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut copy = pool.copy_in_raw(statement).await?;
    let mut w = Row { buf: Vec::with_capacity(CHUNK + 64 * 1024), first: true };
    for e in events {
        w.event(e)?;
        if w.buf.len() >= CHUNK {
            copy.send(std::mem::replace(&mut w.buf, Vec::with_capacity(CHUNK + 64 * 1024))).await?;
        }
    }
    if !w.buf.is_empty() {
        copy.send(w.buf).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// Rows in COPY text format: tab-separated fields, `\N` for NULL, times as UTC `timestamp`s.
struct Row {
    buf: Vec<u8>,
    first: bool,
}

impl Row {
    fn event(&mut self, entry: &Entry) -> anyhow::Result<()> {
        match &entry.event {
            Event::Trace(t) => {
                self.s(&t.tenant_id).s(&t.id).s(&t.customer_id).o(&t.decision_flow_id).o(&t.channel_id);
                self.s(if t.degraded { "t" } else { "f" }).n(t.total_duration_ms).t(&t.created_at);
                // The payload as received.
                self.s(std::str::from_utf8(&entry.origin.payload.bytes())?);
            }
            Event::Interaction(i) => {
                self.s(&i.tenant_id).s(&i.id).s(&i.customer_id).s(&i.offer_id).s(&i.channel_id);
                self.o(&i.creative_id).o(&i.decision_trace_id).s(i.outcome.as_str()).n(i.revenue).n(i.cost);
                self.t(&i.occurred_at);
            }
            Event::Suppression(s) => {
                self.s(&s.tenant_id).s(&s.id).s(&s.suppression_id).s(&s.customer_id).o(&s.offer_id);
                self.o(&s.channel_id).s(&s.policy_id).s(&s.policy_type);
                self.s(if s.op == SuppressionOp::Create { "create" } else { "lift" }).t(&s.created_at);
                self.o(&s.expires_at.map(|t| t.naive_utc().to_string()));
            }
            Event::Attribution(a) => {
                self.s(&a.tenant_id).s(&a.id).s(&a.conversion_id).s(&a.model).n(a.value).o(&a.offer_id);
                self.o(&a.channel_id).t(&a.occurred_at);
            }
            Event::ModelMetric(m) => {
                self.s(&m.tenant_id).s(&m.id).s(&m.model_id).s(&m.model_name).n(m.auc);
                self.s(&serde_json::to_string(&m.feature_importance)?).t(&m.evaluated_at);
            }
            Event::Membership(m) => {
                self.s(&m.tenant_id).s(&m.id).s(&m.segment_id).s(&m.customer_id);
                self.s(if m.op == MembershipOp::Add { "add" } else { "remove" }).t(&m.at);
            }
            Event::Catalog(_) => return Ok(()),
        }
        self.buf.push(b'\n');
        self.first = true;
        Ok(())
    }

    fn sep(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.buf.push(b'\t');
        }
    }

    /// A text field, escaped: backslash, newline, carriage return and tab.
    fn s(&mut self, v: &str) -> &mut Self {
        self.sep();
        let mut s = v.as_bytes();
        while let Some(i) = s.iter().position(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t')) {
            self.buf.extend_from_slice(&s[..i]);
            self.buf.extend_from_slice(match s[i] {
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                _ => b"\\t",
            });
            s = &s[i + 1..];
        }
        self.buf.extend_from_slice(s);
        self
    }

    fn o(&mut self, v: &Option<String>) -> &mut Self {
        match v {
            Some(v) => self.s(v),
            None => {
                self.sep();
                self.buf.extend_from_slice(b"\\N");
                self
            }
        }
    }

    /// f64 Display: the shortest text that parses back to the same value, never an exponent.
    fn n(&mut self, v: f64) -> &mut Self {
        self.s(&v.to_string())
    }

    fn t(&mut self, v: &DateTime<Utc>) -> &mut Self {
        self.s(&v.naive_utc().to_string())
    }
}
