//! How a wide view row stores the counters of many ids in one `bytea` (migration
//! `20261203000010_wide_selection_rows`): entries sorted by id bytes, in one of two encodings
//! told apart by the value's first byte.
//!
//! - **Compact**, what ingest writes: the byte `0xFF`, then per entry
//!   `LEB128 byte length of the id | id (UTF-8) | N counters, each zigzag LEB128`.
//!   Counters are mostly 0 or small, so a `selection_flow_totals` entry (15 counters) takes
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

/// Two entry lists (each sorted by id bytes, ids distinct) as one: ids of both, counters of
/// equal ids added. What one row of a running total receives from several days of a batch.
pub fn add_entries<'a, const N: usize>(
    a: &[(&'a str, [i64; N])],
    b: &[(&'a str, [i64; N])],
) -> Result<Vec<(&'a str, [i64; N])>, OutOfRange> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => return Ok(out),
            (Some(x), Some(y)) => x.0.as_bytes().cmp(y.0.as_bytes()),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => out.extend(a.next().copied()),
            std::cmp::Ordering::Greater => out.extend(b.next().copied()),
            std::cmp::Ordering::Equal => {
                let (&(id, mut c), (_, d)) = (a.next().expect("peeked"), b.next().expect("peeked"));
                add(id, &mut c, d)?;
                out.push((id, c));
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

fn subtract<const N: usize>(id: &str, from: &mut [i64; N], d: &[i64; N]) -> Result<(), OutOfRange> {
    for (counter, (a, b)) in from.iter_mut().zip(d).enumerate() {
        *a = a.checked_sub(*b).ok_or_else(|| OutOfRange { id: id.to_owned(), counter })?;
    }
    Ok(())
}

/// One chain's window: the entries of its later checkpoint `hi` minus those of its earlier one
/// `lo` (none: `hi` as it is), in id byte order, ids borrowed from the values. What [`Sums`]
/// gives for `hi` added and `lo` subtracted, without an owned id per entry nor a merge per
/// value: grouped by segment at 10M traces a read diffs 20 pairs of ~190 entries and lists 20
/// of each (BENCHMARKS.md "Reads, eighth pass"). A checkpoint holds every id of the ones
/// before it, so an id of `lo` missing from `hi` is not expected; it is still counted
/// (negated), as `Sums` would.
pub fn difference<'a, const N: usize>(
    hi: &'a [u8],
    lo: Option<&'a [u8]>,
) -> Result<Vec<(&'a str, [i64; N])>, WideError> {
    let mut out = in_order::<N>(hi)?;
    let Some(lo) = lo else { return Ok(out) };
    let mut missing = Vec::new();
    let mut at = 0;
    for (id, c) in in_order::<N>(lo)? {
        while out.get(at).is_some_and(|(o, _)| *o < id) {
            at += 1;
        }
        match out.get_mut(at) {
            Some((o, sum)) if *o == id => subtract(id, sum, &c)?,
            _ => {
                let mut negated = [0; N];
                subtract(id, &mut negated, &c)?;
                missing.push((id, negated));
            }
        }
    }
    if !missing.is_empty() {
        out.extend(missing);
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    Ok(out)
}

/// The entries of a value, checked to be in strictly increasing id order.
fn in_order<const N: usize>(value: &[u8]) -> Result<Vec<(&str, [i64; N])>, WideError> {
    let mut out: Vec<(&str, [i64; N])> = Vec::new();
    for entry in entries::<N>(value) {
        let (id, c) = entry?;
        if out.last().is_some_and(|(p, _)| *p >= id) {
            return Err(Damaged { at: 0, what: "entries out of id order" }.into());
        }
        out.push((id, c));
    }
    Ok(out)
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
        self.fold(value, keep, false)
    }

    /// Subtracts every entry of `value` (a running total's earlier checkpoint: a window's sums
    /// are its last checkpoint minus the one before it); `keep` as for [`Sums::add`].
    pub fn subtract(&mut self, value: &[u8], keep: impl Fn(&str) -> bool) -> Result<(), WideError> {
        self.fold(value, keep, true)
    }

    fn fold(&mut self, value: &[u8], keep: impl Fn(&str) -> bool, negate: bool) -> Result<(), WideError> {
        let mut merged = Vec::with_capacity(self.by_id.len().max(16));
        let mut old = std::mem::take(&mut self.by_id).into_iter().peekable();
        let mut previous: Option<&str> = None;
        for entry in entries::<N>(value) {
            let (id, mut c) = entry?;
            // Every writer keeps the entries in id order; one out of it is a damaged value.
            if previous.is_some_and(|p| p >= id) {
                return Err(Damaged { at: 0, what: "entries out of id order" }.into());
            }
            previous = Some(id);
            if !keep(id) {
                continue;
            }
            if negate {
                for (counter, v) in c.iter_mut().enumerate() {
                    *v = v.checked_neg().ok_or_else(|| OutOfRange { id: id.to_owned(), counter })?;
                }
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

pub mod interaction_counts;
pub mod limbs;
pub mod offer_interactions;
pub mod offer_selection;
#[cfg(test)]
mod tests;
