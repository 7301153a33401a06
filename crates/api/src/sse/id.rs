//! The event id of the SSE stream: where the client is in every followed
//! asset, so that a browser's `EventSource`, which remembers only the last id
//! it saw and sends it back as `Last-Event-ID`, resumes every asset at once.
//!
//! The format is `<assetId>:<time>` pairs joined by `,`, in the stream's asset
//! order, e.g. `1:1700000000,3:1700000003`: for each asset, the client has
//! every point up to `time` (Unix seconds) — the newest it was sent, or the
//! position the asset started from (its `since`, or the newest point of the
//! window when the stream began without a history). An asset with no position
//! yet (an empty window and no `since`) is left out. Asset ids are decimal
//! integers of a tracked asset, each at most once; times are non-negative
//! decimal integers; no spaces. The same text is what the `since` query
//! parameter takes per asset. This file parses and writes it, and nothing
//! else: which points follow a position is the hub's `since` rule.

use std::fmt::Write as _;

use ratecast_core::{AssetId, AssetList};

/// The longest id accepted: more than any asset list writes (each pair is at
/// most 10 + 1 + 19 + 1 bytes), so a huge header is refused before it is split.
const MAX_ID_BYTES: usize = 4096;

/// Each followed asset's position, in order; an asset appears at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions(Vec<(AssetId, i64)>);

/// Why an id (a `Last-Event-ID`, or a per-asset `since`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("it is empty")]
    Empty,
    #[error("it is longer than {MAX_ID_BYTES} bytes")]
    TooLong,
    #[error("{0:?} is not <assetId>:<time>, both non-negative integers")]
    Malformed(String),
    #[error("asset {0} is not tracked by this server")]
    UnknownAsset(u32),
    #[error("asset {0} appears more than once")]
    Duplicate(u32),
}

impl Positions {
    /// Parses `text`, checking each asset against `assets`.
    pub fn parse(text: &str, assets: &AssetList) -> Result<Self, IdError> {
        if text.is_empty() {
            return Err(IdError::Empty);
        }
        if text.len() > MAX_ID_BYTES {
            return Err(IdError::TooLong);
        }
        let mut positions: Vec<(AssetId, i64)> = Vec::new();
        for pair in text.split(',') {
            let malformed = || IdError::Malformed(pair.to_owned());
            let (id, time) = pair.split_once(':').ok_or_else(malformed)?;
            let id = digits(id).and_then(|id| id.parse::<u32>().ok());
            let time = digits(time).and_then(|t| t.parse::<i64>().ok());
            let (Some(id), Some(time)) = (id, time) else {
                return Err(malformed());
            };
            if assets.get(AssetId(id)).is_none() {
                return Err(IdError::UnknownAsset(id));
            }
            if positions.iter().any(|(seen, _)| seen.0 == id) {
                return Err(IdError::Duplicate(id));
            }
            positions.push((AssetId(id), time));
        }
        Ok(Self(positions))
    }

    /// The position of `asset`, if it has one.
    pub fn of(&self, asset: AssetId) -> Option<i64> {
        self.0.iter().find(|(id, _)| *id == asset).map(|(_, t)| *t)
    }

    /// The assets that have a position, in order.
    pub fn assets(&self) -> impl Iterator<Item = AssetId> + '_ {
        self.0.iter().map(|(id, _)| *id)
    }
}

/// `text` if it is a non-empty run of ASCII digits.
fn digits(text: &str) -> Option<&str> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then_some(text)
}

/// Appends the id of `positions` (assets without one are left out) to `out`;
/// writes nothing when none has one.
pub fn write_id(out: &mut String, positions: impl Iterator<Item = (AssetId, Option<i64>)>) {
    let mut first = true;
    for (asset, time) in positions {
        let Some(time) = time else { continue };
        if !first {
            out.push(',');
        }
        first = false;
        // Writing to a String cannot fail.
        let _ = write!(out, "{}:{time}", asset.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets() -> AssetList {
        "EURUSD,USDJPY,GBPUSD".parse().expect("assets")
    }

    fn id_of(positions: &[(u32, Option<i64>)]) -> String {
        let mut out = String::new();
        write_id(&mut out, positions.iter().map(|&(a, t)| (AssetId(a), t)));
        out
    }

    #[test]
    fn a_written_id_parses_back_to_the_same_positions() {
        let id = id_of(&[(1, Some(1_700_000_000)), (3, Some(1_700_000_003))]);
        assert_eq!(id, "1:1700000000,3:1700000003");
        let parsed = Positions::parse(&id, &assets()).expect("valid");
        assert_eq!(parsed.of(AssetId(1)), Some(1_700_000_000));
        assert_eq!(parsed.of(AssetId(3)), Some(1_700_000_003));
        assert_eq!(parsed.of(AssetId(2)), None);
        assert_eq!(
            parsed.assets().collect::<Vec<_>>(),
            vec![AssetId(1), AssetId(3)]
        );
        assert_eq!(
            Positions::parse("2:0", &assets())
                .expect("valid")
                .of(AssetId(2)),
            Some(0)
        );
    }

    #[test]
    fn assets_without_a_position_are_left_out_and_none_writes_nothing() {
        assert_eq!(id_of(&[(1, None), (2, Some(5))]), "2:5");
        assert_eq!(id_of(&[(1, None)]), "");
        assert_eq!(id_of(&[]), "");
    }

    #[test]
    fn malformed_ids_are_refused_with_the_part_that_is_wrong() {
        for bad in [
            "1",
            "1:",
            ":5",
            "1:5,",
            ",1:5",
            "1:5,,2:6",
            "a:5",
            "1:x",
            "1:-5",
            "-1:5",
            "1:5 ",
            " 1:5",
            "1:5;2:6",
            "1:1.5",
            "1:5:6",
            "1:99999999999999999999",
            "99999999999:5",
            "+1:5",
            "1:+5",
        ] {
            assert!(
                matches!(Positions::parse(bad, &assets()), Err(IdError::Malformed(_))),
                "{bad:?}: {:?}",
                Positions::parse(bad, &assets())
            );
        }
        assert_eq!(Positions::parse("", &assets()), Err(IdError::Empty));
        let long = "1:5,".repeat(2000);
        assert_eq!(Positions::parse(&long, &assets()), Err(IdError::TooLong));
    }

    #[test]
    fn unknown_and_repeated_assets_are_refused() {
        assert_eq!(
            Positions::parse("1:5,4:6", &assets()),
            Err(IdError::UnknownAsset(4))
        );
        assert_eq!(
            Positions::parse("0:5", &assets()),
            Err(IdError::UnknownAsset(0))
        );
        assert_eq!(
            Positions::parse("1:5,2:6,1:7", &assets()),
            Err(IdError::Duplicate(1))
        );
    }
}
