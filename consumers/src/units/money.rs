//! Money is stored as integer micro-units: sums are exact and independent of the order events
//! arrive in, which floating point sums are not (and determinism is part of the contract).
//!
//! One amount is an `i64` of micro-units (at most [`MAX_AMOUNT`] units, 10^18 micros). Sums are
//! [`Micros`], an `i128` that PostgreSQL stores as `numeric`: no sum of amounts can overflow
//! (docs/events.md 2.8), however many events a row or a window adds up.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// Largest amount accepted on one event (revenue, cost, value, budget).
pub const MAX_AMOUNT: f64 = 1e12;

pub fn micros(value: f64) -> Result<i64, String> {
    if !value.is_finite() || value.abs() > MAX_AMOUNT {
        return Err(format!("amount {value} is outside ±{MAX_AMOUNT}"));
    }
    Ok((value * 1e6).round() as i64)
}

/// Micro-units to a value with 2 decimals (docs/dashboard-types.md 4: money has 2 decimals).
pub fn to_money(micros: impl Into<i128>) -> f64 {
    let micros = micros.into();
    // Round half away from zero on the exact integer, then scale: no float accumulation.
    let cents = (micros.abs() + 5_000) / 10_000 * micros.signum();
    cents as f64 / 100.0
}

/// A sum of micro-units, read from and written to `numeric` columns (binary format).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Micros(pub i128);

const NUMERIC: Oid = Oid(1700);
const NUMERIC_ARRAY: Oid = Oid(1231);
/// PostgreSQL's numeric digits are base 10,000.
const NBASE: i128 = 10_000;
const SIGN_NEGATIVE: u16 = 0x4000;

impl Type<Postgres> for Micros {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(NUMERIC)
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        ty.oid() == Some(NUMERIC)
    }
}

impl PgHasArrayType for Micros {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(NUMERIC_ARRAY)
    }
}

impl Encode<'_, Postgres> for Micros {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(&encode_numeric(self.0));
        Ok(IsNull::No)
    }
}

impl Decode<'_, Postgres> for Micros {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => decode_numeric(value.as_bytes()?).map(Micros),
            PgValueFormat::Text => Ok(Micros(value.as_str()?.parse()?)),
        }
    }
}

/// numeric_send's layout: ndigits, weight (of the first digit, in powers of 10,000), sign and
/// display scale, then the digits, most significant first, trailing zero digits left out.
fn encode_numeric(v: i128) -> Vec<u8> {
    let mut digits = Vec::new();
    let mut rest = v.unsigned_abs();
    while rest > 0 {
        digits.push((rest % NBASE as u128) as i16);
        rest /= NBASE as u128;
    }
    let weight = digits.len() as i16 - 1;
    let zeros = digits.iter().take_while(|d| **d == 0).count();
    let significant: Vec<i16> = digits[zeros..].iter().rev().copied().collect();
    let mut out = Vec::with_capacity(8 + 2 * significant.len());
    out.extend_from_slice(&(significant.len() as i16).to_be_bytes());
    out.extend_from_slice(&(if significant.is_empty() { 0 } else { weight }).to_be_bytes());
    out.extend_from_slice(&(if v < 0 { SIGN_NEGATIVE } else { 0 }).to_be_bytes());
    out.extend_from_slice(&0i16.to_be_bytes());
    for d in significant {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

fn decode_numeric(b: &[u8]) -> Result<i128, BoxDynError> {
    let word = |i: usize| -> Result<i16, BoxDynError> {
        let bytes = b.get(2 * i..2 * i + 2).ok_or("truncated numeric")?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    };
    let (ndigits, weight, sign) = (word(0)?, word(1)?, word(2)? as u16);
    if sign != 0 && sign != SIGN_NEGATIVE {
        return Err("a numeric that is not a finite number".into());
    }
    let mut v: i128 = 0;
    for i in 0..ndigits.max(0) as usize {
        let digit = i128::from(word(4 + i)?);
        let power = i32::from(weight) - i as i32;
        if power < 0 {
            if digit != 0 {
                return Err("a fractional numeric where micro-units are integers".into());
            }
            continue;
        }
        v = v.checked_mul(NBASE).and_then(|v| v.checked_add(digit)).ok_or("numeric beyond i128")?;
    }
    // Digits left out at the end are zeros: scale up to the last one's weight.
    let trailing = i32::from(weight) + 1 - i32::from(ndigits);
    for _ in 0..trailing.max(0) {
        v = v.checked_mul(NBASE).ok_or("numeric beyond i128")?;
    }
    Ok(if sign == SIGN_NEGATIVE { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_two_decimals() {
        assert_eq!(micros(12.34).unwrap(), 12_340_000);
        assert_eq!(to_money(micros(0.1).unwrap() + micros(0.2).unwrap()), 0.3);
        assert_eq!(to_money(1_005_000), 1.01);
        assert_eq!(to_money(1_004_999), 1.0);
        assert!(micros(f64::NAN).is_err());
        assert!(micros(2e12).is_err());
    }

    #[test]
    fn numeric_binary_round_trips() {
        for v in
            [0, 1, 9_999, 10_000, 10_001, 100_000_000, 123_456_789_012_345_678, i128::MAX, -1, -10_000, i128::MIN + 1]
        {
            assert_eq!(decode_numeric(&encode_numeric(v)).unwrap(), v, "{v}");
        }
        // 10,000 is one digit of weight 1; trailing zero digits are left out.
        assert_eq!(encode_numeric(10_000), [0, 1, 0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(encode_numeric(0), [0, 0, 0, 0, 0, 0, 0, 0]);
        // 1.5 (weight 0, digits 1 and 5000) is not micro-units.
        assert!(decode_numeric(&[0, 2, 0, 0, 0, 0, 0, 1, 0, 1, 0x13, 0x88]).is_err());
        assert!(decode_numeric(&[0, 0, 0, 0, 0xC0, 0, 0, 0]).is_err());
    }
}
