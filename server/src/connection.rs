//! One `/ws` connection: reads client frames, holds them to the connection's budgets, checks
//! their syntax and credentials, hands requests to the hub and writes the hub's events out.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::{Sink, Stream, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use switchboard_proto::{
    ClientFrame, Command, ErrorCode, Event, PROTOCOL_VERSION, ServerFrame, close,
};
use tokio::time::Instant;

use crate::{
    admission::{Admission, Ticket},
    config::Limits,
    hub::{Attached, Hub, Request, ToClient},
    identity::Identity,
    metrics::Metrics,
    outbox::{self, Inbox},
    socket::{End, Next, Socket},
};

/// How long a new connection has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Refusals for going over budget that a connection may collect before it is closed. They are
/// forgiven at one a second: a client that backs off when told never gets near it, while one
/// that keeps sending faster than its budget is flooding, even at a steady few times the rate
/// that lets some of its messages through.
const RATE_STRIKES: u32 = 20;
/// `watch` commands one connection may send at once before the per-minute rate applies.
const WATCH_BURST: u32 = 5;

/// What every connection task needs.
#[derive(Clone)]
pub struct ConnectionContext {
    pub hub: Hub,
    pub identity: Identity,
    /// Replaced on reload: a connection's budgets are those in force when it opened, the
    /// size limit is the current one.
    pub limits: Arc<ArcSwap<Limits>>,
    pub metrics: Arc<Metrics>,
    pub admission: Admission,
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

/// Where a connection comes from, and its place at the admission gate.
pub struct Client {
    pub ip: IpAddr,
    pub ticket: Ticket,
}

/// A plain `fn` around an `async move` block rather than an `async fn`: an `async fn` copies its
/// arguments into locals, so the socket and context would take their space twice in every
/// connection's task for the whole life of the connection.
#[allow(clippy::manual_async_fn)]
pub fn serve(
    socket: WebSocket,
    ctx: ConnectionContext,
    client: Client,
) -> impl Future<Output = ()> {
    async move {
        let _counted = Counted::new(ctx.metrics.clone());
        let (sink, stream) = socket.split();
        let mut socket = Socket::new(sink, stream, ctx.limits.load().timing);
        let end = serve_socket(&mut socket, &ctx, client.ip).await;
        ended(&ctx.metrics, &end);
        drop(client.ticket);
    }
}

/// Runs a connection from its hello to its end; generic over the socket so tests can drive it.
async fn serve_socket<S, R, E>(
    socket: &mut Socket<S, R>,
    ctx: &ConnectionContext,
    ip: IpAddr,
) -> End
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
{
    let resume = match hello(socket, ctx).await {
        Ok(resume) => resume,
        Err(Refused::End(end)) => return end,
        Err(Refused::Code(code, close_code)) => {
            return goodbye(
                socket,
                unsequenced_error(None, code),
                close_code,
                code.describe(),
            )
            .await;
        }
    };
    let (outbox, mut events) = outbox::outbox(ctx.limits.load().send_queue);
    let Ok(at) = ctx.hub.attach(resume, outbox).await else {
        return match socket.close(1001, "the server is shutting down").await {
            Ok(()) => End::Closed,
            Err(end) => end,
        };
    };
    let end = run(socket, ctx, ip, at, &mut events).await;
    ctx.hub.detach(at).await;
    end
}

enum Refused {
    Code(ErrorCode, u16),
    End(End),
}

/// Waits for the opening `hello`; answers the resume request it carries.
async fn hello<S, R, E>(
    socket: &mut Socket<S, R>,
    ctx: &ConnectionContext,
) -> Result<Option<switchboard_proto::Resume>, Refused>
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
{
    let deadline = Instant::now() + HELLO_TIMEOUT;
    let next = tokio::time::timeout_at(deadline, socket.next(std::future::pending::<()>()));
    let text = match next.await {
        Err(_) => return Err(Refused::Code(ErrorCode::HelloRequired, close::PROTOCOL)),
        Ok(Ok(Next::Frame(Message::Text(text)))) => text,
        Ok(Ok(_)) => return Err(Refused::Code(ErrorCode::BadFrame, close::PROTOCOL)),
        Ok(Err(end)) => return Err(Refused::End(end)),
    };
    ctx.metrics.messages_in.inc();
    if text.len() > ctx.limits.load().max_message_bytes {
        return Err(Refused::Code(ErrorCode::FrameTooLarge, 1009));
    }
    match serde_json::from_str::<ClientFrame>(&text) {
        Ok(ClientFrame {
            cmd: Command::Hello { v, resume },
            ..
        }) if v == PROTOCOL_VERSION => Ok(resume),
        Ok(ClientFrame {
            cmd: Command::Hello { .. },
            ..
        }) => Err(Refused::Code(
            ErrorCode::UnsupportedVersion,
            close::PROTOCOL,
        )),
        Ok(_) => Err(Refused::Code(ErrorCode::HelloRequired, close::PROTOCOL)),
        Err(_) => Err(Refused::Code(ErrorCode::BadFrame, close::PROTOCOL)),
    }
}

async fn run<S, R, E>(
    socket: &mut Socket<S, R>,
    ctx: &ConnectionContext,
    ip: IpAddr,
    at: Attached,
    events: &mut Inbox<ToClient>,
) -> End
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
{
    let budget = Budget::new(&ctx.limits.load());
    loop {
        let message = match socket.next(events.recv()).await {
            Ok(Next::Frame(message)) => message,
            Ok(Next::Queued(Some(ToClient::Frame(frame)))) => {
                if let Err(end) = socket.send(Message::Text(frame)).await {
                    return end;
                }
                continue;
            }
            Ok(Next::Queued(Some(ToClient::Close(code, reason)))) => {
                return closed(socket.close(code, reason).await);
            }
            // The hub let go of this connection because it fell behind.
            Ok(Next::Queued(None)) => {
                return closed(
                    socket
                        .close(close::TOO_SLOW, "too slow to read events")
                        .await,
                );
            }
            Err(End::ReadFailed(e)) => {
                // Oversized messages end here: tungstenite refuses them before we see them.
                tracing::debug!(error = %e, "connection read failed");
                let _ = socket.close(1009, &e).await;
                return End::ReadFailed(e);
            }
            Err(end) => return end,
        };
        let (re, request) = match message {
            Message::Text(text) => {
                ctx.metrics.messages_in.inc();
                parse(&text, ctx)
            }
            _ => (None, Request::Refused(ErrorCode::BadFrame)),
        };
        let within_budget = budget.take(&request)
            && (!matches!(request, Request::Login(_)) || ctx.admission.login_allowed(ip));
        if !within_budget {
            // Refused here, so a flood never reaches the hub.
            ctx.metrics.refused(ErrorCode::RateLimited);
            let error = unsequenced_error(re, ErrorCode::RateLimited);
            if budget.strikes.check().is_err() {
                return goodbye(socket, error, 1008, "too many messages").await;
            }
            if let Err(end) = socket.send(error).await {
                return end;
            }
            continue;
        }
        if let Request::Refused(code) = request
            && is_fatal(code)
        {
            // Whoever cannot prove who they are gets told why and is let go.
            return goodbye(
                socket,
                unsequenced_error(re, code),
                close::PROTOCOL,
                code.describe(),
            )
            .await;
        }
        if ctx.hub.request(at, re, request).await.is_err() {
            return End::Closed;
        }
    }
}

/// What one connection may ask of the hub: a message rate for everything, and a smaller one
/// for `watch`, which costs the hub a lookup per id.
struct Budget {
    messages: Option<DefaultDirectRateLimiter>,
    watches: Option<DefaultDirectRateLimiter>,
    /// Refusals not yet forgiven.
    strikes: DefaultDirectRateLimiter,
}

impl Budget {
    fn new(limits: &Limits) -> Self {
        let messages = NonZeroU32::new(limits.messages_per_second).map(|rate| {
            let burst = NonZeroU32::new(limits.message_burst).unwrap_or(rate);
            RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
        });
        let watches = NonZeroU32::new(limits.watches_per_minute).map(|rate| {
            let burst = NonZeroU32::new(WATCH_BURST).unwrap_or(rate);
            RateLimiter::direct(Quota::per_minute(rate).allow_burst(burst))
        });
        Self {
            messages,
            watches,
            strikes: RateLimiter::direct(
                Quota::per_second(NonZeroU32::MIN)
                    .allow_burst(NonZeroU32::new(RATE_STRIKES).unwrap_or(NonZeroU32::MIN)),
            ),
        }
    }

