//! Changes to calls decided in Redis: `calls::step` runs on the call as Redis holds it, and a
//! script stores the result only if the call is still at the version it was decided on (else
//! it is decided again on the newer one); placing a call checks the callee is free in the same
//! atomic step. Each decision runs beside the others, so one node decides many calls at once.

use redis::{AsyncCommands, aio::ConnectionManager};
use switchboard_proto::{CallId, ErrorCode};

use super::{
    ClusterEvent,
    connectivity::Connectivity,
    scripts,
    shared_call::{CallChange, Origin, SharedCall},
};
use crate::{
    calls::{self, Effect, Input, Millis},
    store::CallRecord,
};

/// How often a change decided on a copy that changed meanwhile is decided again.
const STEP_TRIES: usize = 8;

#[derive(Clone)]
pub struct Decider {
    pub manager: ConnectionManager,
    pub reach: Connectivity,
}

impl Decider {
    /// Places a call and tells the hub what became of it, as change `op`.
    pub async fn place_for(
        mut self,
        op: u64,
        shared: SharedCall,
        from: Option<Origin>,
        known_here: bool,
    ) {
        let result = self.place(&shared, from, known_here).await;
        self.decided(op, result);
    }

    /// Steps a call and tells the hub what became of it, as change `op`.
    pub async fn step_for(
        mut self,
        op: u64,
        id: CallId,
        input: Input,
        from: Option<Origin>,
        now: Millis,
    ) {
        let result = self.step(&id, &input, from.as_ref(), now).await;
        self.decided(op, result);
    }

    fn decided(&self, op: u64, result: Result<CallChange, ErrorCode>) {
        self.reach.tell(ClusterEvent::Decided { op, result });
    }

    /// A Redis error: the link is down, and the change is refused as unavailable.
    fn failed(&self, error: &redis::RedisError) -> ErrorCode {
        self.reach.went_down(error);
        ErrorCode::Unavailable
    }

    pub async fn place(
        &mut self,
        shared: &SharedCall,
        from: Option<Origin>,
        known_here: bool,
    ) -> Result<CallChange, ErrorCode> {
        if !self.reach.is_up() {
            return Err(ErrorCode::Unavailable);
        }
        let call = &shared.record.call;
        let change = CallChange {
            shared: shared.clone(),
            from,
            notify: true,
        };
        let outcome = scripts::PLACE
            .arg(&call.id.0)
            .arg(to_json(shared))
            .arg(&call.caller.id)
            .arg(&call.callee.id)
            .arg(to_json(&change))
            .arg(u8::from(known_here))
            .invoke_async::<String>(&mut self.manager)
            .await
            .map_err(|e| self.failed(&e))?;
        match outcome.strip_prefix("placed:") {
            Some(previous) => {
                // One outgoing call per user: the new one withdraws the previous.
                if !previous.is_empty() && previous != call.id.0 {
                    let id = CallId(previous.to_string());
                    let superseded = self
                        .step(&id, &Input::Superseded, None, call.placed_at)
                        .await;
                    if superseded.is_ok() {
                        self.decided(0, superseded);
                    }
                }
                Ok(change)
            }
            None if outcome == "busy" => Err(ErrorCode::Busy),
            None if outcome == "unknown" => Err(ErrorCode::UnknownUser),
            None => Err(ErrorCode::Offline),
        }
    }

    /// Runs the call rules on the call as Redis holds it, and stores the result if nobody
    /// changed the call meanwhile; else decides again on the newer version.
    pub async fn step(
        &mut self,
        id: &CallId,
        input: &Input,
        from: Option<&Origin>,
        now: Millis,
    ) -> Result<CallChange, ErrorCode> {
        if !self.reach.is_up() {
            return Err(ErrorCode::Unavailable);
        }
        let key = format!("sb:call:{}", id.0);
        for _ in 0..STEP_TRIES {
            let raw: Option<String> = self.manager.get(&key).await.map_err(|e| self.failed(&e))?;
            let shared: SharedCall = raw
                .and_then(|raw| serde_json::from_str(&raw).ok())
                .ok_or(ErrorCode::NoSuchCall)?;
            let (call, effects) =
                calls::step(&shared.record.call, input.clone(), now).map_err(ErrorCode::from)?;
            let handles = matches!(input, Input::Answer { .. } | Input::Reject { .. });
            let next = SharedCall {
                version: shared.version + 1,
                handled_by: if handles {
                    from.cloned()
                } else {
                    shared.handled_by.clone()
                },
                record: CallRecord {
                    call,
                    ..shared.record.clone()
                },
            };
            let change = CallChange {
                shared: next,
                from: from.cloned(),
                notify: effects.contains(&Effect::Notify),
            };
            let call = &change.shared.record.call;
            let outcome = scripts::STEP
                .arg(&id.0)
                .arg(shared.version)
                .arg(to_json(&change.shared))
                .arg(u8::from(effects.contains(&Effect::Release)))
                .arg(&call.caller.id)
                .arg(&call.callee.id)
                .arg(to_json(&change))
                .invoke_async::<String>(&mut self.manager)
                .await
                .map_err(|e| self.failed(&e))?;
            match outcome.as_str() {
                "ok" => return Ok(change),
                "conflict" => continue,
                _ => return Err(ErrorCode::NoSuchCall),
            }
        }
        tracing::warn!(call = %id.0, "a call kept changing while a step was decided; given up");
        Err(ErrorCode::Unavailable)
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
