//! The user directory: who is online and on which sessions, the users known by name, and which
//! sessions watch whom. It answers questions and records changes; telling anybody about them is
//! the hub's job.

use std::collections::{HashMap, HashSet};

use switchboard_proto::{Event, UserRef};

use super::SessionId;
use crate::calls::Millis;

/// A user with at least one session.
struct Online {
    name: String,
    sessions: Vec<SessionId>,
    /// When their first session joined, for the site's backend.
    since: Millis,
}

/// What became of a user when a session joined or left them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The user's first session: they came online.
    CameOnline,
    /// Their last session went: they are offline.
    WentOffline,
    /// Still online on other sessions, or was already.
    Unchanged,
}

#[derive(Default)]
pub struct Directory {
    /// Users with a session on this node.
    online: HashMap<String, Online>,
    /// In a cluster: everybody online on any node (id → name), as Redis last said. It alone
    /// says who is online there, so every node tells watchers the same thing once.
    cluster: Option<HashMap<String, String>>,
    /// Every user seen, with their last display name: the rest are unknown.
    known: HashMap<String, String>,
    /// Sessions following each user's presence.
    watchers: HashMap<String, HashSet<SessionId>>,
}

impl Directory {
    /// A directory that knows `users` (loaded from the store) and has nobody online.
    pub fn new(users: impl IntoIterator<Item = UserRef>) -> Self {
        Self {
            known: users.into_iter().map(|u| (u.id, u.name)).collect(),
            ..Self::default()
        }
    }

    /// A directory for a node of a cluster: who is online comes from Redis.
    pub fn clustered(users: impl IntoIterator<Item = UserRef>) -> Self {
        Self {
            cluster: Some(HashMap::new()),
            ..Self::new(users)
        }
    }

    pub fn is_online(&self, user: &str) -> bool {
        match &self.cluster {
            Some(everyone) => everyone.contains_key(user),
            None => self.online.contains_key(user),
        }
    }

    /// Whether `user` has a session on this node.
    pub fn is_here(&self, user: &str) -> bool {
        self.online.contains_key(user)
    }

    /// In a cluster: a user came online or went offline somewhere. Returns whether that
    /// changes what this node knew.
    pub fn set_cluster_presence(&mut self, user: &str, name: &str, online: bool) -> bool {
        let Some(everyone) = &mut self.cluster else {
            return false;
        };
        if online {
            self.known.insert(user.to_string(), name.to_string());
        }
        if online {
            everyone
                .insert(user.to_string(), name.to_string())
                .is_none()
        } else {
            everyone.remove(user).is_some()
        }
    }

    /// In a cluster: everybody online anywhere, read afresh. Returns the users whose presence
    /// changed from what this node knew.
    pub fn set_cluster_online(&mut self, now: HashMap<String, String>) -> Vec<String> {
        let Some(before) = &self.cluster else {
            return Vec::new();
        };
        let mut changed: Vec<String> = before
            .keys()
            .filter(|user| !now.contains_key(*user))
            .chain(now.keys().filter(|user| !before.contains_key(*user)))
            .cloned()
            .collect();
        changed.sort();
        for (user, name) in &now {
            self.known.insert(user.clone(), name.clone());
        }
        self.cluster = Some(now);
        changed
    }

