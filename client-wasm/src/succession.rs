//! Who takes over from the leading tab, decided without browser APIs: a follower's watchdog
//! (ping a quiet leader, steal the lock from a frozen one) and, without Web Locks, the claims
//! tabs make over the channel. `step` takes what happened and the time and says what to do;
//! the tab performs it.

use crate::relay::TabId;

/// A visible follower that heard nothing for this long pings the leader. A leader hidden for
/// long has its timers throttled (beats may come a minute apart), but it still answers a ping
/// at once: channel messages are not throttled, only a frozen tab stays silent.
pub const QUIET_MS: f64 = 2500.0;
/// A pinged leader that stays silent this long is taken to be frozen.
pub const PING_MS: f64 = 1000.0;
/// Without Web Locks: a leader silent this long is replaced.
pub const FALLBACK_SILENCE_MS: f64 = 2500.0;
/// Without Web Locks: how long a claim waits for a better-placed rival.
pub const CLAIM_MS: f64 = 300.0;
/// A new link gives a leader this long to make itself heard before the first claim.
pub const FIRST_CLAIM_MS: f64 = 1200.0;

/// How leadership is decided in this browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A Web Lock decides; a frozen holder is replaced by stealing it.
    Locks,
    /// No Web Locks: tabs claim over the channel; the lowest tab id wins a tie.
    Claims,
}

/// A claim this tab made, waiting out its rivals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Claim {
    /// When the claim is decided.
    pub until: f64,
    /// A tab with a lower id claimed meanwhile: it leads, not this one.
    pub outbid: bool,
}

/// A follower's view of the leader.
#[derive(Clone, Debug, PartialEq)]
pub struct Succession {
    pub rule: Rule,
    /// This tab's id, which breaks ties between claims.
    pub id: TabId,
    /// The last time any tab leading (or claiming) was heard.
    pub last_heard: f64,
    /// When this tab pinged a quiet leader, until it answers or is replaced.
    pub ping_at: Option<f64>,
    /// This tab's pending claim (only under [`Rule::Claims`]).
    pub claim: Option<Claim>,
}

/// What happened to the follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The watchdog's timer fired. `visible`: only a visible tab judges the leader, since
    /// hidden tabs' timers are throttled.
    Tick { visible: bool },
    /// A message from the leader (or any tab speaking for it) arrived.
    Heard,
    /// Another tab claims leadership.
    Claimed { by: TabId },
    /// The leader said it is leaving.
    Resigned,
    /// The page became visible again.
    Shown,
    /// This tab came back or stopped leading: the leader (if any) gets a fresh quiet period.
    Restart,
}

/// What the tab does about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Ask the leader whether it is alive.
    Ping,
    /// The leader stopped answering: take the lock from it (and tell the page).
    Steal,
    /// Tell the other tabs this tab claims leadership.
    Claim,
    /// The claim stood: lead.
    Lead,
}

impl Succession {
    pub fn new(rule: Rule, id: TabId, now: f64) -> Self {
        Self {
            rule,
            id,
            last_heard: now - FALLBACK_SILENCE_MS + FIRST_CLAIM_MS,
            ping_at: None,
            claim: None,
        }
    }
}

/// The follower's next state, and what it does, after `input` at `now`.
pub fn step(s: &Succession, input: Input, now: f64) -> (Succession, Option<Effect>) {
    let mut next = s.clone();
    let effect = match input {
        Input::Heard | Input::Restart => {
            next.last_heard = now;
            None
        }
        Input::Resigned => {
            // With Web Locks the browser hands the lock on by itself; without, the followers
            // claim at their next tick instead of waiting out the silence.
            if s.rule == Rule::Claims {
                next.last_heard = 0.0;
            }
            None
        }
        Input::Claimed { by } => {
            if let Some(claim) = &mut next.claim
                && by < s.id
            {
                claim.outbid = true;
            }
            None
        }
        Input::Shown => {
            if s.ping_at.is_some() {
                None
            } else {
                next.ping_at = Some(now);
                Some(Effect::Ping)
            }
        }
        Input::Tick { visible } => match s.rule {
            Rule::Locks => watch_lock_holder(&mut next, visible, now),
            Rule::Claims => watch_claims(&mut next, now),
        },
    };
    (next, effect)
}

fn watch_lock_holder(s: &mut Succession, visible: bool, now: f64) -> Option<Effect> {
    if !visible {
        s.ping_at = None;
        return None;
    }
    match s.ping_at {
        Some(at) if s.last_heard > at => {
            s.ping_at = None;
            None
        }
        Some(at) if now - at > PING_MS => {
            s.ping_at = None;
            s.last_heard = now;
            Some(Effect::Steal)
        }
        Some(_) => None,
        None if now - s.last_heard > QUIET_MS => {
            s.ping_at = Some(now);
            Some(Effect::Ping)
        }
        None => None,
    }
}

