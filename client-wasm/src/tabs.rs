//! The tab's place among the other tabs of the browser: messages between tabs, the
//! election (Web Locks, or claims over the channel without them), and the page lifecycle.
//! When to replace a quiet leader is decided in `succession`; this file performs it.

use crate::client::{Tab, now};
use crate::election::Vote;
use crate::leader::Leader;
use crate::lifecycle::{self, PageChange};
use crate::relay::{Intent, Relay, SessionRef, TabId};
use crate::succession::{self, Effect, Input};
use crate::{json, wire};

impl Tab {
    /// Takes part in the election and asks the leader (if any) for its picture.
    pub(crate) fn join(&mut self) {
        let Some(link) = &mut self.link else { return };
        link.away = false;
        if let Some(locks) = &link.locks {
            locks.start();
        }
        self.announce_join();
    }

    /// Tells the leader what this tab wants (and asks for its picture if needed).
    pub(crate) fn announce_join(&mut self) {
        let Some(link) = &self.link else { return };
        let msg = Relay::Join {
            tab: self.id,
            snapshot: !link.synced,
            intent: self.intent.clone(),
            watch: self.watch.clone(),
        };
        self.post(&msg);
    }

    /// Stops leading (if it did) and leaves the election.
    pub(crate) fn leave(&mut self) {
        self.step_down(true);
        if let Some(link) = &mut self.link {
            link.away = true;
            if let Some(locks) = &link.locks {
                locks.release();
            }
        }
    }

    fn heard(&mut self) {
        self.succession(Input::Heard);
    }

    /// Tells the follower's watchdog what happened, and does what it decides.
    fn succession(&mut self, input: Input) {
        let Some(link) = &mut self.link else { return };
        let (next, effect) = succession::step(&link.succession, input, now());
        link.succession = next;
        match effect {
            None => {}
            Some(Effect::Ping) => self.post(&Relay::Ping { tab: self.id }),
            Some(Effect::Claim) => self.post(&Relay::Claim { tab: self.id }),
            Some(Effect::Steal) => {
                if let Some(locks) = self.link.as_ref().and_then(|l| l.locks.as_ref()) {
                    locks.steal();
                }
                self.status("the tab holding the connection stopped answering; taking over");
            }
            Some(Effect::Lead) => self.become_leader(),
        }
    }

    pub(crate) fn on_relay(&mut self, msg: Relay) {
        if self.link.as_ref().is_none_or(|l| l.away) {
            return;
        }
        match msg {
            Relay::Frame {
                session,
                frame,
                re_call,
            } => {
                self.heard();
                if let Some(frame) = json::parse(&frame).and_then(|v| wire::frame(&v)) {
                    self.deliver(&session, &frame, re_call);
                }
            }
            Relay::Beat {
                tab,
                session,
                intent,
            } => {
                self.heard();
                if self.leads() {
                    // Without Web Locks two tabs may both claim: the lower id keeps leading.
                    // With them the lock decides, and a beat from a rival is a thawed tab
                    // that has yet to learn it lost the lock.
                    if !self.uses_locks() && tab < self.id {
                        self.step_down(false);
                    }
                    return;
                }
                self.adopt(session, intent);
            }
            Relay::Status { text } => {
                self.heard();
                self.status(text);
            }
            Relay::Snapshot {
                to,
                session,
                events,
            } => {
                self.heard();
                if to == self.id {
                    self.apply_snapshot(session, &events);
                }
            }
            Relay::Leader { tab } => {
                self.heard();
                let locks = self.uses_locks();
                // With Web Locks a rival leader is a stealer, and our `Lost` is on its way.
                if self.leads() && !locks && tab < self.id {
                    self.step_down(false);
                }
                if !self.leads() {
                    self.announce_join();
                    self.resend_unacked();
                }
            }
            Relay::Resign { .. } => self.succession(Input::Resigned),
            Relay::Claim { tab } => self.on_claim(tab),
            Relay::Intent { intent, act } => {
                if self.leads() {
                    self.apply_intent(intent, act);
                } else if act {
                    self.intent.online = intent.online;
                }
            }
            Relay::Join {
                tab,
                snapshot,
                intent,
                watch,
            } => self.leader_join(tab, snapshot, intent, watch),
            Relay::Command { tab, n, cmd, call } => {
                if self.leads() {
                    self.leader_send(cmd, call);
                    self.post(&Relay::Ack { tab, n });
                }
            }
            Relay::Ack { tab, n } => {
                if tab == self.id {
                    self.unacked.ack(n);
                }
            }
            Relay::Watch { tab, users } => self.leader_watch(tab, users),
            Relay::Bye { tab } => self.leader_bye(tab),
            Relay::Ping { .. } => self.beat(),
            Relay::NeedToken => {
                if !self.leads() {
                    self.ask_provider();
                }
            }
        }
    }

