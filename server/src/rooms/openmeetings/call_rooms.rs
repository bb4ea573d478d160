//! The OpenMeetings rooms of calls in progress, so that each call makes one room and releases
//! it once, even when a click and the end of the call cross.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use switchboard_proto::CallId;
use tokio::sync::OnceCell;

/// What was made on OpenMeetings for one call.
#[derive(Debug, Default)]
pub struct CallEntry {
    /// Concurrent first clicks of both participants wait for one find-or-create instead of
    /// racing two (OpenMeetings does not make it atomic); a failed attempt leaves the cell
    /// empty so the next click tries again.
    room: OnceCell<i64>,
    /// Set by whoever releases the room.
    released: AtomicBool,
}

impl CallEntry {
    /// The call's room id, made by `make` unless known or being made.
    pub async fn room_id<E, F, Fut>(&self, make: F) -> Result<i64, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64, E>>,
    {
        self.room.get_or_try_init(make).await.copied()
    }

    /// The room id, to the first caller only: the room is released once.
    pub fn take_for_release(&self) -> Option<i64> {
        let id = *self.room.get()?;
        (!self.released.swap(true, Ordering::AcqRel)).then_some(id)
    }
}

#[derive(Debug, Default)]
pub struct Calls {
    entries: Mutex<HashMap<CallId, Arc<CallEntry>>>,
}

impl Calls {
    pub fn entry(&self, call: &CallId) -> Arc<CallEntry> {
        self.lock().entry(call.clone()).or_default().clone()
    }

    /// Forgets the call; its entry, if any, for releasing its room.
    pub fn end(&self, call: &CallId) -> Option<Arc<CallEntry>> {
        self.lock().remove(call)
    }

    /// False once the call has ended: a click that was busy meanwhile must release what it
    /// made, since the end of the call could not see it.
    pub fn is_current(&self, call: &CallId, entry: &Arc<CallEntry>) -> bool {
        self.lock()
            .get(call)
            .is_some_and(|current| Arc::ptr_eq(current, entry))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<CallId, Arc<CallEntry>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_room_per_call_released_once() {
        let calls = Calls::default();
        let id = CallId("c".into());
        let entry = calls.entry(&id);
        assert!(Arc::ptr_eq(&entry, &calls.entry(&id)));
        assert_eq!(entry.take_for_release(), None, "no room yet");

        let failed: Result<i64, &str> = entry.room_id(|| async { Err("down") }).await;
        assert!(failed.is_err());
        assert_eq!(entry.room_id(|| async { Ok::<_, ()>(7) }).await, Ok(7));
        assert_eq!(entry.room_id(|| async { Ok::<_, ()>(8) }).await, Ok(7));

        assert!(calls.is_current(&id, &entry));
        let ended = calls.end(&id).expect("the entry");
        assert!(!calls.is_current(&id, &entry));
        assert_eq!(ended.take_for_release(), Some(7));
        assert_eq!(entry.take_for_release(), None);
        assert!(calls.end(&id).is_none());
    }
}
