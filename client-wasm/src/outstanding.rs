//! Commands a follower handed to the leader and the leader has not acknowledged yet. A leader
//! that goes away between a tab posting a command and taking it would lose it; the next
//! leader gets it from here instead.

/// Unacknowledged commands kept for a new leader.
pub const UNACKED_MAX: usize = 8;
/// A command older than this is dropped rather than handed to a new leader.
pub const UNACKED_FOR_MS: f64 = 10_000.0;

/// A command a follower handed to the leader, kept until the leader acknowledges it.
#[derive(Clone, Debug, PartialEq)]
pub struct Unacked {
    /// This tab's number for it, which the leader's `Ack` names.
    pub n: u32,
    /// The command as JSON text.
    pub cmd: String,
    /// It is a `call` (its error means "could not ring").
    pub call: bool,
    /// When the page gave it: an old one no longer means what the user meant.
    pub at: f64,
}

/// The commands of one tab awaiting the leader's acknowledgement, oldest first.
#[derive(Debug, Default)]
pub struct Outstanding {
    commands: Vec<Unacked>,
    /// The number given to the last command, so each `Ack` names one command.
    last_n: u32,
}

impl Outstanding {
    /// Keeps a command handed to the leader (forgetting the oldest beyond
    /// [`UNACKED_MAX`]) and returns the number the leader's `Ack` will name.
    pub fn push(&mut self, cmd: String, call: bool, now: f64) -> u32 {
        self.last_n = self.last_n.wrapping_add(1);
        if self.commands.len() == UNACKED_MAX {
            self.commands.remove(0);
        }
        self.commands.push(Unacked {
            n: self.last_n,
            cmd,
            call,
            at: now,
        });
        self.last_n
    }

    /// The leader took command `n`.
    pub fn ack(&mut self, n: u32) {
        self.commands.retain(|c| c.n != n);
    }

    /// Drops the commands too old to hand over, and returns the others, still awaiting an
    /// acknowledgement (to hand to another tab that now leads).
    pub fn fresh(&mut self, now: f64) -> &[Unacked] {
        self.commands.retain(|c| now - c.at < UNACKED_FOR_MS);
        &self.commands
    }

    /// Takes every command young enough to hand over (this tab now leads and sends them).
    pub fn take_fresh(&mut self, now: f64) -> Vec<Unacked> {
        self.fresh(now);
        std::mem::take(&mut self.commands)
    }

    /// Forgets every command (the page now speaks for another user).
    pub fn clear(&mut self) {
        self.commands.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(list: &[Unacked]) -> Vec<&str> {
        list.iter().map(|c| c.cmd.as_str()).collect()
    }

    #[test]
    fn an_acknowledged_command_is_not_handed_over() {
        let mut o = Outstanding::default();
        let a = o.push("a".into(), false, 0.0);
        let b = o.push("b".into(), true, 0.0);
        assert_ne!(a, b);
        o.ack(a);
        assert_eq!(cmds(o.fresh(1.0)), ["b"]);
        assert!(o.fresh(1.0)[0].call);
    }

    #[test]
    fn an_old_command_is_dropped_rather_than_handed_over() {
        let mut o = Outstanding::default();
        o.push("old".into(), false, 0.0);
        o.push("new".into(), false, 5_000.0);
        assert_eq!(cmds(o.fresh(UNACKED_FOR_MS)), ["new"]);
        assert_eq!(cmds(o.fresh(UNACKED_FOR_MS)), ["new"]);
    }

    #[test]
    fn a_new_leader_takes_them_all_once() {
        let mut o = Outstanding::default();
        o.push("a".into(), false, 0.0);
        o.push("b".into(), false, 0.0);
        assert_eq!(cmds(&o.take_fresh(1.0)), ["a", "b"]);
        assert!(o.take_fresh(1.0).is_empty());
    }

    #[test]
    fn only_the_newest_are_kept() {
        let mut o = Outstanding::default();
        for i in 0..UNACKED_MAX + 2 {
            o.push(i.to_string(), false, 0.0);
        }
        let kept = o.take_fresh(1.0);
        assert_eq!(kept.len(), UNACKED_MAX);
        assert_eq!(kept[0].cmd, "2");
    }

    #[test]
    fn cleared_commands_are_gone() {
        let mut o = Outstanding::default();
        o.push("a".into(), false, 0.0);
        o.clear();
        assert!(o.fresh(1.0).is_empty());
    }
}
