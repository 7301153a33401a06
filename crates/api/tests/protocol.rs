//! The websocket protocol over real sockets: requests and their replies, bad
//! input answered with an error, pings, and what plain HTTP gets.

mod support;

use ratecast_testkit::http_get;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use support::ApiServer;

const ASSETS: &str = "EURUSD,USDJPY,GBPUSD";

#[tokio::test]
async fn assets_lists_every_asset_with_ids_in_list_order() {
    let server = ApiServer::start(ASSETS).await;
    let mut client = server.client().await;
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    assert_eq!(
        client.next_json().await,
        json!({"action":"assets","message":{"assets":[
            {"id":1,"name":"EURUSD"},{"id":2,"name":"USDJPY"},{"id":3,"name":"GBPUSD"}
        ]}})
    );
}

#[tokio::test]
async fn every_bad_input_gets_an_error_frame_and_the_connection_stays_open() {
    let server = ApiServer::start(ASSETS).await;
    let mut client = server.client().await;
    let cases: Vec<(Message, &str)> = vec![
        (Message::text("not json"), "invalid_json"),
        (Message::text(""), "invalid_json"),
        (Message::text("[]"), "invalid_request"),
        (Message::text("null"), "invalid_request"),
        (Message::text(r#"{"message":{}}"#), "invalid_request"),
        (Message::text(r#"{"action":"assets"}"#), "invalid_request"),
        (
            Message::text(r#"{"action":["assets"],"message":{}}"#),
            "invalid_request",
        ),
        (
            Message::text(r#"{"action":"assets","message":"{}"}"#),
            "invalid_request",
        ),
        (
            Message::text(r#"{"action":"delete","message":{}}"#),
            "unknown_action",
        ),
        (
            Message::text(r#"{"action":"subscribe","message":{"assetId":1.5}}"#),
            "invalid_asset_id",
        ),
        (
            Message::text(r#"{"action":"subscribe","message":{"assetId":-1}}"#),
            "invalid_asset_id",
        ),
        (
            Message::text(r#"{"action":"subscribe","message":{"assetId":4}}"#),
            "unknown_asset",
        ),
        (
            Message::binary(vec![0u8, 159, 146, 150]),
            "binary_not_supported",
        ),
    ];
    for (message, code) in cases {
        let sent = format!("{message:?}");
        client.send(message).await;
        let frame = client.next_json().await;
        assert_eq!(frame["action"], "error", "{sent} -> {frame}");
        assert_eq!(frame["message"]["code"], code, "{sent} -> {frame}");
        assert!(
            frame["message"]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty())
        );
    }
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    client.expect("assets").await;
}

#[tokio::test]
async fn client_pings_are_answered() {
    let server = ApiServer::start(ASSETS).await;
    let mut client = server.client().await;
    client.send(Message::Ping(b"hi".to_vec().into())).await;
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    // tungstenite queues the pong reply itself; the session stays healthy.
    client.expect("assets").await;
}

#[tokio::test]
async fn plain_http_gets_the_page_and_health_endpoints_answer() {
    let server = ApiServer::start(ASSETS).await;
    let (status, body) = http_get(server.addr, "/").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<html") && body.contains("ratecast"),
        "{body}"
    );
    assert_eq!(
        http_get(server.addr, "/healthz").await,
        (200, "ok\n".into())
    );
    assert_eq!(http_get(server.addr, "/readyz").await.0, 200);
    assert_eq!(http_get(server.addr, "/nope").await.0, 404);
}
