//! The built-in room's signalling messages, from either participant's page: parse, forward
//! (re-encode) and parse again must give the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::rooms::builtin_message::{MAX_MESSAGE_BYTES, PageMessage};
use switchboard_proto::Role;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for role in [Role::Caller, Role::Callee] {
        let Ok(message) = PageMessage::parse(text, role) else {
            continue;
        };
        assert!(text.len() <= MAX_MESSAGE_BYTES);
        match &message {
            PageMessage::Offer { sdp, .. } => {
                assert_eq!(role, Role::Caller, "a callee's offer got through");
                assert!(!sdp.trim().is_empty());
            }
            PageMessage::Answer { sdp, .. } => {
                assert_eq!(role, Role::Callee, "a caller's answer got through");
                assert!(!sdp.trim().is_empty());
            }
            _ => {}
        }
        let forwarded = message.to_json();
        assert_eq!(
            PageMessage::parse(&forwarded, role),
            Ok(message),
            "the forwarded form reads differently: {forwarded}"
        );
    }
});
