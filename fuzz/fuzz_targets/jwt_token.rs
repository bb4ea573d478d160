//! Any string as a login token, in signed mode (and refused in demo mode).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_fuzz::verify_both;
use switchboard_proto::Auth;

fuzz_target!(|data: &[u8]| {
    // Tokens arrive inside a JSON string, so they are always valid UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = verify_both(&Auth::Token(text.to_owned()));
});
