//! Leader election with Web Locks: the tab holding the lock leads; the others wait in the
//! lock's queue, so when the leader closes, crashes or navigates the browser hands the lock to
//! the next tab within milliseconds.
//!
//! A frozen tab keeps its locks. Chromium avoids freezing a tab whose lock another tab waits
//! for, but it still freezes on other paths (mobile, back/forward cache, manual freezing), so
//! the leader gives the lock up on `freeze`/`pagehide`, and a visible follower whose pings go
//! unanswered takes the lock with `steal`; the stolen-from tab learns it from the rejected
//! request and stops leading before it runs anything else.

#[cfg(web_sys_unstable_apis)]
pub use locks::LockElection;
#[cfg(not(web_sys_unstable_apis))]
pub use without::LockElection;

/// What the election tells its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(web_sys_unstable_apis), allow(dead_code))]
pub enum Vote {
    /// This tab holds the lock: lead.
    Lead,
    /// Another tab holds it; this tab is queued behind it.
    Follow,
    /// The lock was taken from this tab: stop leading at once.
    Lost,
}

/// Web Locks through web-sys (behind its unstable-API switch, set for wasm builds).
#[cfg(web_sys_unstable_apis)]
mod locks {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    use js_sys::{Function, Promise, Reflect};
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;
    use web_sys::{LockManager, LockOptions};

    use super::Vote;

    #[must_use = "the lock is released when dropped"]
    pub struct LockElection {
        name: String,
        locks: LockManager,
        /// Resolving this function releases the lock this tab holds.
        held: Rc<RefCell<Option<Function>>>,
        /// False once the owner gave up: a grant arriving late is handed straight back.
        wanted: Rc<Cell<bool>>,
        /// Called when the lock is granted (`null` for an `ifAvailable` probe that lost).
        grant: Closure<dyn FnMut(JsValue) -> JsValue>,
        /// Called when a request fails, which is how a holder learns its lock was stolen.
        failed: Closure<dyn FnMut(JsValue)>,
    }

    /// True where the browser has Web Locks.
    fn locks_available() -> bool {
        let nav = web_sys::window().map(|w| w.navigator());
        nav.and_then(|n| Reflect::get(&n, &"locks".into()).ok())
            .is_some_and(|l| !l.is_undefined() && !l.is_null())
    }

    impl LockElection {
        pub fn new(name: &str, on: impl Fn(Vote) + 'static) -> Option<Self> {
            if !locks_available() {
                return None;
            }
            let locks = web_sys::window()?.navigator().locks();
            let on = Rc::new(on);
            let held: Rc<RefCell<Option<Function>>> = Rc::default();
            let wanted = Rc::new(Cell::new(false));
            let grant = {
                let (held, wanted, on) = (held.clone(), wanted.clone(), on.clone());
                Closure::new(move |lock: JsValue| -> JsValue {
                    if lock.is_null() {
                        on(Vote::Follow);
                        return JsValue::UNDEFINED;
                    }
                    if !wanted.get() || held.borrow().is_some() {
                        // Returning at once releases a lock nobody wants any more.
                        return JsValue::UNDEFINED;
                    }
                    let promise =
                        Promise::new(&mut |resolve, _| *held.borrow_mut() = Some(resolve));
                    on(Vote::Lead);
                    promise.into()
                })
            };
            let failed = {
                let held = held.clone();
                Closure::new(move |_err: JsValue| {
                    // Our request was aborted because another tab stole the lock we held.
                    if held.borrow_mut().take().is_some() {
                        on(Vote::Lost);
                    }
                })
            };
            Some(Self {
                name: name.to_owned(),
                locks,
                held,
                wanted,
                grant,
                failed,
            })
        }

        fn request(&self, options: &LockOptions) {
            let callback = self.grant.as_ref().unchecked_ref();
            let promise = self
                .locks
                .request_with_options(&self.name, options, callback);
            let _ = promise.catch(&self.failed);
        }

        /// Takes the lock if it is free (`Lead`), else answers `Follow` and waits in line.
        pub fn start(&self) {
            self.wanted.set(true);
            let probe = LockOptions::new();
            probe.set_if_available(true);
            self.request(&probe);
        }

        /// Waits in line for the lock (after `start` answered `Follow`).
        pub fn queue(&self) {
            if self.wanted.get() && self.held.borrow().is_none() {
                self.request(&LockOptions::new());
            }
        }

        /// Takes the lock from a leader that stopped answering.
        pub fn steal(&self) {
            self.wanted.set(true);
            let options = LockOptions::new();
            options.set_steal(true);
            self.request(&options);
        }

        #[cfg(test)]
        pub fn leads(&self) -> bool {
            self.held.borrow().is_some()
        }

        /// Lets the lock go and stops waiting for it.
        pub fn release(&self) {
            self.wanted.set(false);
            if let Some(resolve) = self.held.borrow_mut().take() {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        }
    }

    impl Drop for LockElection {
        fn drop(&mut self) {
            self.release();
        }
    }
}

/// Builds without Web Locks (native tests) always fall back to the channel-only election.
#[cfg(not(web_sys_unstable_apis))]
mod without {
    use super::Vote;

    pub enum LockElection {}

    impl LockElection {
        pub fn new(_name: &str, _on: impl Fn(Vote) + 'static) -> Option<Self> {
            None
        }

        pub fn start(&self) {
            match *self {}
        }

        pub fn queue(&self) {
            match *self {}
        }

        pub fn steal(&self) {
            match *self {}
        }

        pub fn release(&self) {
            match *self {}
        }
    }
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use wasm_bindgen_test::wasm_bindgen_test;

    async fn settle() {
        gloo_timers::future::TimeoutFuture::new(60).await;
    }

    fn recorder() -> (Rc<RefCell<Vec<Vote>>>, impl Fn(Vote) + 'static) {
        let log: Rc<RefCell<Vec<Vote>>> = Rc::default();
        let l = log.clone();
        (log, move |v| l.borrow_mut().push(v))
    }

    #[wasm_bindgen_test]
    async fn second_tab_follows_then_leads_when_first_releases() {
        let (a_log, a_on) = recorder();
        let (b_log, b_on) = recorder();
        let a = LockElection::new("sb-test-handover", a_on).unwrap();
        let b = LockElection::new("sb-test-handover", b_on).unwrap();
        a.start();
        settle().await;
        b.start();
        settle().await;
        assert_eq!(*a_log.borrow(), [Vote::Lead]);
        assert_eq!(*b_log.borrow(), [Vote::Follow]);
        b.queue();
        a.release();
        settle().await;
        assert_eq!(*b_log.borrow(), [Vote::Follow, Vote::Lead]);
        assert!(b.leads() && !a.leads());
    }

    #[wasm_bindgen_test]
    async fn steal_takes_over_and_tells_the_old_holder() {
        let (a_log, a_on) = recorder();
        let (b_log, b_on) = recorder();
        let a = LockElection::new("sb-test-steal", a_on).unwrap();
        let b = LockElection::new("sb-test-steal", b_on).unwrap();
        a.start();
        settle().await;
        b.steal();
        settle().await;
        assert_eq!(*a_log.borrow(), [Vote::Lead, Vote::Lost]);
        assert_eq!(*b_log.borrow(), [Vote::Lead]);
        assert!(!a.leads() && b.leads());
    }
}
