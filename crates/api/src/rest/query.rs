//! Query strings of `/v1` requests, parsed at the edge: the parameters, each
//! given at most once; `asset` by name or id; and the rest handed to the
//! websocket's own parser as the request it stands for, so both faces check a
//! range, an interval or a bound with the same rules and the same words.

use actix_web::web::Query;
use ratecast_core::{
    Asset, AssetId, AssetList,
    protocol::{ClientRequest, ErrorCode, RequestError, parse_request},
};
use serde_json::{Map, Value, json};

use super::errors::RestError;

/// A 400 with a websocket error code.
pub(super) fn bad(code: ErrorCode, message: impl Into<String>) -> RestError {
    RestError::BadRequest(RequestError::new(code, message))
}

/// The parameters of one query string.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn parse(query: &str) -> Result<Self, RestError> {
        Query::<Vec<(String, String)>>::from_query(query)
            .map(|pairs| Self(pairs.into_inner()))
            .map_err(|error| {
                bad(
                    ErrorCode::InvalidRequest,
                    format!("the query string is not valid: {error}"),
                )
            })
    }

    /// The value of `name`, if given; given twice is refused.
    pub(super) fn one(&self, name: &str) -> Result<Option<&str>, RestError> {
        let mut given = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (given.next(), given.next()) {
            (_, Some(_)) => Err(bad(
                ErrorCode::InvalidRequest,
                format!("\"{name}\" is given more than once"),
            )),
            (value, None) => Ok(value.map(String::as_str)),
        }
    }

    /// The websocket request `action` with `asset` and the parameters
    /// `fields` (integers where they parse as one, else strings), parsed by the
    /// websocket's parser.
    pub(super) fn as_request(
        &self,
        action: &str,
        fields: &[&str],
        assets: &AssetList,
    ) -> Result<ClientRequest, RestError> {
        let asset = parse_asset(self.one("asset")?, assets)?;
        let mut message = Map::new();
        message.insert("assetId".into(), json!(asset.id.0));
        for &field in fields {
            if let Some(text) = self.one(field)? {
                let value = text
                    .parse::<i64>()
                    .map_or_else(|_| Value::from(text), Value::from);
                message.insert(field.into(), value);
            }
        }
        let request = json!({"action": action, "message": message}).to_string();
        parse_request(&request, assets).map_err(RestError::BadRequest)
    }
}

/// An asset by name, or else by id.
pub(super) fn parse_asset(given: Option<&str>, assets: &AssetList) -> Result<Asset, RestError> {
    let given = given.filter(|s| !s.is_empty()).ok_or_else(|| {
        bad(
            ErrorCode::InvalidAssetId,
            "missing \"asset\": a name such as EURUSD, or an id",
        )
    })?;
    if let Some(asset) = assets.by_name(given) {
        return Ok(asset.clone());
    }
    if given.bytes().all(|b| b.is_ascii_digit()) {
        let id = given
            .parse::<u32>()
            .ok()
            .filter(|&id| id > 0)
            .ok_or_else(|| {
                bad(
                    ErrorCode::InvalidAssetId,
                    format!("\"asset\" {given} is out of range"),
                )
            })?;
        if let Some(asset) = assets.get(AssetId(id)) {
            return Ok(asset.clone());
        }
    }
    Err(RestError::UnknownAsset(given.to_owned()))
}
