//! Money is stored as integer micro-units: sums are exact and independent of the order events
//! arrive in, which floating point sums are not (and determinism is part of the contract).

/// Largest amount accepted on one event: keeps every per-day sum far from `i64::MAX` micros.
pub const MAX_AMOUNT: f64 = 1e12;

pub fn micros(value: f64) -> Result<i64, String> {
    if !value.is_finite() || value.abs() > MAX_AMOUNT {
        return Err(format!("amount {value} is outside ±{MAX_AMOUNT}"));
    }
    Ok((value * 1e6).round() as i64)
}

/// Micro-units to a value with 2 decimals (SPEC 4: money has 2 decimals).
pub fn to_money(micros: i64) -> f64 {
    // Round half away from zero on the exact integer, then scale: no float accumulation.
    let cents = (micros.abs() + 5_000) / 10_000 * micros.signum();
    cents as f64 / 100.0
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
}
