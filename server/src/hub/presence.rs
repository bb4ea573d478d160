//! Presence: logging sessions in and out, users going on and offline, and telling watchers.

use std::{collections::HashSet, time::Duration};

use switchboard_proto::{ErrorCode, Event, LogoutReason, UserRef, validate_user_id};

use super::{SessionId, directory::Change, engine::Engine, frame};
use crate::{calls::Input, cluster::ClusterEvent, store::Write};

/// How long after a restart the users who were online have to come back before the site's
/// backend is told they went offline: the clients' longest pause between reconnection attempts
/// (client-wasm's backoff), so every client still open has tried again by then.
pub(super) const RECONNECT_WINDOW: Duration = Duration::from_secs(30);

impl Engine {
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
        if self.sessions.user(session) != Some(user.id.as_str()) {
            if !self.config.single_session
                && self.directory.sessions(&user.id).len() >= self.config.limits.sessions_per_user
            {
                return Err(ErrorCode::TooManySessions);
            }
            self.leave_user(session);
            // The earlier user's watch list is not the new one's.
            self.set_watching(session, Vec::new());
            self.join_user(session, &user, re);
            if self.config.single_session {
                self.log_out_elsewhere(&user.id, session);
            }
            if self.cluster.is_some() {
                // Answered once every node sees the user online.
                return Ok(());
            }
        } else {
            self.directory.rename(&user);
        }
        self.sessions
            .deliver(session, re, &Event::LoggedIn { user });
        self.send_calls(session, None);
        Ok(())
    }

    pub(super) fn logout(&mut self, session: SessionId, re: Option<u32>) -> Result<(), ErrorCode> {
        if self.sessions.user(session).is_none() {
            return Err(ErrorCode::NotLoggedIn);
        }
        self.leave_user(session);
        // Presence is for logged-in members: a logged-out tab hears no more of it.
        self.set_watching(session, Vec::new());
        self.sessions.deliver(
            session,
            re,
            &Event::LoggedOut {
                reason: LogoutReason::Requested,
            },
        );
        Ok(())
    }

    /// Single-session mode: every other session of the user on this node is logged out, as in
    /// 2010. In a cluster, the login's JOIN takes the user's sessions on other nodes away in
    /// Redis, and their nodes hear it ([`ClusterEvent::LoggedInElsewhere`]).
    fn log_out_elsewhere(&mut self, user: &str, except: SessionId) {
        let others = self.directory.sessions(user);
        for other in others.into_iter().filter(|&s| s != except) {
            if let Some(cluster) = &self.cluster {
                cluster.leave(other, user);
            }
            self.logged_out(other, user, LogoutReason::Elsewhere);
        }
    }

    /// The session loses its user for `reason`, which its client is told: a login elsewhere
    /// (the user stays online there), or the site logging the user out everywhere. In a
    /// cluster, Redis has taken the session off already.
    pub(super) fn logged_out(&mut self, session: SessionId, user: &str, reason: LogoutReason) {
        self.sessions.set_user(session, None);
        if self.directory.leave(session, user) == Change::WentOffline {
            self.went_offline(user);
        }
        self.set_watching(session, Vec::new());
        self.sessions
            .deliver(session, None, &Event::LoggedOut { reason });
    }

    fn join_user(&mut self, session: SessionId, user: &UserRef, re: Option<u32>) {
        self.sessions.set_user(session, Some(user.id.clone()));
        self.writes.push(Write::SeenUser {
            user: user.clone(),
            at: self.clock.now(),
        });
        let change = self.directory.join(session, user, self.clock.now());
        if change == Change::CameOnline {
            self.metrics.users_online.inc();
        }
        match &self.cluster {
            // Whether that brings the user online is for Redis to say, once, to every node.
            Some(cluster) => cluster.join(session, user, re, self.config.single_session),
            None if change == Change::CameOnline => {
                self.record_presence(user.clone(), true);
                self.presence_changed(&user.id);
            }
            None => {}
        }
    }

    /// Takes the session's user off it; the user goes offline with their last session.
    pub(super) fn leave_user(&mut self, session: SessionId) {
        let Some(user) = self.sessions.set_user(session, None) else {
            return;
        };
        if let Some(cluster) = &self.cluster {
            cluster.leave(session, &user);
        }
        if self.directory.leave(session, &user) == Change::WentOffline {
            self.went_offline(&user);
        }
    }

    /// The user's last session on this node is gone.
    fn went_offline(&mut self, user: &str) {
        self.metrics.users_online.dec();
        let seen = UserRef {
            id: user.to_string(),
            name: self.directory.name(user).unwrap_or_default().to_string(),
        };
        self.writes.push(Write::SeenUser {
            user: seen.clone(),
            at: self.clock.now(),
        });
        if self.cluster.is_some() {
            // Whether they left the cluster too is Redis's to say (and to record).
            return;
        }
        self.record_presence(seen, false);
        self.presence_changed(user);
        // Calls that still ring for or from someone who left cannot be answered.
        for call in self.calls.of_user(user) {
            let Some(role) = self.calls.get(&call).map(|live| live.role_of(user)) else {
                continue;
            };
            let _ = self.transition(&call, Input::WentOffline(role), None);
        }
    }

    /// What this node hears from the cluster.
    pub(super) fn cluster_event(&mut self, event: ClusterEvent) {
        match event {
            ClusterEvent::Up => self.sync_cluster(),
            ClusterEvent::Down => {}
            ClusterEvent::Joined { session, user, re } => {
                // Unless the session logged out or in as someone else meanwhile.
                if self.sessions.user(session) == Some(user.id.as_str()) {
                    self.sessions
                        .deliver(session, re, &Event::LoggedIn { user });
                    self.send_calls(session, None);
                }
            }
            ClusterEvent::Online(everyone) => {
                for user in self.directory.set_cluster_online(everyone) {
                    self.presence_changed(&user);
                    if !self.directory.is_online(&user) {
                        self.gone_from_cluster(&user);
                    }
                }
            }
            ClusterEvent::LoggedOut {
                user,
                sessions,
                reason,
            } => {
                for session in sessions {
                    // Unless it logged out or in as someone else meanwhile.
                    if self.sessions.user(session) == Some(user.as_str()) {
                        self.logged_out(session, &user, reason);
                    }
                }
            }
            ClusterEvent::Presence { user, name, online } => {
                if self.directory.set_cluster_presence(&user, &name, online) {
                    self.presence_changed(&user);
                    if !online {
                        self.gone_from_cluster(&user);
                    }
                }
            }
            ClusterEvent::Calls(live) => self.cluster_calls(live),
            ClusterEvent::Call(change) => {
                self.apply_change(change);
            }
            ClusterEvent::Decided { op, result } => self.cluster_decided(op, result),
        }
    }

    /// A user came online or went offline for everyone on this one node: recorded for the
    /// webhooks, when they are on. (A cluster's Redis records its own decisions.)
    fn record_presence(&mut self, user: UserRef, online: bool) {
        if self.config.record_presence {
            let at = self.clock.now();
            self.writes.push(Write::Presence { user, online, at });
        }
    }

    /// After a restart: the users the site's backend was told are online and who have not
    /// come back within the reconnection window are told offline now. The others never saw
    /// the restart.
    pub(super) fn absent_after_restart(&mut self) {
        let Some((_, users)) = self.announced.take() else {
            return;
        };
        for id in users {
            if !self.directory.is_online(&id) {
                let name = self.directory.name(&id).unwrap_or_default().to_string();
                self.record_presence(UserRef { id, name }, false);
            }
        }
    }

    fn presence_changed(&mut self, user: &str) {
        let watchers = self.directory.watchers(user);
        if watchers.is_empty() {
            return;
        }
        let body = frame::body(&self.directory.presence(user));
        for session in watchers {
            self.sessions.deliver_body(session, None, &body);
        }
    }

    pub(super) fn watch(
        &mut self,
        session: SessionId,
        re: Option<u32>,
        users: Vec<String>,
    ) -> Result<(), ErrorCode> {
        // Presence is for members of the site, not for anyone who can open a socket.
        if self.sessions.user(session).is_none() {
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
            let event = self.directory.presence(&user);
            self.sessions.deliver(session, re, &event);
        }
        Ok(())
    }

    pub(super) fn set_watching(&mut self, session: SessionId, users: Vec<String>) {
        if let Some(old) = self.sessions.set_watching(session, users.clone()) {
            self.directory.rewatch(session, &old, &users);
        }
    }
}
