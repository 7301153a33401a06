//! The simulated rate source: a plausible random walk per asset, for running
//! ratecast without an upstream (laptops, demos, benchmarks).
//!
//! Each asset starts near a realistic level for its symbol and moves by small
//! normally-distributed steps (about half a pip a second for FX majors) with a
//! weak pull back to its level, so it wanders like a rate but stays plausible
//! for days. Nothing it produces is real market data; the start-up log says so.

use std::sync::Mutex;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use ratecast_core::{AssetList, Point, point::round_value, sync::lock};

use crate::source::{FetchError, Quotes, RateSource};

/// Relative standard deviation of one one-second step.
const STEP_SIGMA: f64 = 0.000_04;
/// Fraction of the distance to the base level recovered per step.
const MEAN_REVERSION: f64 = 0.000_2;

/// A typical level for well-known symbols; others start at 100.
fn base_level(symbol: &str) -> f64 {
    match symbol.to_ascii_uppercase().as_str() {
        "EURUSD" => 1.0850,
        "USDJPY" => 151.20,
        "GBPUSD" => 1.2700,
        "AUDUSD" => 0.6550,
        "USDCAD" => 1.3650,
        "USDCHF" => 0.8800,
        "NZDUSD" => 0.6000,
        "EURGBP" => 0.8550,
        "EURJPY" => 163.50,
        "XAUUSD" => 2350.0,
        "BTCUSD" => 65000.0,
        _ => 100.0,
    }
}

/// Decimal places quoted at a price level: 5 for FX majors, fewer for big numbers.
fn decimals(level: f64) -> i32 {
    match level {
        l if l < 10.0 => 5,
        l if l < 1000.0 => 3,
        _ => 2,
    }
}

struct Walk {
    symbol: String,
    base: f64,
    price: f64,
}

/// Random-walk quotes for the configured assets.
pub struct SimulatedSource {
    walks: Mutex<(SmallRng, Vec<Walk>)>,
}

impl SimulatedSource {
    /// A source seeded from the OS: every run differs.
    pub fn new(assets: &AssetList) -> Self {
        Self::with_rng(assets, SmallRng::from_os_rng())
    }

    /// A reproducible source, for tests.
    pub fn seeded(assets: &AssetList, seed: u64) -> Self {
        Self::with_rng(assets, SmallRng::seed_from_u64(seed))
    }

    fn with_rng(assets: &AssetList, rng: SmallRng) -> Self {
        let walks = assets
            .iter()
            .map(|a| {
                let base = base_level(&a.name);
                Walk {
                    symbol: a.name.to_string(),
                    base,
                    price: base,
                }
            })
            .collect();
        Self {
            walks: Mutex::new((rng, walks)),
        }
    }

    /// Advances every walk one second and returns the new values by symbol.
    fn step(&self) -> Vec<(String, f64)> {
        let mut guard = lock(&self.walks);
        let (rng, walks) = &mut *guard;
        walks
            .iter_mut()
            .map(|walk| {
                let shock = standard_normal(rng) * STEP_SIGMA * walk.price;
                let pull = (walk.base - walk.price) * MEAN_REVERSION;
                walk.price = (walk.price + shock + pull).max(walk.base * 0.01);
                let scale = 10f64.powi(decimals(walk.base));
                let quoted = round_value((walk.price * scale).round() / scale);
                (walk.symbol.clone(), quoted)
            })
            .collect()
    }

    /// One point per asset per second for `from..=to`, continuing the walk, so a
    /// fresh embedded store can start with a full history window.
    pub fn backfill(&self, assets: &AssetList, from: i64, to: i64) -> Vec<Point> {
        let mut points = Vec::new();
        for time in from..=to {
            for (symbol, value) in self.step() {
                if let Some(asset) = assets.by_name(&symbol) {
                    points.push(Point {
                        asset_id: asset.id,
                        asset_name: asset.name.clone(),
                        time,
                        value,
                    });
                }
            }
        }
        points
    }
}

/// A standard normal sample (Box–Muller).
fn standard_normal(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl RateSource for SimulatedSource {
    async fn fetch(&self) -> Result<Quotes, FetchError> {
        Ok(self.step().into_iter().map(|(s, v)| (s, Ok(v))).collect())
    }

    fn describe(&self) -> String {
        "SIMULATED rates (random walk; not market data)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets() -> AssetList {
        "EURUSD,USDJPY,GBPUSD,AUDUSD,USDCAD,ZZZ"
            .parse()
            .expect("valid")
    }

    #[tokio::test]
    async fn quotes_every_asset_near_its_level() {
        let source = SimulatedSource::seeded(&assets(), 7);
        let quotes = source.fetch().await.expect("simulated never fails");
        for (symbol, low, high) in [
            ("EURUSD", 1.0, 1.2),
            ("USDJPY", 140.0, 160.0),
            ("ZZZ", 90.0, 110.0),
        ] {
            let value = quotes.get(symbol).expect("quoted");
            assert!((low..high).contains(&value), "{symbol} = {value}");
        }
    }

    #[test]
    fn a_day_of_walking_stays_plausible_and_moves() {
        let list = assets();
        let source = SimulatedSource::seeded(&list, 42);
        let points = source.backfill(&list, 0, 86_399);
        assert_eq!(points.len(), 86_400 * 6);
        let eurusd: Vec<f64> = points
            .iter()
            .filter(|p| &*p.asset_name == "EURUSD")
            .map(|p| p.value)
            .collect();
        let (min, max) = eurusd
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(min > 0.95 && max < 1.25, "EURUSD ranged {min}..{max}");
        assert!(max - min > 0.001, "EURUSD barely moved: {min}..{max}");
        let changes = eurusd.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(changes > 40_000, "only {changes} of 86399 seconds changed");
        assert!(
            eurusd.iter().all(|v| (v * 1e5).round() / 1e5 == *v),
            "5 decimals"
        );
    }

    #[test]
    fn backfill_stamps_one_point_per_asset_per_second() {
        let list = assets();
        let points = SimulatedSource::seeded(&list, 1).backfill(&list, 100, 102);
        let stamps: Vec<(u32, i64)> = points.iter().map(|p| (p.asset_id.0, p.time)).collect();
        assert_eq!(stamps.len(), 18);
        assert_eq!(
            &stamps[..7],
            &[
                (1, 100),
                (2, 100),
                (3, 100),
                (4, 100),
                (5, 100),
                (6, 100),
                (1, 101)
            ]
        );
    }
}
