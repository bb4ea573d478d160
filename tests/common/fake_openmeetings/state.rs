//! What the fake OpenMeetings remembers: sessions, rooms, hashes and logins, kept so tests can
//! assert on them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{FakeOptions, LoginStyle};

/// Calls a test can make the fake lose its sessions before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeCall {
    FindRoom,
    Hash,
    CloseRoom,
    DeleteRoom,
}

#[derive(Clone, Debug)]
pub struct LoginAttempt {
    /// `GET` or `POST`.
    pub method: &'static str,
    pub user: String,
    /// Whether a SID was handed out (a refused method or bad credentials: false).
    pub ok: bool,
}

#[derive(Clone, Debug)]
pub struct FakeRoom {
    pub id: i64,
    pub kind: String,
    pub external_type: Option<String>,
    pub external_id: Option<String>,
    pub closed: bool,
    pub deleted: bool,
    /// The room as OpenMeetings would answer it (`RoomDTO`, null fields left out).
    pub dto: Map<String, Value>,
}

#[derive(Clone, Debug)]
pub struct IssuedHash {
    pub hash: String,
    /// The SID it was minted with.
    pub sid: String,
    pub room_id: i64,
    /// The `user` form field as sent.
    pub user: Value,
    /// The `options` form field as sent.
    pub options: Value,
    /// Whom it logged in, once used: the SID's user at that moment (the trap: the last user
    /// set on the SID, not necessarily the one it was minted for).
    pub entered_as: Option<Value>,
}

impl IssuedHash {
    pub fn user_field(&self, key: &str) -> Option<&str> {
        self.user.get(key).and_then(Value::as_str)
    }
}

pub struct Session {
    last_used: Instant,
    /// The external user the last hash call set on this session.
    pub user: Option<Value>,
    /// A used hash made this the external user's session: it has lost its API rights.
    pub taken_over: bool,
}

pub struct State {
    pub sid_idle: Duration,
    pub sessions: HashMap<String, Session>,
    pub rooms: Vec<FakeRoom>,
    pub hashes: Vec<IssuedHash>,
    pub logins: Vec<LoginAttempt>,
    /// Every call made with a SID, allowed or not, in order.
    pub calls: Vec<FakeCall>,
    pub expire_before: Option<FakeCall>,
}

pub struct Shared {
    pub options: FakeOptions,
    state: Mutex<State>,
    delay: Mutex<Duration>,
    proxy_down: AtomicBool,
    /// Starts as `options.login`; a test may change it, as an upgrade or a proxy would.
    login: Mutex<LoginStyle>,
}

impl Shared {
    pub fn new(options: FakeOptions) -> Self {
        let state = State {
            sid_idle: options.sid_idle,
            sessions: HashMap::new(),
            rooms: Vec::new(),
            hashes: Vec::new(),
            logins: Vec::new(),
            calls: Vec::new(),
            expire_before: None,
        };
        Self {
            login: Mutex::new(options.login),
            options,
            state: Mutex::new(state),
            delay: Mutex::new(Duration::ZERO),
            proxy_down: AtomicBool::new(false),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn delay(&self) -> Duration {
        *self.delay.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap_or_else(PoisonError::into_inner) = delay;
    }

    pub fn login_style(&self) -> LoginStyle {
        *self.login.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_login_style(&self, style: LoginStyle) {
        *self.login.lock().unwrap_or_else(PoisonError::into_inner) = style;
    }

    pub fn proxy_down(&self) -> bool {
        self.proxy_down.load(Ordering::Relaxed)
    }

    pub fn set_proxy_down(&self, down: bool) {
        self.proxy_down.store(down, Ordering::Relaxed);
    }
}

impl State {
    pub fn new_session(&mut self) -> String {
        let sid = uuid();
        self.sessions.insert(
            sid.clone(),
            Session {
                last_used: Instant::now(),
                user: None,
                taken_over: false,
            },
        );
        sid
    }

    /// The live session behind `sid`, refreshed as every authorised call refreshes it.
    pub fn session(&mut self, sid: &str, call: FakeCall) -> Option<&mut Session> {
        self.calls.push(call);
        if self.expire_before == Some(call) {
            self.expire_before = None;
            self.sessions.clear();
        }
        if !self.is_alive(sid) {
            self.sessions.remove(sid);
            return None;
        }
        let session = self.sessions.get_mut(sid)?;
        session.last_used = Instant::now();
        Some(session)
    }

    /// Whether `sid` is alive, without refreshing it (a hash works only while its SID lives).
    pub fn is_alive(&self, sid: &str) -> bool {
        self.sessions
            .get(sid)
            .is_some_and(|s| s.last_used.elapsed() <= self.sid_idle)
    }

    pub fn room_mut(&mut self, id: i64) -> Option<&mut FakeRoom> {
        self.rooms.iter_mut().find(|r| r.id == id)
    }

    /// Makes a room from a `RoomDTO`, filling in what OpenMeetings fills in.
    pub fn create_room(&mut self, mut dto: Map<String, Value>) -> FakeRoom {
        let id = self.rooms.len() as i64 + 1;
        dto.retain(|_, v| !v.is_null());
        dto.insert("id".into(), id.into());
        dto.entry("capacity").or_insert(4.into());
        for flag in [
            "isPublic",
            "closed",
            "moderated",
            "allowRecording",
            "waitModerator",
        ] {
            dto.entry(flag).or_insert(false.into());
        }
        let text = |key: &str| dto.get(key).and_then(Value::as_str).map(str::to_owned);
        let room = FakeRoom {
            id,
            kind: text("type").unwrap_or_default(),
            external_type: text("externalType"),
            external_id: text("externalId"),
            closed: false,
            deleted: false,
            dto,
        };
        self.rooms.push(room.clone());
        room
    }
}

impl FakeRoom {
    /// The `RoomDTO` answer, with the room's current state.
    pub fn answer(&self) -> Value {
        let mut dto = self.dto.clone();
        dto.insert("closed".into(), self.closed.into());
        Value::Object(dto)
    }
}

/// A random id in the shape OpenMeetings uses for SIDs and hashes.
pub fn uuid() -> String {
    let hex = format!("{:032x}", rand::random::<u128>());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
