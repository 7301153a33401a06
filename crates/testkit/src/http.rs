//! Plain HTTP requests to the servers under test, with deadlines.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::WAIT;

/// `GET path` on `addr`; returns the status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect for GET");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send GET");
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .expect("GET answered in time")
        .expect("GET response readable");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Waits until `GET /readyz` answers 200.
pub async fn wait_ready(addr: SocketAddr) {
    tokio::time::timeout(WAIT, async {
        loop {
            if http_get(addr, "/readyz").await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("server became ready");
}

/// The value of one Prometheus series on `addr`'s `/metrics`, named with its
/// labels as the page writes them (`ratecast_ws_closes_total{reason="idle"}`);
/// 0 when the series is not there yet.
pub async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let (status, page) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "/metrics answered");
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().expect("a metric value"))
}

/// Waits until `series` on `addr` exceeds `above`.
pub async fn wait_for_metric_above(addr: SocketAddr, series: &str, above: f64) {
    tokio::time::timeout(WAIT, async {
        while metric(addr, series).await <= above {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{series} stayed at {above} or less"));
}
