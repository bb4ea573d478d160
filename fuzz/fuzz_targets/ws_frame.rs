//! `/ws` text frames: JSON → `ClientFrame` as the session reads them, the id it echoes when a
//! frame is not understood, and the identity check a login runs, in demo and signed mode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_fuzz::verify_both;
use switchboard_proto::{ClientFrame, Command};

fuzz_target!(|data: &[u8]| {
    // The WebSocket layer hands the session only valid UTF-8 as text; binary frames are refused
    // before any parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => {
            let encoded = serde_json::to_string(&frame).expect("a parsed frame encodes");
            let again: ClientFrame =
                serde_json::from_str(&encoded).expect("an encoded frame parses");
            assert_eq!(again, frame, "round trip changed the frame: {encoded}");
            if let Command::Login { auth } = &frame.cmd {
                let _ = verify_both(auth);
            }
        }
        Err(_) => {
            // As the session does, to still answer with the command's id.
            let _ = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("id")?.as_u64())
                .and_then(|id| u32::try_from(id).ok());
        }
    }
});