    /// The logged-in users of this node's sessions, with their names.
    pub fn here(&self) -> impl Iterator<Item = (SessionId, UserRef)> + '_ {
        self.online.iter().flat_map(|(id, o)| {
            o.sessions.iter().map(move |&session| {
                (
                    session,
                    UserRef {
                        id: id.clone(),
                        name: o.name.clone(),
                    },
                )
            })
        })
    }

    pub fn is_known(&self, user: &str) -> bool {
        self.known.contains_key(user)
    }

    /// The user's display name: as online now, else as last seen.
    pub fn name(&self, user: &str) -> Option<&str> {
        self.online
            .get(user)
            .map(|o| o.name.as_str())
            .or_else(|| self.cluster.as_ref()?.get(user).map(String::as_str))
            .or_else(|| self.known.get(user).map(String::as_str))
    }

    /// The name an online user goes by now; empty for one offline.
    pub fn online_name(&self, user: &str) -> String {
        self.online
            .get(user)
            .map(|o| o.name.clone())
            .unwrap_or_default()
    }

    /// The user's sessions, in the order they logged in.
    pub fn sessions(&self, user: &str) -> Vec<SessionId> {
        self.online
            .get(user)
            .map(|o| o.sessions.clone())
            .unwrap_or_default()
    }

    /// Everybody online, with their names.
    pub fn everyone_online(&self) -> impl Iterator<Item = UserRef> + '_ {
        self.online.iter().map(|(id, o)| UserRef {
            id: id.clone(),
            name: o.name.clone(),
        })
    }

    /// A user logged in again on a session they already had: their name may have changed.
    pub fn rename(&mut self, user: &UserRef) {
        if let Some(online) = self.online.get_mut(&user.id) {
            online.name.clone_from(&user.name);
        }
        if let Some(name) = self.known.get_mut(&user.id) {
            name.clone_from(&user.name);
        }
    }

    /// Puts a session on a user; `now` is when they came online, if this brings them.
    pub fn join(&mut self, session: SessionId, user: &UserRef, now: Millis) -> Change {
        self.known.insert(user.id.clone(), user.name.clone());
        let came_online = !self.online.contains_key(&user.id);
        let online = self
            .online
            .entry(user.id.clone())
            .or_insert_with(|| Online {
                name: user.name.clone(),
                sessions: Vec::new(),
                since: now,
            });
        online.name.clone_from(&user.name);
        online.sessions.push(session);
        if came_online {
            Change::CameOnline
        } else {
            Change::Unchanged
        }
    }

    /// Takes a session off a user.
    pub fn leave(&mut self, session: SessionId, user: &str) -> Change {
        let Some(online) = self.online.get_mut(user) else {
            return Change::Unchanged;
        };
        online.sessions.retain(|&s| s != session);
        if online.sessions.is_empty() {
            self.online.remove(user);
            Change::WentOffline
        } else {
            Change::Unchanged
        }
    }

    /// What watchers of `user` are told about them.
    pub fn presence(&self, user: &str) -> Event {
        Event::Presence {
            user: user.to_string(),
            name: self.name(user).map(str::to_string),
            online: self.is_online(user),
        }
    }

    /// The sessions watching `user`.
    pub fn watchers(&self, user: &str) -> Vec<SessionId> {
        self.watchers
            .get(user)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Moves a session's watches from the users in `old` to those in `new`.
    pub fn rewatch(&mut self, session: SessionId, old: &[String], new: &[String]) {
        for user in old {
            if let Some(set) = self.watchers.get_mut(user) {
                set.remove(&session);
                if set.is_empty() {
                    self.watchers.remove(user);
                }
            }
        }
        for user in new {
            self.watchers
                .entry(user.clone())
                .or_default()
                .insert(session);
        }
    }

    /// Keeps the users held in memory within `cap`: past it, offline users for whom `busy` is
    /// false are forgotten (down to nine tenths of the cap, so sweeps are rare). Returns how
    /// many were forgotten.
    pub fn forget_beyond(&mut self, cap: usize, busy: impl Fn(&str) -> bool) -> usize {
        if cap == 0 || self.known.len() <= cap {
            return 0;
        }
        let excess = self.known.len() - (cap - cap / 10);
        let forgotten: Vec<String> = self
            .known
            .keys()
            .filter(|user| !self.is_here(user) && !self.is_online(user) && !busy(user))
            .take(excess)
            .cloned()
            .collect();
        for user in &forgotten {
            self.known.remove(user);
        }
        forgotten.len()
    }

    pub fn known_count(&self) -> usize {
        self.known.len()
    }

    /// How many users are online (in a cluster: anywhere).
    pub fn online_count(&self) -> usize {
        match &self.cluster {
            Some(everyone) => everyone.len(),
            None => self.online.len(),
        }
    }

    /// When a user with a session on this node came online.
    pub fn online_since(&self, user: &str) -> Option<Millis> {
        self.online.get(user).map(|o| o.since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserRef {
        UserRef {
            id: id.into(),
            name: format!("{id}'s name"),
        }
    }

    #[test]
    fn a_user_is_online_while_any_session_is() {
        let mut d = Directory::default();
        assert_eq!(d.join(1, &user("ann"), 1_000), Change::CameOnline);
        assert_eq!(d.join(2, &user("ann"), 2_000), Change::Unchanged);
        assert_eq!(
            d.online_since("ann"),
            Some(1_000),
            "since the first session"
        );
        assert_eq!(d.leave(1, "ann"), Change::Unchanged);
        assert!(d.is_online("ann"));
        assert_eq!(d.sessions("ann"), vec![2]);
        assert_eq!(d.leave(2, "ann"), Change::WentOffline);
        assert!(!d.is_online("ann"));
        // Known by their last name once offline, and told so to watchers.
        assert_eq!(
            d.presence("ann"),
            Event::Presence {
                user: "ann".into(),
                name: Some("ann's name".into()),
                online: false
            }
        );
        assert_eq!(
            d.presence("bob"),
            Event::Presence {
                user: "bob".into(),
                name: None,
                online: false
            }
        );
    }

    #[test]
    fn rewatching_moves_a_session_between_users() {
        let mut d = Directory::default();
        d.rewatch(7, &[], &["ann".into(), "bob".into()]);
        assert_eq!(d.watchers("ann"), vec![7]);
        d.rewatch(7, &["ann".into(), "bob".into()], &["bob".into()]);
        assert!(d.watchers("ann").is_empty());
        assert_eq!(d.watchers("bob"), vec![7]);
    }

    #[test]
    fn only_offline_users_outside_calls_are_forgotten() {
        let mut d = Directory::new((0..20).map(|i| user(&format!("u{i}"))));
        d.join(1, &user("u0"), 0);
        let forgotten = d.forget_beyond(10, |u| u == "u1");
        assert_eq!(forgotten, 11, "down to nine tenths of the cap");
        assert!(d.is_known("u0") && d.is_known("u1"));
        assert_eq!(d.known_count(), 9);
    }
}
