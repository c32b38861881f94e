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
    /// Sums over values of either encoding, each added or subtracted = the map of the kept
    /// ids' sums, in id order.
    #[test]
    fn sums_are_the_map_of_sums(
        values in proptest::collection::vec(
            (proptest::collection::btree_map("[abé😀]{0,3}", proptest::array::uniform2(-1000_i64..1000), 0..8), proptest::bool::ANY, proptest::bool::ANY),
            0..6),
    ) {
        let keep = |id: &str| !id.starts_with('b');
        let mut sums = Sums::<2>::default();
        let mut want: BTreeMap<String, [i64; 2]> = BTreeMap::new();
        for (value, is_fixed, minus) in &values {
            let e: Vec<(&str, [i64; 2])> = value.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let value_bytes = if *is_fixed { fixed(&e) } else { encode(&e) };
            if *minus { sums.subtract(&value_bytes, keep) } else { sums.add(&value_bytes, keep) }.unwrap();
            let sign = if *minus { -1 } else { 1 };
            for (k, v) in value.iter().filter(|(k, _)| keep(k)) {
                want.entry(k.clone()).or_insert([0, 0]).iter_mut().zip(v).for_each(|(w, v)| *w += sign * v);
            }
        }
        proptest::prop_assert_eq!(sums.into_sorted(), want.into_iter().collect::<Vec<_>>());
    }
}

proptest::proptest! {
    /// add_entries(a, b) = the map of both lists' sums, in id byte order, or an error
    /// exactly when a sum leaves int8.
    #[test]
    fn add_entries_is_the_map_of_sums(
        a in proptest::collection::btree_map("[abé😀]{0,3}", proptest::array::uniform2(proptest::num::i64::ANY), 0..8),
        b in proptest::collection::btree_map("[abé😀]{0,3}", proptest::array::uniform2(proptest::num::i64::ANY), 0..8),
    ) {
        // BTreeMap<String> iterates in byte order, the entries' order.
        let x: Vec<(&str, [i64; 2])> = a.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let y: Vec<(&str, [i64; 2])> = b.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let mut want: BTreeMap<&str, [Option<i64>; 2]> = x.iter().map(|(k, v)| (*k, v.map(Some))).collect();
        for (k, v) in &y {
            let e = want.entry(k).or_insert([Some(0), Some(0)]);
            e.iter_mut().zip(v).for_each(|(w, v)| *w = w.and_then(|w| w.checked_add(*v)));
        }
        match add_entries(&x, &y) {
            Ok(got) => {
                let want: Vec<(&str, [i64; 2])> = want.into_iter().map(|(k, v)| (k, v.map(Option::unwrap))).collect();
                proptest::prop_assert_eq!(got, want);
            }
            Err(_) => proptest::prop_assert!(want.values().flatten().any(Option::is_none)),
        }
    }
}

proptest::proptest! {
    /// difference(hi, lo) = hi added and lo subtracted by `Sums` (either encoding, lo's ids a
    /// subset of hi's as in a chain, or not), or an error exactly when `Sums` has one.
    #[test]
    fn difference_is_what_sums_give(
        // Without i64::MIN, which `Sums` cannot negate where a difference may still fit.
        hi in proptest::collection::btree_map("[abé😀]{0,3}", proptest::array::uniform2(i64::MIN + 1..=i64::MAX), 0..8),
        lo in proptest::option::of(proptest::collection::btree_map("[abé😀]{0,3}", proptest::array::uniform2(i64::MIN + 1..=i64::MAX), 0..8)),
        fixed_hi in proptest::bool::ANY,
        fixed_lo in proptest::bool::ANY,
    ) {
        let value = |m: &BTreeMap<String, [i64; 2]>, is_fixed: bool| {
            let e: Vec<(&str, [i64; 2])> = m.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            if is_fixed { fixed(&e) } else { encode(&e) }
        };
        let hi = value(&hi, fixed_hi);
        let lo = lo.map(|lo| value(&lo, fixed_lo));
        let mut sums = Sums::<2>::default();
        let want = sums
            .add(&hi, |_| true)
            .and_then(|()| lo.as_ref().map_or(Ok(()), |lo| sums.subtract(lo, |_| true)))
            .map(|()| sums.into_sorted());
        match (difference::<2>(&hi, lo.as_deref()), want) {
            (Ok(got), Ok(want)) => {
                let got: Vec<(String, [i64; 2])> = got.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                proptest::prop_assert_eq!(got, want);
            }
            (got, want) => proptest::prop_assert!(got.is_err() && want.is_err(), "{:?} / {:?}", got, want),
        }
    }
}

#[test]
fn entries_out_of_id_order_are_a_damaged_value() {
    assert!(Sums::<1>::default().add(&fixed(&[("b", [1]), ("a", [2])]), |_| true).is_err());
    assert!(difference::<1>(&encode(&[("a", [1])]), Some(&fixed(&[("b", [1]), ("a", [2])]))).is_err());
}

#[test]
fn sums_filter_and_add() {
    let (a, b) = (encode(&[("o1", [1]), ("o2", [2])]), encode(&[("o1", [10]), ("o3", [3])]));
    let mut sums = Sums::<1>::default();
    sums.add(&a, |id| id != "o2").unwrap();
    sums.add(&b, |id| id != "o2").unwrap();
    assert_eq!(sums.into_sorted(), [("o1".to_owned(), [11]), ("o3".to_owned(), [3])]);
}