fn watch_claims(s: &mut Succession, now: f64) -> Option<Effect> {
    match s.claim {
        Some(claim) if now >= claim.until => {
            s.claim = None;
            (!claim.outbid && now - s.last_heard > CLAIM_MS).then_some(Effect::Lead)
        }
        Some(_) => None,
        None if now - s.last_heard > FALLBACK_SILENCE_MS => {
            s.claim = Some(Claim {
                until: now + CLAIM_MS,
                outbid: false,
            });
            Some(Effect::Claim)
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: TabId = 50;

    fn follower(rule: Rule) -> Succession {
        Succession {
            rule,
            id: ME,
            last_heard: 10_000.0,
            ping_at: None,
            claim: None,
        }
    }

    fn tick(s: &Succession, now: f64) -> (Succession, Option<Effect>) {
        step(s, Input::Tick { visible: true }, now)
    }

    #[test]
    fn a_new_link_gives_the_leader_a_moment_before_claiming() {
        let s = Succession::new(Rule::Claims, ME, 10_000.0);
        let (s, effect) = tick(&s, 10_000.0 + FIRST_CLAIM_MS - 1.0);
        assert_eq!(effect, None);
        assert_eq!(
            tick(&s, 10_000.0 + FIRST_CLAIM_MS + 1.0).1,
            Some(Effect::Claim)
        );
    }

    #[test]
    fn a_quiet_leader_is_pinged_once() {
        let s = follower(Rule::Locks);
        assert_eq!(tick(&s, 10_000.0 + QUIET_MS).1, None);
        let (s, effect) = tick(&s, 10_001.0 + QUIET_MS);
        assert_eq!(effect, Some(Effect::Ping));
        assert_eq!(s.ping_at, Some(10_001.0 + QUIET_MS));
        assert_eq!(tick(&s, 10_002.0 + QUIET_MS).1, None);
    }

    #[test]
    fn a_leader_that_answers_the_ping_is_left_alone() {
        let s = Succession {
            ping_at: Some(20_000.0),
            ..follower(Rule::Locks)
        };
        let (s, _) = step(&s, Input::Heard, 20_100.0);
        let (s, effect) = tick(&s, 20_000.0 + PING_MS + 1.0);
        assert_eq!(effect, None);
        assert_eq!(s.ping_at, None);
    }

    #[test]
    fn a_pinged_leader_silent_past_the_deadline_loses_the_lock() {
        let s = Succession {
            ping_at: Some(20_000.0),
            ..follower(Rule::Locks)
        };
        assert_eq!(tick(&s, 20_000.0 + PING_MS).1, None);
        let (s, effect) = tick(&s, 20_001.0 + PING_MS);
        assert_eq!(effect, Some(Effect::Steal));
        assert_eq!((s.ping_at, s.last_heard), (None, 20_001.0 + PING_MS));
    }

    #[test]
    fn a_hidden_tab_does_not_judge_the_leader() {
        let s = Succession {
            ping_at: Some(20_000.0),
            ..follower(Rule::Locks)
        };
        let (s, effect) = step(&s, Input::Tick { visible: false }, 90_000.0);
        assert_eq!(effect, None);
        assert_eq!(s.ping_at, None);
    }

    #[test]
    fn showing_the_page_pings_unless_a_ping_is_out() {
        let (s, effect) = step(&follower(Rule::Locks), Input::Shown, 11_000.0);
        assert_eq!(effect, Some(Effect::Ping));
        assert_eq!(step(&s, Input::Shown, 11_100.0).1, None);
    }

    #[test]
    fn an_unopposed_claim_leads() {
        let s = follower(Rule::Claims);
        let (s, effect) = tick(&s, 10_001.0 + FALLBACK_SILENCE_MS);
        assert_eq!(effect, Some(Effect::Claim));
        let until = 10_001.0 + FALLBACK_SILENCE_MS + CLAIM_MS;
        assert_eq!(tick(&s, until - 1.0).1, None);
        let (s, effect) = tick(&s, until);
        assert_eq!(effect, Some(Effect::Lead));
        assert_eq!(s.claim, None);
    }

    #[test]
    fn a_lower_id_outbids_a_claim_and_a_higher_one_does_not() {
        let s = tick(&follower(Rule::Claims), 10_001.0 + FALLBACK_SILENCE_MS).0;
        let until = s.claim.unwrap().until;
        let (higher, _) = step(&s, Input::Claimed { by: ME + 1 }, until - 10.0);
        assert_eq!(tick(&higher, until).1, Some(Effect::Lead));
        let (lower, _) = step(&s, Input::Claimed { by: ME - 1 }, until - 10.0);
        let (lower, effect) = tick(&lower, until);
        assert_eq!(effect, None);
        assert_eq!(lower.claim, None);
    }

    #[test]
    fn a_claim_heard_before_claiming_changes_nothing() {
        let s = follower(Rule::Claims);
        assert_eq!(step(&s, Input::Claimed { by: 1 }, 10_100.0).0, s);
    }

    #[test]
    fn a_leader_heard_during_the_claim_keeps_leading() {
        let s = tick(&follower(Rule::Claims), 10_001.0 + FALLBACK_SILENCE_MS).0;
        let until = s.claim.unwrap().until;
        let (s, _) = step(&s, Input::Heard, until - 100.0);
        assert_eq!(tick(&s, until).1, None);
    }

    #[test]
    fn a_resignation_makes_followers_claim_at_once_without_locks() {
        let (s, _) = step(&follower(Rule::Claims), Input::Resigned, 10_100.0);
        assert_eq!(tick(&s, 10_600.0).1, Some(Effect::Claim));
        let (s, _) = step(&follower(Rule::Locks), Input::Resigned, 10_100.0);
        assert_eq!(s.last_heard, 10_000.0);
    }
}
