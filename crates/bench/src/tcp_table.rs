//! The kernel's view of TCP connections, read from `/proc/net/tcp` (Linux,
//! IPv4): in which state the *server's* end of a connection is.
//!
//! An attacker that never reads (a zero-window reader, a ping flood) cannot
//! see a Close frame or a FIN queued behind the data it refuses, and one the
//! server abandons without a reset sees nothing at all. The kernel can tell:
//! when the server shuts its end down, that end leaves `ESTABLISHED` (to
//! `FIN_WAIT1` while the FIN waits behind unread data); when the server aborts
//! or its retransmissions time out, that end disappears. Both ends of a
//! loopback connection live in one table, so the generator reads it beside the
//! server. A connection of another network namespace is not in the table: the
//! caller only trusts an absence after the end was seen once.

use std::{
    collections::HashMap,
    fs, io,
    net::{Ipv4Addr, SocketAddrV4},
};

/// The TCP states of `/proc/net/tcp` (include/net/tcp_states.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    Other(u8),
}

impl TcpState {
    fn from_code(code: u8) -> Self {
        match code {
            0x01 => Self::Established,
            0x02 => Self::SynSent,
            0x03 => Self::SynRecv,
            0x04 => Self::FinWait1,
            0x05 => Self::FinWait2,
            0x06 => Self::TimeWait,
            0x07 => Self::Close,
            0x08 => Self::CloseWait,
            0x09 => Self::LastAck,
            0x0A => Self::Listen,
            0x0B => Self::Closing,
            other => Self::Other(other),
        }
    }

    /// The server still holds the connection open for writing: it has not
    /// shut its end down (`CLOSE_WAIT`: the peer did, the server did not).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Established | Self::CloseWait)
    }
}

impl std::fmt::Display for TcpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::Established => "ESTABLISHED",
            Self::SynSent => "SYN_SENT",
            Self::SynRecv => "SYN_RECV",
            Self::FinWait1 => "FIN_WAIT1",
            Self::FinWait2 => "FIN_WAIT2",
            Self::TimeWait => "TIME_WAIT",
            Self::Close => "CLOSE",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::Listen => "LISTEN",
            Self::Closing => "CLOSING",
            Self::Other(code) => return write!(f, "state {code:#04x}"),
        };
        f.write_str(name)
    }
}

/// The server's end of one connection as the kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    pub state: TcpState,
    /// No process holds the socket any more (its inode is 0): the server
    /// closed it and the kernel finishes the connection alone.
    pub orphaned: bool,
}

/// The server's ends (local address `server`) of connections to `peers`, by
/// peer address; a peer whose connection the table does not hold is left out.
pub fn server_ends(
    server: SocketAddrV4,
    peers: &[SocketAddrV4],
) -> io::Result<HashMap<SocketAddrV4, End>> {
    let table = fs::read_to_string("/proc/net/tcp")?;
    Ok(parse_server_ends(&table, server, peers))
}

fn parse_server_ends(
    table: &str,
    server: SocketAddrV4,
    peers: &[SocketAddrV4],
) -> HashMap<SocketAddrV4, End> {
    table
        .lines()
        .skip(1)
        .filter_map(parse_line)
        .filter(|(local, remote, _)| *local == server && peers.contains(remote))
        .map(|(_, remote, end)| (remote, end))
        .collect()
}

/// Local address, remote address and the end of one line:
/// `0: 0100007F:1F90 0200007F:C350 01 tx:rx tr:when retrnsmt uid timeout inode …`.
fn parse_line(line: &str) -> Option<(SocketAddrV4, SocketAddrV4, End)> {
    let mut fields = line.split_whitespace().skip(1);
    let local = parse_address(fields.next()?)?;
    let remote = parse_address(fields.next()?)?;
    let state = TcpState::from_code(u8::from_str_radix(fields.next()?, 16).ok()?);
    let inode: u64 = fields.nth(5)?.parse().ok()?;
    Some((
        local,
        remote,
        End {
            state,
            orphaned: inode == 0,
        },
    ))
}

/// `0100007F:1F90`: the address is the in-memory (network order) u32 printed
/// as a native integer, the port a plain hex number.
fn parse_address(field: &str) -> Option<SocketAddrV4> {
    let (ip, port) = field.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::from(ip.to_ne_bytes()), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0200007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 20 4 30 10 -1
   2: 0200007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1
   3: 0100007F:1F90 0300007F:C351 04 0001F000:00000000 01:00000020 00000000  1000        0 0 1 0 20 4 30 10 -1
";

    #[cfg(target_endian = "little")]
    #[test]
    fn the_server_ends_of_the_given_peers_are_found_with_their_states() {
        let server = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080);
        let a = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 50000);
        let b = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 3), 50001);
        let absent = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 4), 50002);
        let ends = parse_server_ends(TABLE, server, &[a, b, absent]);
        assert_eq!(ends.len(), 2, "{ends:?}");
        assert_eq!(
            ends[&a],
            End {
                state: TcpState::Established,
                orphaned: false
            }
        );
        assert_eq!(
            ends[&b],
            End {
                state: TcpState::FinWait1,
                orphaned: true
            }
        );
        assert!(ends[&a].state.is_open() && !ends[&b].state.is_open());
        assert_eq!(ends[&b].state.to_string(), "FIN_WAIT1");
    }

    #[test]
    fn a_line_that_is_not_a_connection_is_skipped() {
        assert_eq!(parse_line("garbage"), None);
        assert_eq!(parse_line("  0: zz:1F90 00000000:0000 0A"), None);
    }

    #[test]
    fn the_table_of_this_machine_can_be_read() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let std::net::SocketAddr::V4(server) = listener.local_addr().expect("addr") else {
            unreachable!("bound an IPv4 address");
        };
        let client = std::net::TcpStream::connect(server).expect("connect");
        let std::net::SocketAddr::V4(peer) = client.local_addr().expect("peer") else {
            unreachable!("connected from an IPv4 address");
        };
        let (_accepted, _) = listener.accept().expect("accept");
        let ends = server_ends(server, &[peer]).expect("/proc/net/tcp readable");
        let end = ends.get(&peer).expect("the accepted end is listed");
        assert_eq!(end.state, TcpState::Established);
        assert!(!end.orphaned, "this process holds it");
    }
}
