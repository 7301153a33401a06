//! Points: one asset's value at one Unix second, and how a quote becomes a value.

use std::sync::Arc;

use crate::asset::AssetId;

/// One stored rate: `value` of asset `asset_id` at Unix second `time`.
///
/// (asset_id, time) identifies a point; stores keep at most one per pair.
/// `value` is finite and positive: the upstream parser guarantees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub asset_id: AssetId,
    /// Carried with the point because it is part of every `point` frame and of
    /// the Mongo document; an `Arc` so cloning a point does not allocate.
    pub asset_name: Arc<str>,
    pub time: i64,
    pub value: f64,
}

/// Decimal places kept in a value: enough for every FX quote (5 places) and its mid.
pub const VALUE_DECIMALS: i32 = 6;

/// Rounds to [`VALUE_DECIMALS`] so `(1.1 + 1.2) / 2` is written `1.15`, not
/// `1.1500000000000001`: the nearest double to a 6-place decimal prints as that decimal.
pub fn round_value(value: f64) -> f64 {
    let scale = 10f64.powi(VALUE_DECIMALS);
    let scaled = value * scale;
    if !scaled.is_finite() {
        // Beyond ~1e302 scaling overflows; such magnitudes have no fractional digits anyway.
        return value;
    }
    scaled.round() / scale
}

/// The mid price `(bid + ask) / 2`, rounded; `None` unless both are finite and positive.
pub fn mid_price(bid: f64, ask: f64) -> Option<f64> {
    let valid = |x: f64| x.is_finite() && x > 0.0;
    if !valid(bid) || !valid(ask) {
        return None;
    }
    let mid = round_value(bid / 2.0 + ask / 2.0);
    valid(mid).then_some(mid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mid_price_has_no_float_noise() {
        assert_eq!(mid_price(1.09107, 1.0913), Some(1.091185));
        assert_eq!(mid_price(162.491, 162.524), Some(162.5075));
        assert_eq!(mid_price(0.1, 0.2), Some(0.15));
        assert_eq!(
            serde_json::to_string(&mid_price(1.09393, 1.09395)).expect("serializes"),
            "1.09394"
        );
    }

    #[test]
    fn mid_price_refuses_non_positive_and_non_finite_quotes() {
        assert_eq!(mid_price(0.0, 1.0), None);
        assert_eq!(mid_price(-1.0, 1.0), None);
        assert_eq!(mid_price(f64::NAN, 1.0), None);
        assert_eq!(mid_price(1.0, f64::INFINITY), None);
        assert_eq!(mid_price(f64::MAX, f64::MAX), Some(f64::MAX));
        // Too small to survive rounding to 6 places: not a usable rate.
        assert_eq!(mid_price(1e-9, 1e-9), None);
    }
}
