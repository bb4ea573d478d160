//! Calls the page's `my_on*` functions, looked up on `window` at call time.
//!
//! A page that did not define a callback simply does not get it; a callback that throws is
//! logged and never reaches the client, which keeps running.

use js_sys::{Array, Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::callbacks::{Arg, Callback, escape_html};

/// Functions a module user registered to hear every callback as `(name, args)`.
#[derive(Default)]
pub struct Sinks {
    next: u32,
    list: Vec<(u32, Function)>,
}

impl Sinks {
    pub fn add(&mut self, f: Function) -> u32 {
        self.next += 1;
        self.list.push((self.next, f));
        self.next
    }

    pub fn remove(&mut self, id: u32) {
        self.list.retain(|(i, _)| *i != id);
    }

    pub fn functions(&self) -> Vec<Function> {
        self.list.iter().map(|(_, f)| f.clone()).collect()
    }
}

fn js_args(cb: &Callback, escape: bool) -> Array {
    cb.args()
        .into_iter()
        .map(|a| match a {
            Arg::Bool(b) => JsValue::from_bool(b),
            Arg::Text(t) if escape => JsValue::from_str(&escape_html(t)),
            Arg::Text(t) | Arg::Link(t) => JsValue::from_str(t),
        })
        .collect()
}

/// Fires one callback on the page and on each sink. `escape`: the page's `my_on*` functions
/// get names and texts HTML-escaped (the sinks of the ES module always get them as they are).
pub fn fire(cb: &Callback, sinks: &[Function], escape: bool) {
    let global = js_sys::global();
    if let Ok(f) = Reflect::get(&global, &JsValue::from_str(cb.name()))
        && let Some(f) = f.dyn_ref::<Function>()
        && let Err(e) = f.apply(&global, &js_args(cb, escape))
    {
        report(cb.name(), &e);
    }
    let args = js_args(cb, false);
    for sink in sinks {
        let call = Array::of2(&JsValue::from_str(cb.name()), &args);
        if let Err(e) = sink.apply(&JsValue::NULL, &call) {
            report(cb.name(), &e);
        }
    }
}

fn report(name: &str, error: &JsValue) {
    web_sys::console::error_2(
        &JsValue::from_str(&["switchboard: ", name, " threw"].concat()),
        error,
    );
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn eval(js: &str) -> JsValue {
        js_sys::eval(js).unwrap()
    }

    #[wasm_bindgen_test]
    fn calls_defined_skips_undefined_survives_throwing() {
        eval("window.__seen = []; window.my_onincomingcall = (n, l) => __seen.push([n, l]);");
        eval("delete window.my_onstatuschange;");
        eval("window.my_onmakecall = () => { throw new Error('page bug'); };");
        fire(
            &Callback::IncomingCall {
                name: "<b>Bob</b>".into(),
                link: "https://j/1".into(),
            },
            &[],
            false,
        );
        fire(&Callback::StatusChange(true), &[], false);
        fire(&Callback::MakeCall(true), &[], false);
        assert_eq!(
            eval("JSON.stringify(__seen)").as_string().unwrap(),
            r#"[["<b>Bob</b>","https://j/1"]]"#
        );
    }

    #[wasm_bindgen_test]
    fn sinks_hear_name_and_args() {
        eval("window.__sunk = [];");
        let f: Function = eval("(n, a) => __sunk.push([n, ...a])").unchecked_into();
        fire(&Callback::MasterStatus(false), &[f], true);
        assert_eq!(
            eval("JSON.stringify(__sunk)").as_string().unwrap(),
            r#"[["my_masterstatuschanged",false]]"#
        );
    }
}
