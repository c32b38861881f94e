//! What the page shows, read back from the DOM, and compared with what the API answers for the
//! same request. The page marks every table with the JSON pointer of the array it lists
//! (`data-rows`), every group of tiles with the pointer of its object (`data-object`), a table
//! of an object's entries with `data-entries`, and each shown value with its field
//! (`data-field`); see web/js/render.js. Reading those marks keeps the test independent of
//! layout while checking the numbers a reader sees.

use serde_json::Value;

/// One panel as drawn: its state, the URL it fetched, and its marked values.
#[derive(Debug, serde::Deserialize)]
pub struct Drawn {
    #[serde(rename = "type")]
    pub kind: String,
    pub state: String,
    pub query: String,
    pub etag: Option<String>,
    pub text: String,
    pub tables: Vec<Table>,
    pub objects: Vec<Object>,
    pub entries: Vec<Entries>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Table {
    pub pointer: String,
    /// Per row, (field, shown text) of each marked cell.
    pub rows: Vec<Vec<(String, String)>>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Object {
    pub pointer: String,
    pub fields: Vec<(String, String)>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Entries {
    pub pointer: String,
    /// (key, shown value) of each row.
    pub rows: Vec<(String, String)>,
}

/// The script that reads every element matching `arguments[0]` (panels) as [`Drawn`].
pub const READ_PANELS: &str = r#"
const cells = (root) => [...root.querySelectorAll("[data-field]")].map((c) => [c.dataset.field, c.textContent]);
return [...document.querySelectorAll(arguments[0])].map((p) => ({
  type: p.dataset.type,
  state: p.dataset.state || "",
  query: p.dataset.query || "",
  etag: p.dataset.etag || null,
  text: p.textContent,
  tables: [...p.querySelectorAll("table[data-rows]")].map((t) => ({
    pointer: t.dataset.rows,
    rows: [...t.querySelectorAll("tbody tr")].map(cells),
  })),
  objects: [...p.querySelectorAll("[data-object]")].map((o) => ({ pointer: o.dataset.object, fields: cells(o) })),
  entries: [...p.querySelectorAll("table[data-entries]")].map((t) => ({
    pointer: t.dataset.entries,
    rows: [...t.querySelectorAll("tbody tr")].map((r) => [r.dataset.key, r.querySelector("[data-field]").textContent]),
  })),
}));
"#;

/// A dotted field of `row` ("result.topOffer.offerId"), as render.js's `field`.
fn field<'a>(row: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(row, |v, k| v.get(k).unwrap_or(&Value::Null))
}

/// Whether `shown` is how the page formats `value` (render.js `fmt`): numbers compared as
/// numbers (grouping commas dropped; 4 decimals shown), lists item by item.
pub fn shows(shown: &str, value: &Value) -> bool {
    match value {
        Value::Null => shown == "—",
        Value::Bool(b) => shown == if *b { "yes" } else { "no" },
        Value::Number(n) => {
            let want = n.as_f64().unwrap();
            match shown.replace(',', "").parse::<f64>() {
                Ok(got) if want.fract() == 0.0 && want.abs() < 1e15 => got == want,
                Ok(got) => (got - want).abs() <= 0.5e-4 + 1e-12 * want.abs(),
                Err(_) => false,
            }
        }
        Value::String(s) => shown == s,
        Value::Array(items) => {
            let parts: Vec<&str> = if shown.is_empty() { vec![] } else { shown.split(" · ").collect() };
            parts.len() == items.len() && parts.iter().zip(items).all(|(p, v)| shows(p, v))
        }
        Value::Object(_) => serde_json::from_str::<Value>(shown).is_ok_and(|v| &v == value),
    }
}

/// Compares everything `drawn` shows with `answer`; returns how many values were compared.
pub fn compare(drawn: &Drawn, answer: &Value) -> usize {
    let at = |pointer: &str| {
        answer.pointer(pointer).unwrap_or_else(|| panic!("{}: no {pointer:?} in the API's answer {answer}", drawn.kind))
    };
    let mut n = 0;
    for t in &drawn.tables {
        let rows = at(&t.pointer).as_array().unwrap_or_else(|| panic!("{}: {} is not an array", drawn.kind, t.pointer));
        assert_eq!(t.rows.len(), rows.len(), "{}: {} rows shown, the API has {}", drawn.kind, t.rows.len(), rows.len());
        for (i, (shown, row)) in t.rows.iter().zip(rows).enumerate() {
            for (f, text) in shown {
                let want = field(row, f);
                assert!(
                    shows(text, want),
                    "{} {}[{i}].{f}: the page shows {text:?}, the API says {want}",
                    drawn.kind,
                    t.pointer
                );
                n += 1;
            }
        }
    }
    for o in &drawn.objects {
        let obj = at(&o.pointer);
        for (f, text) in &o.fields {
            let want = field(obj, f);
            assert!(
                shows(text, want),
                "{} {}.{f}: the page shows {text:?}, the API says {want}",
                drawn.kind,
                o.pointer
            );
            n += 1;
        }
    }
    for e in &drawn.entries {
        let obj = at(&e.pointer).as_object().expect("entries of an object");
        assert_eq!(
            e.rows.len(),
            obj.len(),
            "{}: {} entries shown, the API has {}",
            drawn.kind,
            e.rows.len(),
            obj.len()
        );
        for (k, text) in &e.rows {
            assert!(
                shows(text, &obj[k]),
                "{} {}.{k}: the page shows {text:?}, the API says {}",
                drawn.kind,
                e.pointer,
                obj[k]
            );
            n += 1;
        }
    }
    n
}

#[test]
fn formatting_matches_the_page() {
    use serde_json::json;
    assert!(shows("1,250", &json!(1250)));
    assert!(!shows("1,251", &json!(1250)));
    assert!(shows("0.0696", &json!(0.0696)));
    assert!(shows("0.1235", &json!(0.123456)));
    assert!(!shows("0.1236", &json!(0.123)));
    assert!(shows("—", &Value::Null));
    assert!(shows("48 · 112 · 0", &json!([48, 112, 0])));
    assert!(shows("", &json!([])));
    assert!(shows("7.0", &json!("7.0")));
    assert!(!shows("7", &json!("7.0")));
    assert!(shows("yes", &json!(true)));
}
