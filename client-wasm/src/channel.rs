//! The BroadcastChannel the tabs of one browser talk over; closed and unhooked on drop.

use gloo_events::EventListener;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, MessageEvent};

use crate::relay::Relay;

#[must_use = "the channel closes when dropped"]
pub struct Channel {
    bc: BroadcastChannel,
    /// The user whose tabs talk here; every message carries it and others' are ignored.
    user: String,
    _listener: EventListener,
}

impl Channel {
    pub fn open(name: &str, user: &str, on: impl Fn(Relay) + 'static) -> Result<Self, JsValue> {
        let bc = BroadcastChannel::new(name)?;
        let mine = user.to_owned();
        let listener = EventListener::new(&bc, "message", move |e| {
            let text = e
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string());
            // Anything else on the channel (another version, another script) is ignored.
            if let Some(msg) = text.as_deref().and_then(|t| Relay::from_text(t, &mine)) {
                on(msg);
            }
        });
        Ok(Self {
            bc,
            user: user.to_owned(),
            _listener: listener,
        })
    }

    /// Sends to every other tab (a BroadcastChannel never echoes to its sender).
    pub fn post(&self, msg: &Relay) {
        let _ = self
            .bc
            .post_message(&JsValue::from_str(&msg.to_text(&self.user)));
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.bc.close();
    }
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    async fn tabs_hear_each_other_but_not_themselves() {
        let heard: Rc<RefCell<Vec<Relay>>> = Rc::default();
        let (a_heard, b_heard) = (heard.clone(), Rc::new(RefCell::new(vec![])));
        let b_log = b_heard.clone();
        let a = Channel::open("sb-test-channel", "u", move |m| {
            a_heard.borrow_mut().push(m)
        })
        .unwrap();
        let b = Channel::open("sb-test-channel", "u", move |m| b_log.borrow_mut().push(m)).unwrap();
        a.post(&Relay::Ping { tab: 1 });
        b.post(&Relay::Bye { tab: 2 });
        gloo_timers::future::TimeoutFuture::new(50).await;
        assert_eq!(*heard.borrow(), [Relay::Bye { tab: 2 }]);
        assert_eq!(*b_heard.borrow(), [Relay::Ping { tab: 1 }]);
    }
}
