//! The page-facing functions: every 2010 `sv_*` command, a few optional additions, and the
//! hooks the ES module builds on. Arguments are taken loosely (numbers as ids, like 2010 pages
//! passed them).

use js_sys::{Array, Function};
use switchboard_proto::{Command, validate_name, validate_user_id};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::client::{Tab, with_tab};
use crate::relay::Identity;

/// Written out rather than formatted: number formatting would add to the bundle.
const NAME_RULE: &str = "not a valid display name (1 to 100 printable characters)";

/// A page value as text: strings as they are, numbers without a trailing `.0`.
fn text(v: &JsValue) -> Option<String> {
    if let Some(s) = v.as_string() {
        return Some(s.trim().to_owned());
    }
    // JavaScript's own number formatting: Rust's float formatting would add kilobytes.
    v.as_f64()
        .and_then(|n| js_sys::Number::from(n).to_string_with_radix(10).ok())
        .map(String::from)
}

fn identity(tab: &mut Tab, id: &JsValue, name: &JsValue, token: &JsValue) -> Option<Identity> {
    let token = text(token).filter(|t| !t.is_empty());
    let id = text(id).unwrap_or_default();
    let name = text(name).unwrap_or_default();
    // With a token the server takes id and name from it; without, both must be valid here.
    if token.is_none() {
        if !validate_user_id(&id) {
            tab.status(["not a valid user id: ", &id].concat());
            return None;
        }
        if !validate_name(&name) {
            tab.status(NAME_RULE);
            return None;
        }
    }
    Some(Identity { id, name, token })
}

#[wasm_bindgen]
pub fn sv_setserveraddress(url: JsValue) {
    let url = text(&url).unwrap_or_default();
    with_tab(|t| t.set_server(&url));
}

#[wasm_bindgen]
pub fn sv_setuserinfo(id: JsValue, name: JsValue, token: JsValue) {
    with_tab(|t| {
        if let Some(identity) = identity(t, &id, &name, &token) {
            t.set_user_info(identity);
        }
    });
}

#[wasm_bindgen]
pub fn sv_setomlink(_link: JsValue) {
    with_tab(|t| t.status("sv_setomlink is no longer needed; ignored"));
}

#[wasm_bindgen]
pub fn sv_login(id: JsValue, name: JsValue, token: JsValue) {
    with_tab(|t| {
        if let Some(identity) = identity(t, &id, &name, &token) {
            t.login(identity);
        }
    });
}

/// Optional: `f()` returns a fresh token (or a promise of one). The client asks it shortly
/// before the current token expires, and when the server refused an expired one, and logs in
/// again with the answer without the page noticing.
#[wasm_bindgen]
pub fn sv_settokenprovider(f: JsValue) {
    let f = f.dyn_into::<Function>().ok();
    with_tab(|t| t.provider = f);
}

/// Optional page settings. `escapeNames` (true/false): names and texts reach the `my_on*`
/// callbacks HTML-escaped, for pages that write them with `innerHTML`.
#[wasm_bindgen]
pub fn sv_setoption(name: JsValue, value: JsValue) {
    let name = text(&name).unwrap_or_default();
    with_tab(|t| match name.as_str() {
        "escapeNames" => t.escape_names = value.is_truthy(),
        _ => t.status(["unknown option: ", &name].concat()),
    });
}

#[wasm_bindgen]
pub fn sv_logoff() {
    with_tab(Tab::logoff);
}

#[wasm_bindgen]
pub fn sv_makecall(callee: JsValue) {
    let to = text(&callee).unwrap_or_default();
    with_tab(|t| t.command(Command::Call { to }));
}

#[wasm_bindgen]
pub fn sv_answercall() {
    with_tab(|t| t.call_command(|tr| tr.answer()));
}

#[wasm_bindgen]
pub fn sv_rejectcall() {
    with_tab(|t| t.call_command(|tr| tr.reject()));
}