    /// A follower takes the leader's view of the session and of the login intent.
    fn adopt(&mut self, session: Option<SessionRef>, intent: Intent) {
        if let Some(link) = &mut self.link
            && let Some(s) = session
            && link
                .shared
                .as_ref()
                .is_none_or(|old| old.key != s.key || old.last_seq < s.last_seq)
        {
            link.shared = Some(s);
        }
        self.intent.online = intent.online;
        // Keep the freshest token of this user, in case this tab comes to lead.
        if let (Some(mine), Some(theirs)) = (&self.intent.identity, intent.identity)
            && theirs.renews(mine)
        {
            self.intent.identity = Some(theirs);
        }
    }

    pub(crate) fn on_vote(&mut self, vote: Vote) {
        if self.link.as_ref().is_none_or(|l| l.away) {
            return;
        }
        match vote {
            Vote::Lead => self.become_leader(),
            Vote::Follow => {
                self.report_master(false);
                if let Some(locks) = self.link.as_ref().and_then(|l| l.locks.as_ref()) {
                    locks.queue();
                }
            }
            Vote::Lost => {
                self.step_down(false);
                if let Some(link) = &mut self.link {
                    // Taken from a frozen tab: what passed meanwhile may never have reached
                    // it, so it asks the new leader for its picture.
                    link.synced = false;
                    if let Some(locks) = &link.locks {
                        locks.queue();
                    }
                }
                self.announce_join();
            }
        }
    }

    fn on_claim(&mut self, tab: TabId) {
        if self.leads() {
            // A claimant that hears a beat backs off.
            self.beat();
        } else {
            self.succession(Input::Claimed { by: tab });
        }
    }

    pub(crate) fn on_tick(&mut self) {
        if self.leads() {
            self.leader_tick(now());
            return;
        }
        if self.link.as_ref().is_none_or(|l| l.away) {
            return;
        }
        let visible = lifecycle::visible();
        self.succession(Input::Tick { visible });
    }

    pub(crate) fn on_page(&mut self, change: PageChange) {
        match change {
            PageChange::Hide => {
                self.post(&Relay::Bye { tab: self.id });
                self.leave();
            }
            PageChange::Freeze => self.leave(),
            PageChange::Back => {
                if self.link.as_ref().is_some_and(|l| l.away) {
                    if let Some(link) = &mut self.link {
                        // Events passed by while away: ask for the leader's picture again.
                        link.synced = false;
                    }
                    self.succession(Input::Restart);
                    self.join();
                }
            }
            PageChange::Visible => {
                if !self.leads() {
                    self.succession(Input::Shown);
                }
            }
        }
    }

    fn become_leader(&mut self) {
        let Some(link) = &mut self.link else { return };
        if link.leader.is_some() {
            return;
        }
        link.leader = Some(Leader::new());
        link.synced = true;
        self.report_master(true);
        self.post(&Relay::Leader { tab: self.id });
        let own = self.watch.clone();
        if let Some(leader) = self.link.as_mut().and_then(|l| l.leader.as_mut()) {
            leader.watches.insert(self.id, own);
        }
        self.connect();
        // Commands this tab gave the previous leader, which never took them.
        for c in self.unacked.take_fresh(now()) {
            self.leader_send(c.cmd, c.call);
        }
    }

    /// Gives a new leader the commands the previous one never took.
    fn resend_unacked(&mut self) {
        let tab = self.id;
        let resent: Vec<Relay> = (self.unacked.fresh(now()).iter())
            .map(|c| Relay::Command {
                tab,
                n: c.n,
                cmd: c.cmd.clone(),
                call: c.call,
            })
            .collect();
        for msg in &resent {
            self.post(msg);
        }
    }

    /// Stops leading: closes the socket; `resign` tells the other tabs at once.
    pub fn step_down(&mut self, resign: bool) {
        let Some(link) = &mut self.link else { return };
        if link.leader.take().is_none() {
            return;
        }
        if resign {
            link.channel.post(&Relay::Resign { tab: self.id });
        }
        self.succession(Input::Restart);
        self.report_master(false);
    }
}
