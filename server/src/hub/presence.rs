//! Presence: logging sessions in and out, users going on and offline, and watchers.

use std::collections::HashSet;

use switchboard_proto::{ErrorCode, Event, LogoutReason, Role, UserRef, validate_user_id};

use super::{
    SessionId,
    state::{Online, State},
};
use crate::{calls::Input, store::Write};

impl State {
    pub(super) fn login(
        &mut self,
        session: SessionId,
        re: Option<u32>,
        user: UserRef,
    ) -> Result<(), ErrorCode> {
        if let Some(limiter) = &self.login_limiter
            && limiter.check_key(&session).is_err()
        {
            return Err(ErrorCode::RateLimited);
        }
        let current = self.sessions.get(&session).and_then(|s| s.user.clone());
        if current.as_deref() != Some(user.id.as_str()) {
            if self
                .online
                .get(&user.id)
                .is_some_and(|o| o.sessions.len() >= self.config.limits.sessions_per_user)
                && !self.config.single_session
            {
                return Err(ErrorCode::TooManySessions);
            }
            self.leave_user(session);
            // The earlier user's watch list is not the new one's.
            self.set_watching(session, Vec::new());
            if self.config.single_session {
                self.log_out_elsewhere(&user.id);
            }
            self.join_user(session, &user);
        } else if let Some(online) = self.online.get_mut(&user.id) {
            online.name.clone_from(&user.name);
        }
        self.deliver(session, re, &Event::LoggedIn { user });
        self.send_calls(session, None);
        Ok(())
    }

    pub(super) fn logout(&mut self, session: SessionId, re: Option<u32>) -> Result<(), ErrorCode> {
        if self.sessions.get(&session).is_none_or(|s| s.user.is_none()) {
            return Err(ErrorCode::NotLoggedIn);
        }
        self.leave_user(session);
        // Presence is for logged-in members: a logged-out tab hears no more of it.
        self.set_watching(session, Vec::new());
        self.deliver(
            session,
            re,
            &Event::LoggedOut {
                reason: LogoutReason::Requested,
            },
        );
        Ok(())
    }

    /// Single-session mode: every other session of the user is logged out, as in 2010.
    fn log_out_elsewhere(&mut self, user: &str) {
        let others = self
            .online
            .get(user)
            .map(|o| o.sessions.clone())
            .unwrap_or_default();
        for other in others {
            if let Some(s) = self.sessions.get_mut(&other) {
                s.user = None;
            }
            self.set_watching(other, Vec::new());
            self.deliver(
                other,
                None,
                &Event::LoggedOut {
                    reason: LogoutReason::Elsewhere,
                },
            );
        }
        if let Some(online) = self.online.get_mut(user) {
            online.sessions.clear();
        }
    }

    fn join_user(&mut self, session: SessionId, user: &UserRef) {
        if let Some(s) = self.sessions.get_mut(&session) {
            s.user = Some(user.id.clone());
        }
        let now = self.clock.now();
        self.known.insert(user.id.clone(), user.name.clone());
        self.writes.push(Write::SeenUser {
            user: user.clone(),
            at: now,
        });
        let came_online = !self.online.contains_key(&user.id);
        let online = self
            .online
            .entry(user.id.clone())
            .or_insert_with(|| Online {
                name: user.name.clone(),
                sessions: Vec::new(),
            });
        online.name.clone_from(&user.name);
        online.sessions.push(session);
        if came_online {
            self.metrics.users_online.inc();
            self.presence_changed(&user.id, true);
        }
    }

    /// Takes the session's user off it; the user goes offline with their last session.
    pub(super) fn leave_user(&mut self, session: SessionId) {
        let Some(user) = self.sessions.get_mut(&session).and_then(|s| s.user.take()) else {
            return;
        };
        let Some(online) = self.online.get_mut(&user) else {
            return;
        };
        online.sessions.retain(|&s| s != session);
        if online.sessions.is_empty() {
            self.went_offline(&user);
        }
    }

    fn went_offline(&mut self, user: &str) {
        let Some(online) = self.online.remove(user) else {
            return;
        };
        self.metrics.users_online.dec();
        self.writes.push(Write::SeenUser {
            user: UserRef {
                id: user.to_string(),
                name: online.name,
            },
            at: self.clock.now(),
        });
        self.presence_changed(user, false);
        // Calls that still ring for or from someone who left cannot be answered.
        let ringing: Vec<_> = self.user_calls.get(user).cloned().unwrap_or_default();
        for call in ringing {
            let role = match self.calls.get(&call) {
                Some(live) if live.call.caller.id == user => Role::Caller,
                Some(_) => Role::Callee,
                None => continue,
            };
            let _ = self.transition(&call, Input::WentOffline(role), None);
        }
    }

    fn presence_event(&self, user: &str) -> Event {
        let online = self.online.get(user);
        Event::Presence {
            user: user.to_string(),
            name: online
                .map(|o| o.name.clone())
                .or_else(|| self.known.get(user).cloned()),
            online: online.is_some(),
        }
    }

    fn presence_changed(&mut self, user: &str, _online: bool) {
        let Some(watchers) = self.watchers.get(user) else {
            return;
        };
        let watchers: Vec<_> = watchers.iter().copied().collect();
        let body = Self::body(&self.presence_event(user));
        for session in watchers {
            self.deliver_body(session, None, &body);
        }
    }

    pub(super) fn watch(
        &mut self,
        session: SessionId,
        re: Option<u32>,
        users: Vec<String>,
    ) -> Result<(), ErrorCode> {
        // Presence is for members of the site, not for anyone who can open a socket.
        if self.sessions.get(&session).is_none_or(|s| s.user.is_none()) {
            return Err(ErrorCode::NotLoggedIn);
        }
        let mut seen = HashSet::new();
        let users: Vec<String> = users
            .into_iter()
            .filter(|u| seen.insert(u.clone()))
            .collect();
        if users.len() > self.config.limits.max_watched {
            return Err(ErrorCode::TooManyWatched);
        }
        if !users.iter().all(|u| validate_user_id(u)) {
            return Err(ErrorCode::InvalidUserId);
        }
        self.set_watching(session, users.clone());
        for user in users {
            let event = self.presence_event(&user);
            self.deliver(session, re, &event);
        }
        Ok(())
    }

    pub(super) fn set_watching(&mut self, session: SessionId, users: Vec<String>) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let old = std::mem::replace(&mut s.watching, users.clone());
        for user in old {
            if let Some(set) = self.watchers.get_mut(&user) {
                set.remove(&session);
                if set.is_empty() {
                    self.watchers.remove(&user);
                }
            }
        }
        for user in users {
            self.watchers.entry(user).or_default().insert(session);
        }
    }
}
