//! How a wide view row stores the counters of many ids in one `bytea` (migration
//! `20261203000010_wide_selection_rows`): entries sorted by id bytes, in one of two encodings
//! told apart by the value's first byte.
//!
//! - **Compact**, what ingest writes: the byte `0xFF`, then per entry
//!   `LEB128 byte length of the id | id (UTF-8) | N counters, each zigzag LEB128`.
//!   Counters are mostly 0 or small, so a `selection_flow_daily` entry (15 counters) takes
//!   ~25 bytes instead of 129, and every batch reads and rewrites these values whole
//!   (BENCHMARKS.md, "Write path, seventh pass").
//! - **Fixed**, what the migration wrote (SQL writes it with `int2send` and `int8send`) and
//!   ingest wrote until the compact one: per entry
//!   `int2 BE byte length of the id | id (UTF-8) | N counters as int8 BE`. Ids are at most 256
//!   bytes, so its first byte is 0 or 1, never `0xFF`. Such a row is read as it is and written
//!   back compact the next time a batch merges into it: no migration rewrites the rows.
//!
//! Ingest merges a batch's entries into the stored value ([`merge`]); the API sums the values
//! of a window ([`Sums`]). Both check every addition: a sum out of `int8` is an error, as it is
//! for a narrow view's `bigint` column.

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

/// First byte of a compact value.
const COMPACT: u8 = 0xFF;

/// Reads the entries of a value, either encoding, in their stored (id byte) order.
pub fn entries<const N: usize>(value: &[u8]) -> Entries<'_, N> {
    let compact = value.first() == Some(&COMPACT);
    Entries { value, at: usize::from(compact), compact }
}

pub struct Entries<'a, const N: usize> {
    value: &'a [u8],
    at: usize,
    compact: bool,
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
        let end = self.at.checked_add(n).ok_or(Damaged { at: self.at, what })?;
        let bytes = self.value.get(self.at..end).ok_or(Damaged { at: self.at, what })?;
        self.at += n;
        Ok(bytes)
    }

    /// An unsigned LEB128 number of at most 64 bits.
    fn varint(&mut self, what: &'static str) -> Result<u64, Damaged> {
        let start = self.at;
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.take(1, what)?[0];
            // The tenth byte holds bit 63 only.
            if shift == 63 && b > 1 {
                break;
            }
            n |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(Damaged { at: start, what: "varint out of range" })
    }

    fn entry(&mut self) -> Result<(&'a str, [i64; N]), Damaged> {
        let len = if self.compact {
            usize::try_from(self.varint("truncated id length")?)
                .map_err(|_| Damaged { at: self.at, what: "id too long" })?
        } else {
            let len = self.take(2, "truncated id length")?;
            u16::from_be_bytes([len[0], len[1]]) as usize
        };
        let at = self.at;
        let id =
            std::str::from_utf8(self.take(len, "truncated id")?).map_err(|_| Damaged { at, what: "id not UTF-8" })?;
        let mut counters = [0; N];
        for c in &mut counters {
            *c = if self.compact {
                let z = self.varint("truncated counters")?;
                // zigzag: 0, -1, 1, -2, … ↔ 0, 1, 2, 3, …
                (z >> 1) as i64 ^ -((z & 1) as i64)
            } else {
                let b = self.take(8, "truncated counters")?;
                i64::from_be_bytes(b.try_into().expect("8 bytes"))
            };
        }
        Ok((id, counters))
    }
}

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends one entry, compact.
fn push<const N: usize>(out: &mut Vec<u8>, id: &str, counters: &[i64; N]) {
    push_varint(out, id.len() as u64);
    out.extend_from_slice(id.as_bytes());
    for &c in counters {
        push_varint(out, ((c << 1) ^ (c >> 63)) as u64);
    }
}

