//! How a wide view row stores the counters of many ids in one `bytea` (migration
//! `20261203000010_wide_selection_rows`): entries sorted by id bytes, each
//!
//! `int2 BE byte length of the id | id (UTF-8) | N counters as int8 BE`
//!
//! so SQL can write it too (`int2send`, `int8send`), which is how existing rows carried over.
//! Ingest merges a batch's entries into the stored value ([`merge`]); the API sums the values
//! of a window ([`Sums`]). Both check every addition: a sum out of `int8` is an error, as it is
//! for a narrow view's `bigint` column.

use std::collections::BTreeMap;

/// The value cannot be read: not this encoding (a bug or a damaged row, never user data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("wide row value damaged at byte {at}: {what}")]
pub struct Damaged {
    pub at: usize,
    pub what: &'static str,
}

/// A counter of an id would leave `int8`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("counter {counter} of {id:?} is out of range for type bigint")]
pub struct OutOfRange {
    pub id: String,
    pub counter: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WideError {
    #[error(transparent)]
    Damaged(#[from] Damaged),
    #[error(transparent)]
    OutOfRange(#[from] OutOfRange),
}

/// Reads the entries of a value, in their stored (id byte) order.
pub fn entries<const N: usize>(value: &[u8]) -> Entries<'_, N> {
    Entries { value, at: 0 }
}

pub struct Entries<'a, const N: usize> {
    value: &'a [u8],
    at: usize,
}

impl<'a, const N: usize> Iterator for Entries<'a, N> {
    type Item = Result<(&'a str, [i64; N]), Damaged>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at == self.value.len() {
            return None;
        }
        let entry = self.entry();
        if entry.is_err() {
            self.at = self.value.len();
        }
        Some(entry)
    }
}

impl<'a, const N: usize> Entries<'a, N> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Damaged> {
        let bytes = self.value.get(self.at..self.at + n).ok_or(Damaged { at: self.at, what })?;
        self.at += n;
        Ok(bytes)
    }

    fn entry(&mut self) -> Result<(&'a str, [i64; N]), Damaged> {
        let len = self.take(2, "truncated id length")?;
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        let at = self.at;
        let id =
            std::str::from_utf8(self.take(len, "truncated id")?).map_err(|_| Damaged { at, what: "id not UTF-8" })?;
        let mut counters = [0; N];
        for c in &mut counters {
            let b = self.take(8, "truncated counters")?;
            *c = i64::from_be_bytes(b.try_into().expect("8 bytes"));
        }
        Ok((id, counters))
    }
}

/// Appends one entry. Ids are at most 256 bytes (the decode limits), far inside `int2`.
fn push<const N: usize>(out: &mut Vec<u8>, id: &str, counters: &[i64; N]) {
    let len = u16::try_from(id.len()).expect("ids are at most 256 bytes");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    for c in counters {
        out.extend_from_slice(&c.to_be_bytes());
    }
}

/// The stored value plus `delta` (sorted by id bytes, ids distinct): one pass over both.
pub fn merge<const N: usize>(stored: &[u8], delta: &[(&str, [i64; N])]) -> Result<Vec<u8>, WideError> {
    let mut out = Vec::with_capacity(stored.len() + delta.len() * (12 + 8 * N));
    let mut old = entries::<N>(stored).peekable();
    let mut new = delta.iter().peekable();
    loop {
        let take_old = match (old.peek(), new.peek()) {
            (None, None) => return Ok(out),
            (Some(Err(e)), _) => return Err(e.clone().into()),
            (Some(Ok((o, _))), Some((n, _))) => match o.as_bytes().cmp(n.as_bytes()) {
                std::cmp::Ordering::Less => Some(true),
                std::cmp::Ordering::Greater => Some(false),
                std::cmp::Ordering::Equal => None,
            },
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
        };
        match take_old {
            Some(true) => {
                let (id, c) = old.next().expect("peeked")?;
                push(&mut out, id, &c);
            }
            Some(false) => {
                let (id, c) = new.next().expect("peeked");
                push(&mut out, id, c);
            }
            None => {
                let (id, mut c) = old.next().expect("peeked")?;
                let (_, d) = new.next().expect("peeked");
                add(id, &mut c, d)?;
                push(&mut out, id, &c);
            }
        }
    }
}

fn add<const N: usize>(id: &str, into: &mut [i64; N], d: &[i64; N]) -> Result<(), OutOfRange> {
    for (counter, (a, b)) in into.iter_mut().zip(d).enumerate() {
        *a = a.checked_add(*b).ok_or_else(|| OutOfRange { id: id.to_owned(), counter })?;
    }
    Ok(())
}

/// Counters summed per id over many values (the rows of a window).
#[derive(Debug, Default)]
pub struct Sums<const N: usize> {
    pub by_id: BTreeMap<String, [i64; N]>,
}

