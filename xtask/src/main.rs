//! `cargo xtask`: the workspace's build and test entry points.
//!
//! - `build-client`: the wasm client into `www/client/pkg/`, shrunk, with its size.
//! - `test`: every test suite (native, wasm in headless Chromium, browser end-to-end, the
//!   example site backend's), after installing what they need.
//! - `run [ARGS]`: build the client if stale, then run the server with ARGS (the pages and the
//!   bundle built into it).
//!
//! Both install what is missing first: the wasm target, the wasm-bindgen CLI, and for `test`
//! the Debian packages the tests start (see `tools`).

mod client;
mod shell;
mod suite;
mod tools;
mod wasm_sizes;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    // `cargo xtask run -- ARGS` and `cargo xtask run ARGS` alike.
    let rest: Vec<String> = args.skip_while(|a| a == "--").collect();
    let result = match task.as_str() {
        "build-client" => client::build(),
        "test" => tools::for_tests().and_then(|()| suite::run_all()),
        "run" => tools::for_client()
            .and_then(|()| client::build_if_stale())
            .and_then(|()| shell::run_server(&rest)),
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
