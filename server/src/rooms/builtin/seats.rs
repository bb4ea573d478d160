//! Who is connected to which call's room, and the bounded queues that carry messages to them.
//!
//! Each call has two seats, one per role. A page that connects takes its role's seat; a second
//! page of the same participant (a reload whose old socket has not closed yet, or another
//! window) replaces the first, which is told so and closed. Everything here is synchronous and
//! never waits: a queue that is full means a page that stopped reading, and that page is
//! dropped rather than allowed to grow the server's memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use switchboard_proto::{CallId, Role, close};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{
    bridge::{Bridge, RoomEvent, RoomSignal},
    message::{EndReason, RelayMessage},
};

/// Messages waiting for one page. A negotiation is an offer or answer plus a few dozen
/// candidates at most, so 64 only fills up when a page stopped reading.
pub const QUEUE_LEN: usize = 64;

/// How long an ended call's id is remembered, so a page whose link was checked just before the
/// call ended is told it is over instead of waiting forever for a peer. The link is checked
/// as the page's socket is upgraded, so this only has to outlast an upgrade; every call's id is
/// kept this long, so at a thousand calls a second it costs some ten megabytes while calls
/// end, and nothing once they stop.
const ENDED_KEPT_FOR: Duration = Duration::from_secs(60);

/// What a session writes to its socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToPage {
    Text(String),
    /// Close the socket with this code and reason, and stop.
    Close {
        code: u16,
        reason: &'static str,
    },
}

/// What became of a forwarded message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarded {
    Sent,
    /// The other page is not connected; it renegotiates when it comes.
    NoPeer,
    /// The sender is no longer the current page of its participant.
    Stale,
}

/// The shared routing table: a cheap `Clone` handle.
#[derive(Clone, Default)]
pub struct Seats {
    state: Arc<Mutex<Rooms>>,
    /// On a node of a cluster: the other nodes' seats.
    bridge: Option<Bridge>,
}

#[derive(Default)]
struct Rooms {
    rooms: HashMap<CallId, Room>,
    /// Calls that are over, with when they ended.
    ended: HashMap<CallId, Instant>,
    /// The same calls in the order they ended, so forgetting old ones never scans the rest.
    ended_order: VecDeque<(Instant, CallId)>,
    /// Tells a page's seat from the seat of the page that replaced it.
    next_conn: u64,
}

#[derive(Default)]
struct Room {
    caller: Option<Member>,
    callee: Option<Member>,
    /// In a cluster: the page of each role is on another node.
    caller_elsewhere: bool,
    callee_elsewhere: bool,
}

struct Member {
    conn: u64,
    tx: mpsc::Sender<ToPage>,
}

/// One connected page's place in a room. Dropping it leaves the room, so a session that ends
/// in any way (socket error, server shutdown, task cancelled) never leaves a ghost behind.
pub struct Seat {
    seats: Seats,
    call: CallId,
    role: Role,
    conn: u64,
    /// What the seats hold for this page, in order.
    pub rx: mpsc::Receiver<ToPage>,
}

impl Seat {
    pub fn role(&self) -> Role {
        self.role
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.seats.leave(&self.call, self.role, self.conn);
    }
}

fn peer_of(role: Role) -> Role {
    match role {
        Role::Caller => Role::Callee,
        Role::Callee => Role::Caller,
    }
}

impl Room {
    fn seat(&mut self, role: Role) -> &mut Option<Member> {
        match role {
            Role::Caller => &mut self.caller,
            Role::Callee => &mut self.callee,
        }
    }

    fn elsewhere(&mut self, role: Role) -> &mut bool {
        match role {
            Role::Caller => &mut self.caller_elsewhere,
            Role::Callee => &mut self.callee_elsewhere,
        }
    }

    fn is_current(&mut self, role: Role, conn: u64) -> bool {
        self.seat(role).as_ref().is_some_and(|m| m.conn == conn)
    }

