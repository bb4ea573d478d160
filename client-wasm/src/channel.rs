//! The BroadcastChannel the tabs of one browser talk over; closed and unhooked on drop.

use gloo_events::EventListener;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, MessageEvent};

use crate::relay::Relay;

#[must_use = "the channel closes when dropped"]
pub struct Channel {
    bc: BroadcastChannel,
    _listener: EventListener,
}

impl Channel {
    pub fn open(name: &str, on: impl Fn(Relay) + 'static) -> Result<Self, JsValue> {
        let bc = BroadcastChannel::new(name)?;
        let listener = EventListener::new(&bc, "message", move |e| {
            let text = e
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string());
            // Anything else on the channel (another version, another script) is ignored.
            if let Some(msg) = text.as_deref().and_then(Relay::from_text) {
                on(msg);
            }
        });
        Ok(Self {
            bc,
            _listener: listener,
        })
    }

    /// Sends to every other tab (a BroadcastChannel never echoes to its sender).
    pub fn post(&self, msg: &Relay) {
        let _ = self.bc.post_message(&JsValue::from_str(&msg.to_text()));
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.bc.close();
    }
}
