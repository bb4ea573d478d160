//! One user's connection: connect, hello, login (and watch), then answer events as the current
//! job wants and send what the controller asks; reconnect if told to.

use std::{rc::Rc, time::Duration, time::Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use switchboard_proto::{
    Auth, CallState, ClientFrame, Command, Event, PROTOCOL_VERSION, Role, ServerFrame,
};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;

use super::shared::{Change, Cmd, Mode, Shared};
use crate::{identity, net};

/// The command id of the opening `watch`.
const WATCH_ID: u32 = 1;
/// The command id of every `call`: a refusal names it, so the tool frees both users again.
const CALL_ID: u32 = 2;

/// How long one login may take before it counts as failed.
const LOGIN_PATIENCE: Duration = Duration::from_secs(30);

pub async fn run(
    shared: Rc<Shared>,
    me: usize,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    permits: Rc<Semaphore>,
) {
    let source = shared.setup.sources[(shared.setup.first_user + me) % shared.setup.sources.len()];
    // Connections tried: each one after the first goes to the next node (its own may be gone).
    let mut tries = 0u32;
    loop {
        let permit = permits.acquire().await;
        let started = Instant::now();
        tries += 1;
        let opened = tokio::time::timeout(LOGIN_PATIENCE, open(&shared, me, source, tries)).await;
        drop(permit);
        let mut ws = match opened {
            Ok(Ok(ws)) => ws,
            failed => {
                if !shared.setup.reconnect {
                    if let Ok(Err(e)) = failed {
                        tracing_line(&format!("{}: {e:#}", shared.users[me].id));
                    }
                    Shared::bump(&shared.counters.failed);
                    shared.changed.notify_waiters();
                    return;
                }
                pause().await;
                continue;
            }
        };
        let user = &shared.users[me];
        user.generation.set(user.generation.get() + 1);
        user.online.set(true);
        shared.login.borrow_mut().record(started.elapsed());
        Shared::bump(&shared.counters.logged_in);
        if user.generation.get() == 2 {
            Shared::bump(&shared.counters.back);
            shared
                .counters
                .last_back
                .set(Some(std::time::SystemTime::now()));
        }
        shared.changed.notify_waiters();
        // A restart storm drops every connection on purpose; elsewhere a drop is news.
        if let Err(e) = serve(&shared, me, &mut ws, &mut rx).await
            && !shared.setup.reconnect
        {
            tracing_line(&format!("{}: {e:#}", shared.users[me].id));
        }
        let c = &shared.counters;
        c.logged_in.set(c.logged_in.get() - 1);
        c.dropped.set(c.dropped.get() + 1);
        if !shared.setup.reconnect {
            return;
        }
        pause().await;
    }
}

/// A short random wait, so a crowd of sessions does not reconnect in lockstep.
async fn pause() {
    let ms = rand::random_range(20..200);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn tracing_line(line: &str) {
    eprintln!("switchboard-bench worker: {line}");
}

fn auth(shared: &Shared, me: usize) -> Auth {
    let id = shared.users[me].id.clone();
    let name = format!("User {}", shared.setup.first_user + me);
    match &shared.setup.jwt_secret {
        Some(secret) => Auth::Token(identity::sign(secret, &id, &name)),
        None => Auth::Demo { id, name },
    }
}

async fn send(ws: &mut net::Ws, cmd: Command) -> anyhow::Result<()> {
    send_frame(ws, ClientFrame::new(cmd)).await
}

async fn send_frame(ws: &mut net::Ws, frame: ClientFrame) -> anyhow::Result<()> {
    let text = serde_json::to_string(&frame)?;
    ws.send(Message::Text(text.into())).await?;
    Ok(())
}

/// The next server frame; None when the connection ended.
async fn next(ws: &mut net::Ws) -> anyhow::Result<Option<ServerFrame>> {
    while let Some(message) = ws.next().await {
        match message? {
            Message::Text(text) => return Ok(Some(serde_json::from_str(&text)?)),
            Message::Close(_) => return Ok(None),
            _ => continue,
        }
    }
    Ok(None)
}

/// Connects and logs in; returns once `logged_in` arrived (and the watch list is sent).
async fn open(
    shared: &Shared,
    me: usize,
    source: std::net::Ipv4Addr,
    tries: u32,
) -> anyhow::Result<net::Ws> {
    let node = shared.setup.node_of(shared.setup.first_user + me, tries);
    let mut ws = net::connect(node.server, source, &node.url).await?;
    send(
        &mut ws,
        Command::Hello {
            v: PROTOCOL_VERSION,
            resume: None,
        },
    )
    .await?;
    match next(&mut ws).await?.context("closed before welcome")?.ev {
        Event::Welcome { .. } => {}
        other => bail!("expected welcome, got {other:?}"),
    }
    send(
        &mut ws,
        Command::Login {
            auth: auth(shared, me),
        },
    )
    .await?;
    match next(&mut ws).await?.context("closed before logged_in")?.ev {
        Event::LoggedIn { .. } => {}
        other => bail!("expected logged_in, got {other:?}"),
    }
    send_watch(shared, me, &mut ws).await?;
    Ok(ws)
}

/// Sends the user's watch list, if the job has one and the user is one of the watchers.
async fn send_watch(shared: &Shared, me: usize, ws: &mut net::Ws) -> anyhow::Result<()> {
    let watch = shared.setup.watch;
    if watch > 0 && super::presence::watches(me) {
        let n = shared.users.len();
        let users = (1..=watch.min(n - 1))
            .map(|k| shared.users[(me + k) % n].id.clone())
            .collect();
        // With an id, so the snapshot it answers with (`re` set) is told apart from changes.
        send_frame(ws, ClientFrame::with_id(WATCH_ID, Command::Watch { users })).await?;
    }
    Ok(())
}

/// Handles events and commands until the connection ends.
async fn serve(
    shared: &Shared,
    me: usize,
    ws: &mut net::Ws,
    rx: &mut mpsc::UnboundedReceiver<Cmd>,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            frame = next(ws) => {
                let Some(frame) = frame? else { bail!("the server closed the connection") };
                if let Some(reply) = react(shared, me, frame) {
                    send(ws, reply).await?;
                }
            }
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { return Ok(()) };
                let user = &shared.users[me];
                let (command, scheduled) = match cmd {
                    Cmd::Call(to, due) => (Command::Call { to: shared.users[to].id.clone() }, due),
                    Cmd::Toggle(due) if user.online.get() => (Command::Logout, due),
                    Cmd::Toggle(due) => (Command::Login { auth: auth(shared, me) }, due),
                };
                let online = !matches!(command, Command::Logout);
                user.online.set(online);
                let frame = match cmd {
                    Cmd::Call(to, _) => {
                        user.calling.set(Some(to));
                        ClientFrame::with_id(CALL_ID, command)
                    }
                    Cmd::Toggle(_) => ClientFrame::new(command),
                };
                // The clock starts as the command leaves, after encoding and signing.
                let sent = Instant::now();
                user.sent_at.set(Some(sent));
                user.scheduled_at.set(Some(scheduled));
                if shared.mode.get() == Mode::Presence && matches!(cmd, Cmd::Toggle(_)) {
                    user.changes.borrow_mut().push(Change { scheduled, sent, online });
                }
                send_frame(ws, frame).await?;
            }
        }
    }
}