    fn is_empty(&self) -> bool {
        self.caller.is_none() && self.callee.is_none()
    }

    /// Queues `msg` for `role`'s page. A page whose queue is full (or gone) loses its seat, and
    /// the other page is told it left; its session sees its queue close and disconnects it.
    fn send(&mut self, role: Role, msg: ToPage) -> bool {
        let Some(member) = self.seat(role).as_ref() else {
            return false;
        };
        if member.tx.try_send(msg).is_ok() {
            return true;
        }
        tracing::debug!(?role, "room page too slow, dropping it");
        *self.seat(role) = None;
        let left = ToPage::Text(RelayMessage::PeerLeft.to_json());
        if let Some(other) = self.seat(peer_of(role)).as_ref()
            && other.tx.try_send(left).is_err()
        {
            *self.seat(peer_of(role)) = None;
        }
        false
    }

    /// Tells both pages the call is over and drops their queues, which closes their sockets.
    fn close_all(&mut self, reason_for: impl Fn(Role) -> EndReason) {
        for role in [Role::Caller, Role::Callee] {
            if let Some(member) = self.seat(role).take() {
                let ended = RelayMessage::Ended {
                    reason: reason_for(role),
                };
                // Best effort: a page too slow to take these is closed all the same.
                let _ = member.tx.try_send(ToPage::Text(ended.to_json()));
                let _ = member.tx.try_send(ToPage::Close {
                    code: axum::extract::ws::close_code::NORMAL,
                    reason: "the call has ended",
                });
            }
        }
    }
}

impl Seats {
    /// Seats for a node of a cluster, whose pages may meet pages on other nodes.
    pub fn bridged(bridge: Bridge) -> Self {
        Self {
            state: Arc::default(),
            bridge: Some(bridge),
        }
    }

    fn tell_others(&self, call: &CallId, what: RoomEvent) {
        if let Some(bridge) = &self.bridge {
            bridge.send(call, what);
        }
    }

