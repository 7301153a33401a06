//! A real server binary run as its own process on 127.0.0.1, port 0: its
//! address from its log, its memory from `/proc`, its `/metrics` its own (no
//! other test shares its recorder). Killed when dropped.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
};

use crate::{WAIT, wait_ready};

/// A server process serving on `addr`.
pub struct ServerProcess {
    pub addr: SocketAddr,
    pub child: Child,
}

impl ServerProcess {
    /// Starts `binary` with `args` (after `--host 127.0.0.1 --port 0`) and
    /// nothing in its environment but `RUST_LOG=info` and `env` (so no setting
    /// exported where the tests run reaches it), and waits until it is ready. With `RATECAST_TEST_SERVER_LOG=1` in the test's
    /// environment, the server's log is copied to the test's stderr.
    pub async fn start(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .env_clear()
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let echo = std::env::var_os("RATECAST_TEST_SERVER_LOG").is_some_and(|v| v == "1");
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("server: {line}");
                }
                if let Some(rest) = line.split("listening on ws://").nth(1) {
                    let addr = rest.split('/').next().unwrap_or_default().to_owned();
                    if let Some(tx) = addr_tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let addr = tokio::time::timeout(WAIT, addr_rx)
            .await
            .expect("the binary logged its address in time")
            .expect("address line")
            .parse()
            .expect("a socket address");
        wait_ready(addr).await;
        Self { addr, child }
    }

    /// The process's resident memory now (`VmRSS`), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("a VmRSS line")
            * 1024
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