/// What the current job does with one event; returns the command to send back, if any.
fn react(shared: &Shared, me: usize, frame: ServerFrame) -> Option<Command> {
    let now = Instant::now();
    let mode = shared.mode.get();
    match frame.ev {
        Event::Call(view) => {
            let peer = shared.local(&view.peer.id)?;
            match (view.role, view.state, mode) {
                (Role::Callee, CallState::Ringing, Mode::Calls) => {
                    let caller = &shared.users[peer];
                    if let Some(scheduled) = caller.scheduled_at.get() {
                        shared.ring_scheduled.borrow_mut().record(now - scheduled);
                    }
                    if let Some(sent) = caller.sent_at.get() {
                        shared.ring.borrow_mut().record(now - sent);
                        if shared.setup.nodes.len() > 1 {
                            let nodes = shared.setup.nodes.len();
                            let first = shared.setup.first_user;
                            let same = (first + peer) % nodes == (first + me) % nodes;
                            let split = if same {
                                &shared.ring_same_node
                            } else {
                                &shared.ring_cross_node
                            };
                            split.borrow_mut().record(now - sent);
                        }
                    }
                    shared.users[me].answered_at.set(Some(Instant::now()));
                    Some(Command::Answer { call: view.id })
                }
                (Role::Callee, CallState::Ringing, _) => {
                    let user = &shared.users[me];
                    if user.rung_in.get() < user.generation.get() {
                        user.rung_in.set(user.generation.get());
                        let counter = if user.generation.get() == 1 {
                            &shared.counters.rung
                        } else {
                            &shared.counters.rerung
                        };
                        Shared::bump(counter);
                        shared.changed.notify_waiters();
                    }
                    None
                }
                (Role::Caller, CallState::Answered, Mode::Calls) => {
                    if let Some(answered) = shared.users[peer].answered_at.get() {
                        shared.answer.borrow_mut().record(now - answered);
                    }
                    Some(Command::Hangup { call: view.id })
                }
                (Role::Caller, CallState::Ended, Mode::Calls) => {
                    let c = &shared.counters;
                    c.completed.set(c.completed.get() + 1);
                    c.last_done.set(Some(now));
                    shared.free.borrow_mut().extend([me, peer]);
                    shared.changed.notify_waiters();
                    None
                }
                _ => None,
            }
        }
        Event::Presence { user, online, .. } if mode == Mode::Presence && frame.re.is_none() => {
            super::presence::heard(shared, me, &user, online, now);
            None
        }
        Event::Error { code, .. } => {
            shared.error(format!("{code:?}"));
            // A refused call never happened: its two users are free to call again.
            if frame.re == Some(CALL_ID)
                && mode == Mode::Calls
                && let Some(callee) = shared.users[me].calling.take()
            {
                shared.free.borrow_mut().extend([me, callee]);
            }
            None
        }
        _ => None,
    }
}