/// The stored value (either encoding) plus `delta` (sorted by id bytes, ids distinct), compact:
/// one pass over both.
pub fn merge<const N: usize>(stored: &[u8], delta: &[(&str, [i64; N])]) -> Result<Vec<u8>, WideError> {
    let mut out = Vec::with_capacity(1 + stored.len() + delta.len() * (12 + 2 * N));
    out.push(COMPACT);
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

/// Counters summed per id over many values (the rows of a window), in id byte order.
#[derive(Debug, Default)]
pub struct Sums<const N: usize> {
    by_id: Vec<(String, [i64; N])>,
}

impl<const N: usize> Sums<N> {
    /// Adds every entry of `value`; `keep` filters ids (e.g. one catalog category). Both the
    /// value's entries and the sums are in id order, so this is one merge of the two lists:
    /// one comparison per entry, where a map took a search (a 90-day read by channel sums 450
    /// values of 200 offers each).
    pub fn add(&mut self, value: &[u8], keep: impl Fn(&str) -> bool) -> Result<(), WideError> {
        let mut merged = Vec::with_capacity(self.by_id.len().max(16));
        let mut old = std::mem::take(&mut self.by_id).into_iter().peekable();
        let mut previous: Option<&str> = None;
        for entry in entries::<N>(value) {
            let (id, c) = entry?;
            // Every writer keeps the entries in id order; one out of it is a damaged value.
            if previous.is_some_and(|p| p >= id) {
                return Err(Damaged { at: 0, what: "entries out of id order" }.into());
            }
            previous = Some(id);
            if !keep(id) {
                continue;
            }
            while let Some(smaller) = old.next_if(|(o, _)| o.as_str() < id) {
                merged.push(smaller);
            }
            match old.next_if(|(o, _)| o == id) {
                Some((o, mut sum)) => {
                    add(id, &mut sum, &c)?;
                    merged.push((o, sum));
                }
                None => merged.push((id.to_owned(), c)),
            }
        }
        merged.extend(old);
        self.by_id = merged;
        Ok(())
    }

    /// The sums, in id byte order.
    pub fn into_sorted(self) -> Vec<(String, [i64; N])> {
        self.by_id
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn encode<const N: usize>(e: &[(&str, [i64; N])]) -> Vec<u8> {
        merge(&[], e).unwrap()
    }

    /// The fixed encoding, as the migration and earlier builds wrote it.
    fn fixed<const N: usize>(e: &[(&str, [i64; N])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (id, counters) in e {
            out.extend_from_slice(&(id.len() as u16).to_be_bytes());
            out.extend_from_slice(id.as_bytes());
            counters.iter().for_each(|c| out.extend_from_slice(&c.to_be_bytes()));
        }
        out
    }

    #[test]
    fn a_fixed_value_is_read_and_merged_into_a_compact_one() {
        let stored = fixed(&[("a", [1, i64::MIN]), ("c", [3, i64::MAX])]);
        assert_eq!(entries::<2>(&stored).collect::<Vec<_>>(), [Ok(("a", [1, i64::MIN])), Ok(("c", [3, i64::MAX]))]);
        let merged = merge(&stored, &[("b", [7, 8]), ("c", [10, -20])]).unwrap();
        assert_eq!(merged[0], COMPACT);
        let got: Vec<(&str, [i64; 2])> = entries(&merged).map(Result::unwrap).collect();
        assert_eq!(got, [("a", [1, i64::MIN]), ("b", [7, 8]), ("c", [13, i64::MAX - 20])]);
        // A window reads rows of both encodings.
        let mut sums = Sums::<2>::default();
        sums.add(&stored, |_| true).unwrap();
        sums.add(&encode(&[("a", [1, 1])]), |_| true).unwrap();
        assert_eq!(sums.into_sorted(), [("a".into(), [2, i64::MIN + 1]), ("c".into(), [3, i64::MAX])]);
        // Small counters take a byte each: 1 + (1 + 1 + 2) per entry.
        assert_eq!(encode(&[("a", [0, -1]), ("b", [63, -64])]).len(), 9);
    }

    #[test]
    fn a_damaged_compact_value_is_an_error() {
        let value = encode(&[("abc", [300])]);
        // The marker alone is an empty value; any other cut ends inside an entry.
        for cut in 2..value.len() {
            assert!(entries::<1>(&value[..cut]).any(|e| e.is_err()), "cut at {cut}");
        }
        // An id length or a counter past 64 bits: eleven bytes, or a tenth byte above 1.
        let mut long = vec![COMPACT, 1, b'x'];
        long.extend([0x80; 10]);
        long.push(0);
        assert!(matches!(merge::<1>(&long, &[]), Err(WideError::Damaged(_))));
        let mut tenth = vec![COMPACT, 1, b'x'];
        tenth.extend([0xFF; 9]);
        tenth.push(2);
        assert!(Sums::<1>::default().add(&tenth, |_| true).is_err());
        assert!(merge::<1>(&[COMPACT, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1], &[]).is_err());
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
            stored_fixed: bool,
        ) {
            let stored_entries: Vec<(&str, [i64; 2])> = stored.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let stored_value = if stored_fixed { fixed(&stored_entries) } else { encode(&stored_entries) };
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

    proptest::proptest! {
        /// Sums over values of either encoding = the map of the kept ids' sums, in id order.
        #[test]
        fn sums_are_the_map_of_sums(
            values in proptest::collection::vec(
                (proptest::collection::btree_map("[abé😀]{0,3}", proptest::array::uniform2(-1000_i64..1000), 0..8), proptest::bool::ANY),
                0..6),
        ) {
            let keep = |id: &str| !id.starts_with('b');
            let mut sums = Sums::<2>::default();
            let mut want: BTreeMap<String, [i64; 2]> = BTreeMap::new();
            for (value, is_fixed) in &values {
                let e: Vec<(&str, [i64; 2])> = value.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                sums.add(&if *is_fixed { fixed(&e) } else { encode(&e) }, keep).unwrap();
                for (k, v) in value.iter().filter(|(k, _)| keep(k)) {
                    want.entry(k.clone()).or_insert([0, 0]).iter_mut().zip(v).for_each(|(w, v)| *w += v);
                }
            }
            proptest::prop_assert_eq!(sums.into_sorted(), want.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn entries_out_of_id_order_are_a_damaged_value() {
        assert!(Sums::<1>::default().add(&fixed(&[("b", [1]), ("a", [2])]), |_| true).is_err());
    }

    #[test]
    fn sums_filter_and_add() {
        let (a, b) = (encode(&[("o1", [1]), ("o2", [2])]), encode(&[("o1", [10]), ("o3", [3])]));
        let mut sums = Sums::<1>::default();
        sums.add(&a, |id| id != "o2").unwrap();
        sums.add(&b, |id| id != "o2").unwrap();
        assert_eq!(sums.into_sorted(), [("o1".to_owned(), [11]), ("o3".to_owned(), [3])]);
    }
}
