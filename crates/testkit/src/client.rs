//! A websocket test client: every wait has a deadline, and what the server sent
//! comes back as JSON or as the close frame.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, protocol::frame::coding::CloseCode},
};

use crate::WAIT;

/// A websocket client that answers with what the server sent, within [`WAIT`].
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the next frame from the server was.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Closed(Option<(CloseCode, String)>),
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async(format!("ws://{addr}/")),
        )
        .await
        .expect("connected in time")
        .expect("websocket handshake");
        Self { ws }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send text");
    }

    pub async fn send(&mut self, message: Message) {
        self.ws.send(message).await.expect("send frame");
    }

    /// Sends, reporting a failure instead of failing the test (the server may
    /// already have closed the connection).
    pub async fn try_send_text(
        &mut self,
        text: &str,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.ws.send(Message::text(text)).await
    }

    /// Starts a normal close from the client side.
    pub async fn close(&mut self) {
        let _ = self.ws.close(None).await;
    }

    /// The next raw frame, without a deadline or filtering.
    pub async fn raw_next(
        &mut self,
    ) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        self.ws.next().await
    }

    /// The next data or close frame; pings and pongs are skipped.
    pub async fn receive(&mut self) -> Received {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame arrived in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Received::Json(serde_json::from_str(&text).expect("server sends JSON"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Received::Closed(frame.map(|f| (f.code, f.reason.to_string())));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    /// The next JSON message; fails the test on a close.
    pub async fn next_json(&mut self) -> Value {
        match self.receive().await {
            Received::Json(value) => value,
            Received::Closed(close) => panic!("connection closed: {close:?}"),
        }
    }

    /// The next message, which must have this `action`; returns its `message`.
    pub async fn expect(&mut self, action: &str) -> Value {
        let frame = self.next_json().await;
        assert_eq!(frame["action"], action, "unexpected frame {frame}");
        frame["message"].clone()
    }

    /// Subscribes and returns the history's points.
    pub async fn subscribe(&mut self, asset_id: u32) -> Vec<Value> {
        self.send_text(&format!(
            r#"{{"action":"subscribe","message":{{"assetId":{asset_id}}}}}"#
        ))
        .await;
        let history = self.expect("asset_history").await;
        history["points"].as_array().expect("points array").clone()
    }

    /// Waits for a pong carrying `payload`, skipping other frames.
    pub async fn expect_pong(&mut self, payload: &[u8]) {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame arrived in time");
            match frame {
                Some(Ok(Message::Pong(data))) if data.as_ref() == payload => return,
                Some(Ok(_)) => continue,
                other => panic!("connection ended before the pong: {other:?}"),
            }
        }
    }

    /// The next close frame's code and reason, skipping data frames.
    pub async fn expect_close(&mut self) -> Option<(CloseCode, String)> {
        loop {
            if let Received::Closed(close) = self.receive().await {
                return close;
            }
        }
    }
}