    fn take(&self, request: &Request) -> bool {
        let allows = |limiter: &Option<DefaultDirectRateLimiter>| {
            limiter.as_ref().is_none_or(|l| l.check().is_ok())
        };
        allows(&self.messages) && (!matches!(request, Request::Watch(_)) || allows(&self.watches))
    }
}

/// Counts how connections end where an operator would want to know.
fn ended(metrics: &Metrics, end: &End) {
    if *end == End::Stalled {
        tracing::debug!("peer stopped reading; connection dropped");
        metrics.dropped("write_timeout");
    } else if *end == End::Silent {
        metrics.dropped("idle");
    }
}

/// The result of a closing write: a clean close, or why it could not be made.
fn closed(result: Result<(), End>) -> End {
    result.err().unwrap_or(End::Closed)
}

/// An error, then a close frame; both under the write deadline.
async fn goodbye<S, R, E>(socket: &mut Socket<S, R>, error: Message, code: u16, reason: &str) -> End
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
{
    if let Err(end) = socket.send(error).await {
        return end;
    }
    closed(socket.close(code, reason).await)
}

/// Turns a text frame into a hub request, checking size, syntax and credentials here so the
/// hub only does bookkeeping.
fn parse(text: &Utf8Bytes, ctx: &ConnectionContext) -> (Option<u32>, Request) {
    if text.len() > ctx.limits.load().max_message_bytes {
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
