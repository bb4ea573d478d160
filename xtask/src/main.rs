//! `cargo xtask`: the workspace's build and test entry points.
//!
//! - `build-client`: the wasm client into `www/client/pkg/`, shrunk, with its size.
//! - `test`: every test suite (native, wasm in headless Chromium, browser end-to-end, the
//!   example site backend's).
//! - `run [ARGS]`: build the client if stale, then run the server with ARGS.

mod client;
mod shell;
mod suite;
mod wasm_sizes;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let result = match task.as_str() {
        "build-client" => client::build(),
        "test" => suite::run_all(),
        "run" => client::build_if_stale().and_then(|()| shell::run_server(&rest)),
        _ => {
            eprintln!("usage: cargo xtask <build-client | test | run [server args]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
