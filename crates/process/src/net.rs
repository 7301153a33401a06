//! Binding a server's listener.

/// Connections the kernel queues before the server accepts them. std's default
/// (128) overflows in a reconnect storm after a restart; 4096 does not.
const LISTEN_BACKLOG: u32 = 4096;

/// [`bind`] for a binary: the error names the address.
pub async fn listen(host: &str, port: u16) -> anyhow::Result<std::net::TcpListener> {
    use anyhow::Context;
    bind(host, port)
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))
}

/// Binds `host:port` for a server, with [`LISTEN_BACKLOG`]. Needs a tokio runtime.
async fn bind(host: &str, port: u16) -> std::io::Result<std::net::TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr) {
            Ok(()) => return socket.listen(LISTEN_BACKLOG)?.into_std(),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "the host resolved to no address",
        )
    }))
}
