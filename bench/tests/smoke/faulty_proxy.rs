//! A WebSocket proxy between the load tool and a server that spoils the Nth "went offline"
//! presence change it forwards (drops it or sends it twice), so the tool's accounting can be
//! shown to notice. Only offline changes count: the sessions' logins before the presence job
//! bring online changes that the tool rightly ignores.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    None,
    /// Drop the Nth offline change (counting from 1, across all connections).
    Drop(u64),
    /// Send the Nth offline change twice.
    Duplicate(u64),
}

pub struct FaultyProxy {
    addr: std::net::SocketAddr,
    /// Set once the Nth offline change came by (for `Fault::None`: once any did).
    spoiled: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    pub async fn start(upstream: &str, fault: Fault) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spoiled = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicU64::new(0));
        let upstream = upstream.to_string();
        let task = {
            let spoiled = spoiled.clone();
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (upstream, spoiled, seen) =
                        (upstream.clone(), spoiled.clone(), seen.clone());
                    tokio::spawn(async move {
                        let _ = relay(tcp, &upstream, fault, &seen, &spoiled).await;
                    });
                }
            })
        };
        FaultyProxy {
            addr,
            spoiled,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn spoiled(&self) -> bool {
        self.spoiled.load(Ordering::SeqCst)
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A user going offline, pushed by the server (not the snapshot that answers a `watch`).
fn is_offline_change(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|frame| {
        frame["ev"]["type"] == "presence"
            && frame["ev"]["online"] == false
            && frame.get("re").is_none()
    })
}

async fn relay(
    tcp: TcpStream,
    upstream: &str,
    fault: Fault,
    seen: &AtomicU64,
    spoiled: &AtomicBool,
) -> anyhow::Result<()> {
    let client = tokio_tungstenite::accept_async(tcp).await?;
    let (server, _) = tokio_tungstenite::connect_async(upstream).await?;
    let (mut to_client, mut from_client) = client.split();
    let (mut to_server, mut from_server) = server.split();
    let up = async {
        while let Some(message) = from_client.next().await {
            to_server.send(message?).await?;
        }
        anyhow::Ok(())
    };
    let down = async {
        while let Some(message) = from_server.next().await {
            let message = message?;
            let mut copies = 1;
            if let Message::Text(text) = &message
                && is_offline_change(text)
            {
                let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                let reached = match fault {
                    Fault::None => true,
                    Fault::Drop(at) | Fault::Duplicate(at) => n == at,
                };
                if reached {
                    copies = match fault {
                        Fault::None => 1,
                        Fault::Drop(_) => 0,
                        Fault::Duplicate(_) => 2,
                    };
                    spoiled.store(true, Ordering::SeqCst);
                }
            }
            for _ in 0..copies {
                to_client.send(message.clone()).await?;
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}
