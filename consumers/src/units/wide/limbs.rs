//! An unbounded sum (an `i128`, as `numeric` columns hold) as three `int8` counters of a wide
//! entry, `a·2^64 + b·2^32 + c`: split from one batch's sum, `b` and `c` are in [0, 2^32), and
//! limbs add as the sums they stand for do, with no carry. A stored entry receives one
//! addition per batch that touches it, so `b` and `c` stay in `int8` for 2^31 batches, and `a`
//! for any sum an `i128` holds. A window (one checkpoint minus another) subtracts limb by limb
//! and stands for the difference just as well.

/// `v` as `[a, b, c]`, `b` and `c` in [0, 2^32) (`a` is `v`'s floor over 2^64).
pub fn split(v: i128) -> [i64; 3] {
    const LOW: i128 = 0xFFFF_FFFF;
    [(v >> 64) as i64, ((v >> 32) & LOW) as i64, (v & LOW) as i64]
}

/// The sum three limbs stand for; `None` past `i128` (no data this service accepts).
pub fn join([a, b, c]: [i64; 3]) -> Option<i128> {
    i128::from(a).checked_mul(1 << 64)?.checked_add(i128::from(b) << 32)?.checked_add(i128::from(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_limbs_of_extreme_sums() {
        for v in [0, 1, -1, i128::from(i64::MAX), i128::from(i64::MIN), 1 << 64, -(1 << 64) - 1, i128::MAX, i128::MIN] {
            assert_eq!(join(split(v)), Some(v), "{v}");
        }
        assert_eq!(split(-1), [-1, 0xFFFF_FFFF, 0xFFFF_FFFF]);
    }

    proptest! {
        /// Limbs added counter by counter (as the wide rows add entries) stand for the sum, and
        /// so does a difference of two such sums (a window).
        #[test]
        fn limbs_add_and_subtract_as_the_sums_do(
            parts in proptest::collection::vec(-(1i128 << 100)..(1i128 << 100), 1..50),
            cut in 0usize..50,
        ) {
            let mut sums = vec![[0i64; 3]];
            for &p in &parts {
                let last = *sums.last().unwrap();
                let mut next = [0i64; 3];
                for ((n, s), v) in next.iter_mut().zip(last).zip(split(p)) {
                    *n = s.checked_add(v).expect("in int8");
                }
                sums.push(next);
            }
            prop_assert_eq!(join(*sums.last().unwrap()), Some(parts.iter().sum::<i128>()));
            let cut = cut.min(parts.len());
            let (hi, lo) = (sums[parts.len()], sums[cut]);
            let window = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
            prop_assert_eq!(join(window), Some(parts[cut..].iter().sum::<i128>()));
        }
    }
}
