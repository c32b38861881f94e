//! One event under construction: a JSON document, the number literals to write into it
//! verbatim, and the verdict of every field set so far (a field set again, or a subtree
//! replaced or removed, takes its verdicts along).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::numbers::{Num, Why};

pub struct Doc {
    v: Value,
    lits: Vec<Num>,
    whys: BTreeMap<String, Vec<&'static str>>,
}

impl Doc {
    pub fn new(v: Value) -> Doc {
        Doc { v, lits: Vec::new(), whys: BTreeMap::new() }
    }

    /// A stand-in for a number literal, written verbatim by [`Doc::render`]. The caller
    /// accounts for its verdict (the literal may be repeated in a long array).
    pub fn literal(&mut self, n: Num) -> Value {
        self.lits.push(n);
        Value::String(format!("@@lit{}@@", self.lits.len() - 1))
    }

    /// Sets the value at a dotted path (`scoringResults.0.score`), creating missing objects
    /// but never array elements. Returns whether it was set; a path through a missing array
    /// element or a scalar is left alone, and so is its verdict.
    pub fn set(&mut self, path: &str, value: Value, why: &[&'static str]) -> bool {
        let segs: Vec<&str> = path.split('.').collect();
        let last = segs[segs.len() - 1];
        let Some(container) = parent_of(&mut self.v, &segs) else { return false };
        match container {
            Value::Object(o) => {
                o.insert(last.to_owned(), value);
            }
            Value::Array(a) => match last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(slot) => *slot = value,
                None => return false,
            },
            _ => return false,
        }
        self.forget(path);
        if !why.is_empty() {
            self.whys.insert(path.to_owned(), why.to_vec());
        }
        true
    }

    pub fn num(&mut self, path: &str, (n, why): (Num, Why)) -> bool {
        let v = self.literal(n);
        self.set(path, v, why)
    }

    /// Removes an object member (an optional field) and the verdicts under it.
    pub fn remove(&mut self, path: &str) {
        let (parent, last) = match path.rsplit_once('.') {
            Some((p, l)) => (walk_existing(&mut self.v, p), l),
            None => (Some(&mut self.v), path),
        };
        if let Some(Value::Object(o)) = parent {
            o.remove(last);
        }
        self.forget(path);
    }

    fn forget(&mut self, path: &str) {
        let under = format!("{path}.");
        self.whys.retain(|k, _| k != path && !k.starts_with(&under));
    }

    pub fn str(&self, path: &str) -> Option<&str> {
        path.split('.').try_fold(&self.v, |v, seg| v.get(seg)).and_then(Value::as_str)
    }

    /// Every reason a field of the document gives.
    pub fn why(&self) -> BTreeSet<&'static str> {
        self.whys.values().flat_map(|w| w.iter().copied()).collect()
    }

    /// The payload as sent, and as a JSON Schema validator can read it (literals beyond a
    /// double's range replaced by the largest double of their sign).
    pub fn render(&self) -> (Vec<u8>, Vec<u8>) {
        let text = serde_json::to_string(&self.v).expect("a JSON value serializes");
        let (mut payload, mut proxy) = (text.clone(), text);
        // Highest index first: "@@lit1@@" is not a prefix of "@@lit12@@" anyway (the closing
        // "@@"), but a literal never contains "@@", so the order cannot matter.
        for (i, n) in self.lits.iter().enumerate().rev() {
            let stand_in = format!("\"@@lit{i}@@\"");
            payload = payload.replace(&stand_in, &n.text());
            proxy = proxy.replace(&stand_in, &n.proxy_text());
        }
        (payload.into_bytes(), proxy.into_bytes())
    }
}

/// The container holding the last of `segs`, objects created on the way; never an array
/// (a missing array is not made up as an object holding "0").
fn parent_of<'a>(v: &'a mut Value, segs: &[&str]) -> Option<&'a mut Value> {
    let mut cur = v;
    for (i, seg) in segs[..segs.len() - 1].iter().enumerate() {
        cur = match cur {
            Value::Object(o) => {
                if !o.contains_key(*seg) {
                    if segs[i + 1].parse::<usize>().is_ok() {
                        return None;
                    }
                    o.insert((*seg).to_owned(), Value::Object(Map::new()));
                }
                o.get_mut(*seg)?
            }
            Value::Array(a) => a.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn walk_existing<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.').try_fold(v, |v, seg| match v {
        Value::Object(o) => o.get_mut(seg),
        Value::Array(a) => a.get_mut(seg.parse::<usize>().ok()?),
        _ => None,
    })
}