    /// What another node's seats said about a call's room.
    pub fn heard_from_elsewhere(&self, signal: RoomSignal) {
        if self
            .bridge
            .as_ref()
            .is_none_or(|bridge| bridge.node() == signal.node)
        {
            return;
        }
        let call = signal.call;
        let mut state = self.lock();
        if let RoomEvent::HungUp { by } = signal.what {
            state.close(&call, Instant::now(), |role| {
                if role == by {
                    EndReason::Ended
                } else {
                    EndReason::PeerHungUp
                }
            });
            return;
        }
        let Some(room) = state.rooms.get_mut(&call) else {
            return;
        };
        match signal.what {
            RoomEvent::Joined { role } => {
                // The participant's newer page is on another node: it replaces this one.
                if let Some(old) = room.seat(role).take() {
                    let _ = old
                        .tx
                        .try_send(ToPage::Text(RelayMessage::Replaced.to_json()));
                    let _ = old.tx.try_send(ToPage::Close {
                        code: close::REPLACED,
                        reason: "opened in another window",
                    });
                }
                *room.elsewhere(role) = true;
                if room.seat(peer_of(role)).is_some() {
                    room.send(
                        peer_of(role),
                        ToPage::Text(RelayMessage::PeerJoined.to_json()),
                    );
                    drop(state);
                    self.tell_others(
                        &call,
                        RoomEvent::Present {
                            role: peer_of(role),
                        },
                    );
                } else if room.is_empty() {
                    state.rooms.remove(&call);
                }
            }
            RoomEvent::Present { role } => {
                if room.seat(peer_of(role)).is_some() && !*room.elsewhere(role) {
                    *room.elsewhere(role) = true;
                    room.send(
                        peer_of(role),
                        ToPage::Text(RelayMessage::PeerJoined.to_json()),
                    );
                }
            }
            RoomEvent::Left { role } => {
                if std::mem::take(room.elsewhere(role)) {
                    room.send(
                        peer_of(role),
                        ToPage::Text(RelayMessage::PeerLeft.to_json()),
                    );
                }
            }
            RoomEvent::Text { to, text } => {
                room.send(to, ToPage::Text(text));
            }
            RoomEvent::HungUp { .. } => {}
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rooms> {
        // Nothing here panics while holding the lock; if something did, the table is still
        // consistent enough to keep serving other calls.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Seats a newly connected page of `role` in `call`'s room; `None` if the call is over.
    pub fn join(&self, call: &CallId, role: Role) -> Option<Seat> {
        let mut state = self.lock();
        state.forget_ended(Instant::now());
        if state.ended.contains_key(call) {
            return None;
        }
        state.next_conn += 1;
        let conn = state.next_conn;
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        let room = state.rooms.entry(call.clone()).or_default();
        if let Some(old) = room.seat(role).replace(Member { conn, tx }) {
            let _ = old
                .tx
                .try_send(ToPage::Text(RelayMessage::Replaced.to_json()));
            let _ = old.tx.try_send(ToPage::Close {
                code: close::REPLACED,
                reason: "opened in another window",
            });
        }
        *room.elsewhere(role) = false;
        let peer_present = room.seat(peer_of(role)).is_some();
        room.send(
            role,
            ToPage::Text(RelayMessage::Welcome { role, peer_present }.to_json()),
        );
        if peer_present {
            room.send(
                peer_of(role),
                ToPage::Text(RelayMessage::PeerJoined.to_json()),
            );
        }
        // A peer on another node answers `Present`, which this page hears as `peer_joined`.
        drop(state);
        self.tell_others(call, RoomEvent::Joined { role });
        Some(Seat {
            seats: self.clone(),
            call: call.clone(),
            role,
            conn,
            rx,
        })
    }

    /// Passes `text` from `seat`'s page to the other page.
    pub fn forward(&self, seat: &Seat, text: String) -> Forwarded {
        let mut state = self.lock();
        let Some(room) = state.rooms.get_mut(&seat.call) else {
            return Forwarded::Stale;
        };
        if !room.is_current(seat.role, seat.conn) {
            return Forwarded::Stale;
        }
        let to = peer_of(seat.role);
        if *room.elsewhere(to) {
            drop(state);
            self.tell_others(&seat.call, RoomEvent::Text { to, text });
            return Forwarded::Sent;
        }
        if room.send(to, ToPage::Text(text)) {
            Forwarded::Sent
        } else {
            Forwarded::NoPeer
        }
    }

    /// Queues a message for `seat`'s own page (an error about what it sent).
    pub fn reply(&self, seat: &Seat, msg: &RelayMessage) {
        let mut state = self.lock();
        if let Some(room) = state.rooms.get_mut(&seat.call)
            && room.is_current(seat.role, seat.conn)
        {
            room.send(seat.role, ToPage::Text(msg.to_json()));
        }
    }

    /// `seat`'s participant pressed hang-up: the room closes, the other page learns who ended
    /// it. Returns false if `seat` was not the participant's current page.
    pub fn hang_up(&self, seat: &Seat, now: Instant) -> bool {
        let mut state = self.lock();
        let current = state
            .rooms
            .get_mut(&seat.call)
            .is_some_and(|room| room.is_current(seat.role, seat.conn));
        if current {
            let by = seat.role;
            state.close(&seat.call, now, |role| {
                if role == by {
                    EndReason::Ended
                } else {
                    EndReason::PeerHungUp
                }
            });
            drop(state);
            self.tell_others(&seat.call, RoomEvent::HungUp { by });
        }
        current
    }

    /// The call is over, however it ended: close its room and refuse pages that come late.
    pub fn end(&self, call: &CallId, now: Instant) {
        self.lock().close(call, now, |_| EndReason::Ended);
    }

    fn leave(&self, call: &CallId, role: Role, conn: u64) {
        let mut state = self.lock();
        let Some(room) = state.rooms.get_mut(call) else {
            return;
        };
        if !room.is_current(role, conn) {
            return;
        }
        *room.seat(role) = None;
        room.send(
            peer_of(role),
            ToPage::Text(RelayMessage::PeerLeft.to_json()),
        );
        if room.is_empty() {
            state.rooms.remove(call);
        }
        drop(state);
        self.tell_others(call, RoomEvent::Left { role });
    }

    #[cfg(test)]
    fn room_count(&self) -> usize {
        self.lock().rooms.len()
    }
}

impl Rooms {
    fn close(&mut self, call: &CallId, now: Instant, reason_for: impl Fn(Role) -> EndReason) {
        self.forget_ended(now);
        self.ended.insert(call.clone(), now);
        self.ended_order.push_back((now, call.clone()));
        if let Some(mut room) = self.rooms.remove(call) {
            room.close_all(reason_for);
        }
    }

    /// Forgets the ids of calls that ended longer than [`ENDED_KEPT_FOR`] ago. Only the expired
    /// ones are visited, so a busy server does not rescan a minute of calls on every call that
    /// ends; once most are gone the tables give their room back, so a busy spell leaves nothing.
    fn forget_ended(&mut self, now: Instant) {
        while let Some((at, _)) = self.ended_order.front()
            && now.saturating_duration_since(*at) >= ENDED_KEPT_FOR
        {
            if let Some((at, old)) = self.ended_order.pop_front()
                && self.ended.get(&old) == Some(&at)
            {
                self.ended.remove(&old);
            }
        }
        if self.ended.capacity() > 4 * self.ended.len() + 1024 {
            self.ended.shrink_to_fit();
            self.ended_order.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> CallId {
        CallId(id.into())
    }

    /// Everything queued for a seat right now.
    fn drain(seat: &mut Seat) -> Vec<ToPage> {
        let mut out = Vec::new();
        while let Ok(msg) = seat.rx.try_recv() {
            out.push(msg);
        }
        out
    }

    fn text(json: &str) -> ToPage {
        ToPage::Text(json.into())
    }

    #[test]
    fn the_second_page_hears_of_the_first_and_the_first_of_the_second() {
        let seats = Seats::default();
        let mut ann = seats.join(&call("c"), Role::Caller).unwrap();
        assert_eq!(
            drain(&mut ann),
            [text(
                r#"{"type":"welcome","role":"caller","peer_present":false}"#
            )]
        );
        let mut bob = seats.join(&call("c"), Role::Callee).unwrap();
        assert_eq!(
            drain(&mut bob),
            [text(
                r#"{"type":"welcome","role":"callee","peer_present":true}"#
            )]
        );
        assert_eq!(drain(&mut ann), [text(r#"{"type":"peer_joined"}"#)]);

        assert_eq!(seats.forward(&ann, "offer".into()), Forwarded::Sent);
        assert_eq!(seats.forward(&bob, "answer".into()), Forwarded::Sent);
        assert_eq!(drain(&mut bob), [text("offer")]);
        assert_eq!(drain(&mut ann), [text("answer")]);
    }

    #[test]
    fn rooms_of_different_calls_are_apart() {
        let seats = Seats::default();
        let ann = seats.join(&call("c1"), Role::Caller).unwrap();
        let mut eve = seats.join(&call("c2"), Role::Callee).unwrap();
        drain(&mut eve);
        assert_eq!(seats.forward(&ann, "offer".into()), Forwarded::NoPeer);
        assert!(drain(&mut eve).is_empty());
    }

    #[test]
    fn leaving_tells_the_peer_and_an_empty_room_is_forgotten() {
        let seats = Seats::default();
        let mut ann = seats.join(&call("c"), Role::Caller).unwrap();
        let bob = seats.join(&call("c"), Role::Callee).unwrap();
        drain(&mut ann);
        drop(bob);
        assert_eq!(drain(&mut ann), [text(r#"{"type":"peer_left"}"#)]);
        assert_eq!(seats.room_count(), 1);
        drop(ann);
        assert_eq!(seats.room_count(), 0);
    }

    #[test]
    fn a_reload_replaces_the_old_page_and_the_peer_renegotiates() {
        let seats = Seats::default();
        let mut ann = seats.join(&call("c"), Role::Caller).unwrap();
        let mut bob_old = seats.join(&call("c"), Role::Callee).unwrap();
        drain(&mut ann);
        drain(&mut bob_old);

        let mut bob_new = seats.join(&call("c"), Role::Callee).unwrap();
        assert_eq!(
            drain(&mut bob_old),
            [
                text(r#"{"type":"replaced"}"#),
                ToPage::Close {
                    code: close::REPLACED,
                    reason: "opened in another window"
                }
            ]
        );
        assert_eq!(drain(&mut ann), [text(r#"{"type":"peer_joined"}"#)]);
        assert_eq!(
            drain(&mut bob_new),
            [text(
                r#"{"type":"welcome","role":"callee","peer_present":true}"#
            )]
        );

        // The old page is no longer heard, and its going does not look like the peer leaving.
        assert_eq!(seats.forward(&bob_old, "stale".into()), Forwarded::Stale);
        drop(bob_old);
        assert!(drain(&mut ann).is_empty());
        assert_eq!(seats.forward(&bob_new, "answer".into()), Forwarded::Sent);
        assert_eq!(drain(&mut ann), [text("answer")]);
    }

    #[test]
    fn hang_up_ends_the_room_for_both_and_late_pages_are_refused() {
        let seats = Seats::default();
        let mut ann = seats.join(&call("c"), Role::Caller).unwrap();
        let mut bob = seats.join(&call("c"), Role::Callee).unwrap();
        drain(&mut ann);
        drain(&mut bob);
        assert!(seats.hang_up(&bob, Instant::now()));
        let closed = ToPage::Close {
            code: 1000,
            reason: "the call has ended",
        };
        assert_eq!(
            drain(&mut ann),
            [
                text(r#"{"type":"ended","reason":"peer_hung_up"}"#),
                closed.clone()
            ]
        );
        assert_eq!(
            drain(&mut bob),
            [text(r#"{"type":"ended","reason":"ended"}"#), closed]
        );
        assert_eq!(seats.room_count(), 0);
        assert!(seats.join(&call("c"), Role::Caller).is_none());
        // Ending it again, as the server does after a hang-up, changes nothing.
        seats.end(&call("c"), Instant::now());
        assert_eq!(seats.room_count(), 0);
    }

    #[test]
    fn ended_calls_are_forgotten_after_a_while() {
        let seats = Seats::default();
        let start = Instant::now();
        seats.end(&call("old"), start);
        seats.end(&call("new"), start + ENDED_KEPT_FOR);
        assert!(seats.join(&call("old"), Role::Caller).is_some());
        assert!(seats.join(&call("new"), Role::Caller).is_none());
    }

    #[test]
    fn a_page_that_stops_reading_loses_its_seat() {
        let seats = Seats::default();
        let mut ann = seats.join(&call("c"), Role::Caller).unwrap();
        let mut bob = seats.join(&call("c"), Role::Callee).unwrap();
        drain(&mut ann);
        for _ in 0..QUEUE_LEN - 1 {
            assert_eq!(seats.forward(&ann, "candidate".into()), Forwarded::Sent);
        }
        assert_eq!(
            seats.forward(&ann, "one too many".into()),
            Forwarded::NoPeer
        );
        assert_eq!(drain(&mut ann), [text(r#"{"type":"peer_left"}"#)]);
        // Bob's session reads what was queued, then finds the queue closed.
        assert_eq!(drain(&mut bob).len(), QUEUE_LEN);
        assert!(matches!(
            bob.rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }
}
