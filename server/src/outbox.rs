//! A connection's queue of events from the hub: bounded, and holding no memory while empty.
//!
//! Tokio's bounded channel allocates a block of slots when it is made and keeps every block its
//! traffic ever needed for as long as the connection lives; over tens of thousands of mostly
//! idle connections that is most of what a busy spell leaves behind. This queue allocates on the
//! first event and gives its memory back each time the connection has taken everything.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::Notify;

/// Why an event could not be queued; the event comes back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue holds its capacity already: the connection is not keeping up.
    Full(T),
    /// The connection is gone.
    Closed(T),
}

/// A new queue of at most `capacity` events: the hub's end and the connection's.
pub fn outbox<T>(capacity: usize) -> (Outbox<T>, Inbox<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            sender_gone: false,
            receiver_gone: false,
        }),
        ready: Notify::new(),
    });
    (
        Outbox {
            shared: shared.clone(),
            capacity: capacity.max(1),
        },
        Inbox { shared },
    )
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Woken when an event is queued or the hub's end is dropped.
    ready: Notify,
}

struct State<T> {
    items: VecDeque<T>,
    sender_gone: bool,
    receiver_gone: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The hub's end: queues events without waiting.
pub struct Outbox<T> {
    shared: Arc<Shared<T>>,
    capacity: usize,
}

impl<T> std::fmt::Debug for Outbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> Outbox<T> {
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return Err(TrySendError::Closed(item));
        }
        if state.items.len() >= self.capacity {
            return Err(TrySendError::Full(item));
        }
        state.items.push_back(item);
        drop(state);
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl<T> Drop for Outbox<T> {
    fn drop(&mut self) {
        self.shared.lock().sender_gone = true;
        self.shared.ready.notify_one();
    }
}

/// The connection's end.
pub struct Inbox<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Inbox<T> {
    /// The next event; `None` once the hub's end is gone and every event was taken.
    /// Cancel-safe: an event is taken only when it is returned.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            {
                let mut state = self.shared.lock();
                if let Some(item) = state.items.pop_front() {
                    if state.items.is_empty() {
                        state.items = VecDeque::new();
                    }
                    return Some(item);
                }
                if state.sender_gone {
                    return None;
                }
            }
            // A notification sent since the lock was released is kept as a permit.
            self.shared.ready.notified().await;
        }
    }
}

impl<T> Drop for Inbox<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        // What was queued goes now, not when the hub lets go of its end.
        state.items = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_arrive_in_order_up_to_the_capacity() {
        let (tx, mut rx) = outbox(2);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Ok(()));
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(tx.try_send(4), Ok(()));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(4));
    }

    #[tokio::test]
    async fn a_drained_queue_holds_no_memory() {
        let (tx, mut rx) = outbox(64);
        assert_eq!(tx.shared.lock().items.capacity(), 0);
        for i in 0..40 {
            tx.try_send(i).unwrap();
        }
        assert!(tx.shared.lock().items.capacity() >= 40);
        for i in 0..40 {
            assert_eq!(rx.recv().await, Some(i));
        }
        assert_eq!(tx.shared.lock().items.capacity(), 0);
    }

    #[tokio::test]
    async fn the_receiver_hears_the_sender_go_after_the_last_event() {
        let (tx, mut rx) = outbox(4);
        tx.try_send("last").unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some("last"));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn the_sender_hears_the_receiver_go() {
        let (tx, rx) = outbox(4);
        drop(rx);
        assert_eq!(tx.try_send(1), Err(TrySendError::Closed(1)));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_an_event() {
        let (tx, mut rx) = outbox(4);
        let waiting = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx.try_send(7).unwrap();
        assert_eq!(waiting.await.unwrap(), Some(7));
    }

    #[tokio::test]
    async fn a_cancelled_wait_loses_nothing() {
        let (tx, mut rx) = outbox(4);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(10), rx.recv()).await;
        assert!(waited.is_err());
        tx.try_send(9).unwrap();
        assert_eq!(rx.recv().await, Some(9));
    }
}