#[wasm_bindgen]
pub fn sv_clearoutgoingcall() {
    with_tab(|t| t.call_command(|tr| tr.clear_outgoing()));
}

#[wasm_bindgen]
pub fn sv_clearincomingcall() {
    with_tab(|t| t.call_command(|tr| tr.clear_incoming()));
}

/// Optional: ends whichever call is answered.
#[wasm_bindgen]
pub fn sv_hangup() {
    with_tab(|t| t.call_command(|tr| tr.hangup()));
}

/// Optional: follow the presence of these users (`my_onpresence(id, name, online)`); takes an
/// array or a comma-separated string, and replaces this tab's earlier list.
#[wasm_bindgen]
pub fn sv_watch(ids: JsValue) {
    let list: Vec<String> = if Array::is_array(&ids) {
        Array::from(&ids).iter().filter_map(|v| text(&v)).collect()
    } else {
        text(&ids)
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect()
    };
    let mut users: Vec<String> = vec![];
    for user in list {
        if !user.is_empty() && !users.contains(&user) {
            users.push(user);
        }
    }
    with_tab(|t| t.set_watch(users));
}

/// For the ES module: `f(name, args)` hears every callback this tab fires. Returns an id
/// for [`remove_event_sink`].
#[wasm_bindgen]
pub fn add_event_sink(f: Function) -> u32 {
    let mut id = 0;
    with_tab(|t| id = t.sinks.add(f));
    id
}

#[wasm_bindgen]
pub fn remove_event_sink(id: u32) {
    with_tab(|t| t.sinks.remove(id));
}

/// True while this tab holds the browser's connection.
#[wasm_bindgen]
pub fn sv_ismaster() -> bool {
    let mut leads = false;
    with_tab(|t| leads = t.leads());
    leads
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn eval(js: &str) -> JsValue {
        js_sys::eval(js).unwrap()
    }

    fn record() {
        eval(
            "window.__rec = []; ['my_onmakecall','my_onstatusmessage','my_onincomingcall']\
             .forEach(n => window[n] = (...a) => __rec.push([n, ...a]));",
        );
    }

    fn recorded() -> String {
        eval("JSON.stringify(__rec)").as_string().unwrap()
    }

    #[wasm_bindgen_test]
    fn commands_without_a_server_explain_themselves() {
        record();
        sv_makecall(JsValue::from_str("bob"));
        sv_answercall();
        sv_setomlink(JsValue::from_str("http://om/flash.swf"));
        assert_eq!(
            recorded(),
            r#"[["my_onmakecall",false],["my_onstatusmessage","no server address set (sv_setserveraddress)"],["my_onstatusmessage","there is no incoming call to answer"],["my_onstatusmessage","sv_setomlink is no longer needed; ignored"]]"#
        );
    }

    #[wasm_bindgen_test]
    fn bad_identities_are_refused_with_a_reason() {
        record();
        sv_setuserinfo(
            JsValue::from_str("a b"),
            JsValue::from_str("A"),
            JsValue::UNDEFINED,
        );
        sv_login(
            JsValue::from_f64(17.0),
            JsValue::from_str(""),
            JsValue::NULL,
        );
        let seen = recorded();
        assert!(seen.contains("not a valid user id: a b"), "{seen}");
        assert!(seen.contains("not a valid display name"), "{seen}");
    }

    #[wasm_bindgen_test]
    fn numbers_are_ids_too() {
        assert_eq!(text(&JsValue::from_f64(17.0)).as_deref(), Some("17"));
        assert_eq!(text(&JsValue::from_str(" ann ")).as_deref(), Some("ann"));
        assert_eq!(text(&JsValue::UNDEFINED), None);
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod native {
    #[test]
    fn the_name_rule_states_the_limit() {
        let limit = switchboard_proto::MAX_NAME_CHARS.to_string();
        assert!(super::NAME_RULE.contains(&[" ", &limit, " "].concat()));
    }
}
