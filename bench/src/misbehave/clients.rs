//! What each kind of misbehaving client does on one connection, and the reconnect loop around it.

use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use switchboard_proto::{Auth, ClientFrame, Command, PROTOCOL_VERSION};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use super::{Aim, Counts, Kind};
use crate::{identity, net, net::Ws};

/// A receive buffer the kernel rounds up to its minimum (a few KiB): the never-reader's.
const TINY_RECEIVE_BUFFER: u32 = 1024;

/// A connection the server has not cut off within this long is let go by the client.
const PATIENCE: Duration = Duration::from_secs(10);

/// How the server ended a connection, as far as the client could tell.
enum End {
    /// Closed, reset, or failed a read or write.
    CutOff,
    /// The client was done with it (or it stayed open past its patience).
    Done,
}

pub async fn run(kind: Kind, index: usize, aim: Aim, counts: Arc<Counts>) {
    let receive_buffer = (kind == Kind::NeverRead).then_some(TINY_RECEIVE_BUFFER);
    loop {
        let connected = tokio::time::timeout(
            PATIENCE,
            net::connect_with(aim.server, kind.source(), &aim.url, receive_buffer),
        )
        .await;
        let Ok(Ok(mut ws)) = connected else {
            Counts::add(&counts.refused);
            pause(Duration::from_millis(200)).await;
            continue;
        };
        Counts::add(&counts.opened);
        counts
            .open_now
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let end = match kind {
            Kind::NeverRead => never_read(&mut ws, &counts).await,
            Kind::Flood => flood(ws, index, &aim, &counts).await,
            Kind::Oversized => oversized(&mut ws, &counts).await,
            Kind::Garbage => garbage(&mut ws, &counts).await,
        };
        counts
            .open_now
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let End::CutOff = end {
            Counts::add(&counts.cut_off);
        }
        pause(Duration::from_millis(50)).await;
    }
}

/// Waits `base` to twice `base`, so the clients do not reconnect in lockstep.
async fn pause(base: Duration) {
    let jitter = rand::random_range(0..=base.as_millis() as u64);
    tokio::time::sleep(base + Duration::from_millis(jitter)).await;
}

fn text(frame: &ClientFrame) -> Message {
    Message::Text(serde_json::to_string(frame).unwrap_or_default().into())
}

fn hello() -> Message {
    text(&ClientFrame::new(Command::Hello {
        v: PROTOCOL_VERSION,
        resume: None,
    }))
}

/// Sends `message`; a failed write means the server is gone.
async fn send(ws: &mut Ws, counts: &Counts, message: Message) -> Result<(), End> {
    ws.send(message).await.map_err(|_| End::CutOff)?;
    Counts::add(&counts.frames);
    Ok(())
}

/// Reads whatever arrives for `wait`; an error or a close means the server cut the connection.
async fn drain(ws: &mut Ws, wait: Duration) -> Result<(), End> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return Ok(()),
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return Err(End::CutOff),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Reads until the server ends the connection, or lets go after [`PATIENCE`].
async fn until_cut_off(ws: &mut Ws) -> End {
    match drain(ws, PATIENCE).await {
        Err(end) => end,
        Ok(()) => End::Done,
    }
}

/// Frames the server answers with an error, so it has something to write; none is ever read.
/// Each send waits as long as the server takes to read it: without write deadlines the
/// connection then stays stuck until the run ends.
async fn never_read(ws: &mut Ws, counts: &Counts) -> End {
    if send(ws, counts, hello()).await.is_err() {
        return End::CutOff;
    }
    let unknown = Message::Text(r#"{"id":7,"cmd":{"type":"explode"}}"#.into());
    loop {
        if let Err(end) = send(ws, counts, unknown.clone()).await {
            return end;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Logs in, then sends `watch` and `call` (to a user who is never online) back to back as fast
/// as the connection takes them, while a reader drains the answers.
async fn flood(ws: Ws, index: usize, aim: &Aim, counts: &Counts) -> End {
    let id = format!("rogue.flood.{index}");
    let auth = match &aim.jwt_secret {
        Some(secret) => Auth::Token(identity::sign(secret, &id, "Flood")),
        None => Auth::Demo {
            id: id.clone(),
            name: "Flood".into(),
        },
    };
    let (mut sink, mut stream) = ws.split();
    let reader = async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return End::CutOff,
                Some(Ok(_)) => {}
            }
        }
    };
    let writer = async {
        let login = text(&ClientFrame::with_id(1, Command::Login { auth }));
        let watch = text(&ClientFrame::with_id(
            2,
            Command::Watch {
                users: (0..8).map(|i| format!("rogue.watched.{i}")).collect(),
            },
        ));
        let call = text(&ClientFrame::with_id(
            3,
            Command::Call {
                to: "rogue.nobody".into(),
            },
        ));
        for message in [hello(), login]
            .into_iter()
            .chain([watch, call].into_iter().cycle())
        {
            if sink.send(message).await.is_err() {
                return End::CutOff;
            }
            Counts::add(&counts.frames);
        }
        End::Done
    };
    tokio::select! {
        end = reader => end,
        end = writer => end,
    }
}

/// A few 5 KB frames (answered with an error, or refused outright), then one of 70 KB, which
/// no server setting allows: that one must end the connection.
async fn oversized(ws: &mut Ws, counts: &Counts) -> End {
    match oversized_frames(ws, counts).await {
        Ok(()) => until_cut_off(ws).await,
        Err(end) => end,
    }
}

async fn oversized_frames(ws: &mut Ws, counts: &Counts) -> Result<(), End> {
    let padded = |bytes: usize| {
        Message::Text(
            format!(
                r#"{{"cmd":{{"type":"call","to":"{}"}}}}"#,
                "x".repeat(bytes)
            )
            .into(),
        )
    };
    send(ws, counts, hello()).await?;
    for _ in 0..3 {
        send(ws, counts, padded(5 * 1024)).await?;
        drain(ws, Duration::from_millis(20)).await?;
    }
    send(ws, counts, padded(70 * 1024)).await
}

/// Invalid JSON, then binary frames, then random bytes written straight to the TCP stream.
async fn garbage(ws: &mut Ws, counts: &Counts) -> End {
    match garbage_frames(ws, counts).await {
        Ok(()) => until_cut_off(ws).await,
        Err(end) => end,
    }
}

async fn garbage_frames(ws: &mut Ws, counts: &Counts) -> Result<(), End> {
    send(ws, counts, hello()).await?;
    for i in 0..20 {
        let message = if i < 10 {
            Message::Text(format!("{{\"cmd\": nope {i}").into())
        } else {
            Message::Binary(random_bytes(64).into())
        };
        send(ws, counts, message).await?;
        drain(ws, Duration::from_millis(10)).await?;
    }
    ws.get_mut()
        .write_all(&random_bytes(256))
        .await
        .map_err(|_| End::CutOff)?;
    Counts::add(&counts.frames);
    Ok(())
}

fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random()).collect()
}
