//! `GET /v1/assets`: the tracked assets, as the websocket's `assets` reply
//! carries them (`{"assets":[{"id":1,"name":"EURUSD"},…]}`). The list is fixed
//! for the life of the process, so its body and tag are built once.

use std::borrow::Cow;

use actix_web::{HttpRequest, HttpResponse, web};
use ratecast_core::{
    AssetList,
    protocol::{AssetsMessage, WireAsset},
};

use super::{Rest, cache::json_reply, errors::RestError};

/// The body of `GET /v1/assets`.
pub fn assets_body(assets: &AssetList) -> Vec<u8> {
    let assets = assets
        .iter()
        .map(|a| WireAsset {
            id: a.id.0,
            name: Cow::Borrowed(&a.name),
        })
        .collect();
    serde_json::to_vec(&AssetsMessage { assets }).expect("ids and names always serialize")
}

/// `no-cache`: the list never changes while the process runs, but a restart
/// with another `ASSET_LIST` changes it; the `ETag` makes revalidation cheap.
pub async fn get(req: HttpRequest, rest: web::Data<Rest>) -> Result<HttpResponse, RestError> {
    rest.serving()?;
    Ok(json_reply(
        &req,
        rest.assets_body.clone(),
        "no-cache",
        |_| {},
    ))
}