impl<const N: usize> Sums<N> {
    /// Adds every entry of `value`; `keep` filters ids (e.g. one catalog category).
    pub fn add(&mut self, value: &[u8], keep: impl Fn(&str) -> bool) -> Result<(), WideError> {
        for entry in entries::<N>(value) {
            let (id, c) = entry?;
            if !keep(id) {
                continue;
            }
            match self.by_id.get_mut(id) {
                Some(sum) => add(id, sum, &c)?,
                None => {
                    self.by_id.insert(id.to_owned(), c);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode<const N: usize>(e: &[(&str, [i64; N])]) -> Vec<u8> {
        merge(&[], e).unwrap()
    }

    #[test]
    fn merge_adds_equal_ids_and_keeps_byte_order() {
        let stored = encode(&[("a", [1, 2]), ("c", [3, 4]), ("é", [5, 6])]);
        let merged = merge(&stored, &[("b", [7, 8]), ("c", [10, 20]), ("z", [1, 1])]).unwrap();
        let got: Vec<(&str, [i64; 2])> = entries(&merged).map(Result::unwrap).collect();
        assert_eq!(got, [("a", [1, 2]), ("b", [7, 8]), ("c", [13, 24]), ("z", [1, 1]), ("é", [5, 6])]);
    }

    #[test]
    fn the_sql_encoding_is_read() {
        // What `int2send(1::int2) || convert_to('x', 'UTF8') || int8send(-2)` writes.
        let value = [0, 1, b'x', 255, 255, 255, 255, 255, 255, 255, 254];
        assert_eq!(entries::<1>(&value).collect::<Vec<_>>(), [Ok(("x", [-2]))]);
    }

    #[test]
    fn a_sum_out_of_int8_is_an_error_not_a_wrap() {
        let stored = encode(&[("a", [i64::MAX - 1, 0])]);
        let err = merge(&stored, &[("a", [2, 0])]).unwrap_err();
        assert_eq!(err, WideError::OutOfRange(OutOfRange { id: "a".into(), counter: 0 }));
        let mut sums = Sums::<2>::default();
        sums.add(&stored, |_| true).unwrap();
        assert!(sums.add(&stored, |_| true).is_err());
    }

    #[test]
    fn a_damaged_value_is_an_error() {
        let mut value = encode(&[("abc", [1])]);
        value.pop();
        assert!(matches!(merge::<1>(&value, &[]), Err(WideError::Damaged(_))));
        assert!(Sums::<1>::default().add(&[0, 9, b'x'], |_| true).is_err());
    }

    fn map(e: &[(String, [i64; 2])]) -> BTreeMap<String, [i64; 2]> {
        e.iter().cloned().collect()
    }

    proptest::proptest! {
        /// merge(stored, delta) = the per-id sums of both, in id byte order, or an error
        /// exactly when a sum leaves int8; whatever the ids (non-ASCII too) and counters.
        #[test]
        fn merge_is_the_map_of_sums(
            stored in proptest::collection::btree_map("[abé😀]{0,3}", proptest::array::uniform2(proptest::num::i64::ANY), 0..8),
            delta in proptest::collection::btree_map("[abé😀]{0,3}", proptest::array::uniform2(-3_i64..3), 0..8),
        ) {
            let stored_value = encode(&stored.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>());
            let d: Vec<(&str, [i64; 2])> = delta.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let mut want = map(&stored.into_iter().collect::<Vec<_>>());
            let mut overflow = false;
            for (k, v) in &delta {
                let e = want.entry(k.clone()).or_insert([0, 0]);
                for (a, b) in e.iter_mut().zip(v) {
                    match a.checked_add(*b) {
                        Some(x) => *a = x,
                        None => overflow = true,
                    }
                }
            }
            match merge(&stored_value, &d) {
                Ok(value) => {
                    proptest::prop_assert!(!overflow);
                    let got: Vec<(String, [i64; 2])> =
                        entries(&value).map(|e| e.map(|(k, c)| (k.to_owned(), c)).unwrap()).collect();
                    proptest::prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>());
                }
                Err(e) => proptest::prop_assert!(overflow, "{}", e),
            }
        }
    }

    #[test]
    fn sums_filter_and_add() {
        let (a, b) = (encode(&[("o1", [1]), ("o2", [2])]), encode(&[("o1", [10]), ("o3", [3])]));
        let mut sums = Sums::<1>::default();
        sums.add(&a, |id| id != "o2").unwrap();
        sums.add(&b, |id| id != "o2").unwrap();
        assert_eq!(sums.by_id.into_iter().collect::<Vec<_>>(), [("o1".to_owned(), [11]), ("o3".to_owned(), [3])]);
    }
}
