//! Page lifecycle events the client must react to: leaving, freezing, coming back, showing.

use gloo_events::EventListener;
use wasm_bindgen::JsCast;
use web_sys::PageTransitionEvent;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageChange {
    /// The page is being unloaded or put in the back/forward cache.
    Hide,
    /// The page is about to be frozen: nothing will run until it resumes.
    Freeze,
    /// Back from the back/forward cache or from being frozen.
    Back,
    /// The page became visible.
    Visible,
}

#[must_use = "the listeners are removed when dropped"]
pub struct Lifecycle {
    _listeners: Vec<EventListener>,
}

impl Lifecycle {
    pub fn watch(on: impl Fn(PageChange) + Clone + 'static) -> Self {
        let mut listeners = vec![];
        if let Some(window) = web_sys::window() {
            let f = on.clone();
            listeners.push(EventListener::new(&window, "pagehide", move |_| {
                f(PageChange::Hide)
            }));
            let f = on.clone();
            listeners.push(EventListener::new(&window, "pageshow", move |e| {
                let restored = e
                    .dyn_ref::<PageTransitionEvent>()
                    .is_some_and(PageTransitionEvent::persisted);
                if restored {
                    f(PageChange::Back);
                }
            }));
            if let Some(doc) = window.document() {
                let f = on.clone();
                listeners.push(EventListener::new(&doc, "freeze", move |_| {
                    f(PageChange::Freeze)
                }));
                let f = on.clone();
                listeners.push(EventListener::new(&doc, "resume", move |_| {
                    f(PageChange::Back)
                }));
                let d = doc.clone();
                listeners.push(EventListener::new(&doc, "visibilitychange", move |_| {
                    if !d.hidden() {
                        on(PageChange::Visible)
                    }
                }));
            }
        }
        Self {
            _listeners: listeners,
        }
    }
}

/// True when the page is shown to the user.
pub fn visible() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| !d.hidden())
}
