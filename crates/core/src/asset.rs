//! Assets: the symbols ratecast tracks and the ids clients address them by.
//!
//! Ids are 1..=N in the order of `ASSET_LIST`; this module parses and validates that
//! list once, at start-up, so nothing downstream has to re-check names or ids.

use std::{fmt, str::FromStr, sync::Arc};

/// The numeric id of an asset on the wire (`assetId`), 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AssetId(pub u32);

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One tracked asset: its id and its upstream symbol (e.g. `EURUSD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub id: AssetId,
    pub name: Arc<str>,
}

/// The default asset list: ids 1..5 in this order.
pub const DEFAULT_ASSETS: &str = "EURUSD,USDJPY,GBPUSD,AUDUSD,USDCAD";

/// The validated, ordered list of tracked assets. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetList(Arc<[Asset]>);

/// The longest symbol accepted; upstream symbols are short (`US.ECOMM`, `COIN.us`).
const MAX_NAME_LEN: usize = 32;

/// Why an `ASSET_LIST` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetListError {
    #[error("the asset list is empty")]
    Empty,
    #[error("asset #{position} is empty (check for a doubled or trailing comma)")]
    EmptyName { position: usize },
    #[error(
        "asset name {name:?} is invalid: use 1-{MAX_NAME_LEN} letters, digits, '.', '_' or '-'"
    )]
    InvalidName { name: String },
    #[error("asset {name:?} is listed twice")]
    Duplicate { name: String },
}

impl AssetList {
    /// Builds the list from names in id order (the first name gets id 1).
    pub fn new<I, S>(names: I) -> Result<Self, AssetListError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut assets: Vec<Asset> = Vec::new();
        for (index, name) in names.into_iter().enumerate() {
            let name = name.as_ref().trim();
            if name.is_empty() {
                return Err(AssetListError::EmptyName {
                    position: index + 1,
                });
            }
            let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if name.len() > MAX_NAME_LEN || !name.chars().all(valid_char) {
                return Err(AssetListError::InvalidName {
                    name: name.to_owned(),
                });
            }
            if assets.iter().any(|a| &*a.name == name) {
                return Err(AssetListError::Duplicate {
                    name: name.to_owned(),
                });
            }
            let id = u32::try_from(index + 1).map_err(|_| AssetListError::InvalidName {
                name: name.to_owned(),
            })?;
            assets.push(Asset {
                id: AssetId(id),
                name: name.into(),
            });
        }
        if assets.is_empty() {
            return Err(AssetListError::Empty);
        }
        Ok(Self(assets.into()))
    }

    pub fn get(&self, id: AssetId) -> Option<&Asset> {
        let index = usize::try_from(id.0).ok()?.checked_sub(1)?;
        self.0.get(index)
    }

    pub fn by_name(&self, name: &str) -> Option<&Asset> {
        self.0.iter().find(|a| &*a.name == name)
    }

    /// The position of `id` in the list (`id - 1`), if it exists.
    pub fn index_of(&self, id: AssetId) -> Option<usize> {
        self.get(id).map(|_| id.0 as usize - 1)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Asset> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for AssetList {
    type Err = AssetListError;

    /// Parses the comma-separated `ASSET_LIST` form, e.g. `EURUSD,USDJPY`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(AssetListError::Empty);
        }
        Self::new(s.split(','))
    }
}

impl fmt::Display for AssetList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, asset) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&asset.name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_list_order_starting_at_one() {
        let list: AssetList = "EURUSD, USDJPY ,GBPUSD".parse().expect("valid list");
        let ids: Vec<(u32, &str)> = list.iter().map(|a| (a.id.0, &*a.name)).collect();
        assert_eq!(ids, vec![(1, "EURUSD"), (2, "USDJPY"), (3, "GBPUSD")]);
        assert_eq!(list.get(AssetId(2)).map(|a| &*a.name), Some("USDJPY"));
        assert_eq!(list.get(AssetId(0)), None);
        assert_eq!(list.get(AssetId(4)), None);
        assert_eq!(list.index_of(AssetId(3)), Some(2));
        assert_eq!(list.to_string(), "EURUSD,USDJPY,GBPUSD");
    }

    #[test]
    fn bad_lists_are_refused_with_the_reason() {
        assert_eq!("".parse::<AssetList>(), Err(AssetListError::Empty));
        assert_eq!(" ".parse::<AssetList>(), Err(AssetListError::Empty));
        assert_eq!(
            "EURUSD,,USDJPY".parse::<AssetList>(),
            Err(AssetListError::EmptyName { position: 2 })
        );
        assert_eq!(
            "EURUSD,EURUSD".parse::<AssetList>(),
            Err(AssetListError::Duplicate {
                name: "EURUSD".into()
            })
        );
        assert!(matches!(
            "EUR USD".parse::<AssetList>(),
            Err(AssetListError::InvalidName { .. })
        ));
    }

    #[test]
    fn upstream_style_symbols_are_accepted() {
        let list: AssetList = "US.ECOMM,COIN.us,USOil".parse().expect("valid list");
        assert_eq!(list.len(), 3);
        assert_eq!(list.by_name("COIN.us").map(|a| a.id), Some(AssetId(2)));
    }
}
