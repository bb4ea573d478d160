//! Opening one WebSocket from a chosen loopback source address, with the socket options a load
//! test needs: no Nagle delay, and a reset on close so no TIME_WAIT burst hits the next run.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    WebSocketStream, client_async_with_config, tungstenite::protocol::WebSocketConfig,
};

pub type Ws = WebSocketStream<TcpStream>;

/// The client's own buffers: small, like the server's, so 19k connections fit in one process.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(Some(256 * 1024))
        .max_frame_size(Some(256 * 1024))
}

/// `127.0.0.2 ..= 127.0.0.(1 + count)`: each source address gives another ~28k ports
/// towards the one server address.
pub fn source_addrs(count: u8) -> Vec<Ipv4Addr> {
    (0..count.max(1))
        .map(|i| Ipv4Addr::new(127, 0, 0, 2 + i))
        .collect()
}

/// Connects from `source` (binding first, so the kernel picks a port for that address) and
/// completes the WebSocket handshake for `url`.
pub async fn connect(server: SocketAddr, source: Ipv4Addr, url: &str) -> anyhow::Result<Ws> {
    connect_with(server, source, url, None).await
}

/// As [`connect`], with the kernel's receive buffer set to `receive_buffer` bytes if given (a
/// client that never reads then makes the server's writes back up after a few KiB).
pub async fn connect_with(
    server: SocketAddr,
    source: Ipv4Addr,
    url: &str,
    receive_buffer: Option<u32>,
) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.bind(SocketAddr::new(source.into(), 0))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    // Linger 0: close sends RST, so the tool leaves no TIME_WAIT entries behind.
    socket2::SockRef::from(&stream).set_linger(Some(std::time::Duration::ZERO))?;
    let (ws, _) = client_async_with_config(url, stream, Some(config())).await?;
    Ok(ws)
}
