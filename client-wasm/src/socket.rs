//! The WebSocket to the server: one owner, listeners removed and socket closed on drop.

use std::rc::Rc;

use gloo_events::EventListener;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CloseEvent, MessageEvent, WebSocket};

pub enum SocketEvent {
    Open,
    Text(String),
    Closed { code: u16 },
}

#[must_use = "the socket closes when dropped"]
pub struct Socket {
    ws: WebSocket,
    _listeners: [EventListener; 3],
}

impl Socket {
    pub fn open(url: &str, on: impl Fn(SocketEvent) + 'static) -> Result<Self, JsValue> {
        let ws = WebSocket::new(url)?;
        let on = Rc::new(on);
        let open = {
            let on = on.clone();
            EventListener::new(&ws, "open", move |_| on(SocketEvent::Open))
        };
        let message = {
            let on = on.clone();
            EventListener::new(&ws, "message", move |e| {
                if let Some(text) = e
                    .dyn_ref::<MessageEvent>()
                    .and_then(|m| m.data().as_string())
                {
                    on(SocketEvent::Text(text));
                }
            })
        };
        // An "error" is always followed by "close", which is all the client acts on.
        let close = EventListener::new(&ws, "close", move |e| {
            let code = e.dyn_ref::<CloseEvent>().map_or(1006, CloseEvent::code);
            on(SocketEvent::Closed { code });
        });
        Ok(Self {
            ws,
            _listeners: [open, message, close],
        })
    }

    /// Sends one text frame; false when the socket is not open.
    pub fn send(&self, text: &str) -> bool {
        self.ws.ready_state() == WebSocket::OPEN && self.ws.send_with_str(text).is_ok()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = self.ws.close_with_code(1000);
    }
}
