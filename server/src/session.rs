//! One WebSocket connection: reads and checks client frames, hands requests to the hub, and
//! writes the hub's events out; detects dead peers with pings.

use std::{sync::Arc, time::Duration};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{
    SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};
use switchboard_proto::{
    ClientFrame, Command, ErrorCode, Event, PROTOCOL_VERSION, ServerFrame, close,
};
use tokio::{sync::mpsc, time::Instant};

use crate::{
    config::Limits,
    hub::{Attached, Hub, Outgoing, Request},
    identity::Identity,
    metrics::Metrics,
};

/// How long a new connection has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// What every session task needs.
#[derive(Clone)]
pub struct SessionContext {
    pub hub: Hub,
    pub identity: Identity,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
}

/// Counts a connection for as long as it lives.
struct Counted(Arc<Metrics>);

impl Counted {
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics.connections.inc();
        Self(metrics)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

/// A plain `fn` around an `async move` block rather than an `async fn`: an `async fn` copies its
/// arguments into locals, so the socket and context would take their space twice in every
/// session's task for the whole life of the connection.
#[allow(clippy::manual_async_fn)]
pub fn serve(mut socket: WebSocket, ctx: SessionContext) -> impl Future<Output = ()> {
    async move {
        let _counted = Counted::new(ctx.metrics.clone());
        let resume = match hello(&mut socket, &ctx).await {
            Ok(resume) => resume,
            Err((code, close_code)) => {
                let _ = socket.send(unsequenced_error(None, code)).await;
                let _ = socket
                    .send(close_message(close_code, code.describe()))
                    .await;
                return;
            }
        };
        let (outbox, events) = mpsc::channel(ctx.limits.send_queue);
        let Ok(at) = ctx.hub.attach(resume, outbox).await else {
            let _ = socket
                .send(close_message(1001, "the server is shutting down"))
                .await;
            return;
        };
        // Split here so the socket moves into the halves once, instead of being held by `run` too.
        let (sink, stream) = socket.split();
        run(sink, stream, &ctx, at, events).await;
        ctx.hub.detach(at).await;
    }
}

/// Waits for the opening `hello`; answers the resume request it carries.
async fn hello(
    socket: &mut WebSocket,
    ctx: &SessionContext,
) -> Result<Option<switchboard_proto::Resume>, (ErrorCode, u16)> {
    let deadline = Instant::now() + HELLO_TIMEOUT;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.recv())
            .await
            .map_err(|_| (ErrorCode::HelloRequired, close::PROTOCOL))?;
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => return Err((ErrorCode::BadFrame, close::PROTOCOL)),
            _ => return Err((ErrorCode::HelloRequired, 1000)),
        };
        ctx.metrics.messages_in.inc();
        if text.len() > ctx.limits.max_message_bytes {
            return Err((ErrorCode::FrameTooLarge, 1009));
        }
        return match serde_json::from_str::<ClientFrame>(&text) {
            Ok(ClientFrame {
                cmd: Command::Hello { v, resume },
                ..
            }) if v == PROTOCOL_VERSION => Ok(resume),
            Ok(ClientFrame {
                cmd: Command::Hello { .. },
                ..
            }) => Err((ErrorCode::UnsupportedVersion, close::PROTOCOL)),
            Ok(_) => Err((ErrorCode::HelloRequired, close::PROTOCOL)),
            Err(_) => Err((ErrorCode::BadFrame, close::PROTOCOL)),
        };
    }
}

async fn run(
    mut sink: SplitSink<WebSocket, Message>,
    mut stream: SplitStream<WebSocket>,
    ctx: &SessionContext,
    at: Attached,
    mut events: mpsc::Receiver<Outgoing>,
) {
    let mut ping = tokio::time::interval(ctx.limits.ping_interval);
    ping.reset();
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            incoming = stream.next() => {
                let message = match incoming {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => {
                        // Oversized messages end here: tungstenite refuses them before we see them.
                        tracing::debug!(error = %e, "connection read failed");
                        let _ = sink.send(close_message(1009, &e.to_string())).await;
                        return;
                    }
                    None => return,
                };
                last_heard = Instant::now();
                let request = match message {
                    Message::Text(text) => {
                        ctx.metrics.messages_in.inc();
                        parse(&text, ctx)
                    }
                    Message::Binary(_) => (None, Request::Refused(ErrorCode::BadFrame)),
                    Message::Close(_) => return,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                if let (re, Request::Refused(code)) = &request
                    && is_fatal(*code)
                {
                    // Whoever cannot prove who they are gets told why and is let go.
                    let _ = sink.send(unsequenced_error(*re, *code)).await;
                    let _ = sink.send(close_message(close::PROTOCOL, code.describe())).await;
                    return;
                }
                if ctx.hub.request(at, request.0, request.1).await.is_err() {
                    return;
                }
            }
            outgoing = events.recv() => match outgoing {
                Some(Outgoing::Frame(frame)) => {
                    if sink.send(Message::Text(frame)).await.is_err() {
                        return;
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    let _ = sink.send(close_message(code, reason)).await;
                    return;
                }
                // The hub let go of this connection because it fell behind.
                None => {
                    let _ = sink.send(close_message(close::TOO_SLOW, "too slow to read events")).await;
                    return;
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > ctx.limits.idle_timeout {
                    tracing::debug!(session = at.session, "peer is silent; closing");
                    let _ = sink.send(close_message(1001, "no answer to pings")).await;
                    return;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Turns a text frame into a hub request, checking size, syntax and credentials here so the
/// hub only does bookkeeping.
fn parse(text: &Utf8Bytes, ctx: &SessionContext) -> (Option<u32>, Request) {
    if text.len() > ctx.limits.max_message_bytes {
        return (None, Request::Refused(ErrorCode::FrameTooLarge));
    }
    let frame = match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => frame,
        Err(_) => {
            // Still answer with the command id if the frame had a readable one.
            let id = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("id")?.as_u64())
                .and_then(|id| u32::try_from(id).ok());
            return (id, Request::Refused(ErrorCode::BadFrame));
        }
    };
    let request = match frame.cmd {
        Command::Hello { .. } => Request::Refused(ErrorCode::HelloRequired),
        Command::Login { auth } => match ctx.identity.verify(&auth) {
            Ok(user) => Request::Login(user),
            Err(code) => Request::Refused(code),
        },
        Command::Logout => Request::Logout,
        Command::Call { to } => Request::Call { to },
        Command::Answer { call } => Request::Answer(call),
        Command::Reject { call } => Request::Reject(call),
        Command::Cancel { call } => Request::Cancel(call),
        Command::Hangup { call } => Request::Hangup(call),
        Command::Watch { users } => Request::Watch(users),
    };
    (frame.id, request)
}

/// Identity failures end the connection.
fn is_fatal(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::BadToken
            | ErrorCode::TokenExpired
            | ErrorCode::SignedIdentityRequired
            | ErrorCode::TokensNotConfigured
    )
}

/// A connection-level error: sequence number 0, outside the session's event stream.
fn unsequenced_error(re: Option<u32>, code: ErrorCode) -> Message {
    let frame = ServerFrame {
        seq: 0,
        re,
        ev: Event::Error {
            code,
            message: code.describe().into(),
        },
    };
    Message::Text(serde_json::to_string(&frame).unwrap_or_default().into())
}

fn close_message(code: u16, reason: &str) -> Message {
    // A close reason must fit in a control frame (125 bytes with the code).
    let reason: String = reason.chars().take(100).collect();
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}
