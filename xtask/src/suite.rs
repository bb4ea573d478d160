//! `cargo xtask test`: every suite in order, stopping at the first failure.

use std::process::Command;

use crate::client;
use crate::shell::{Result, cargo, npm_install, root, run};

pub fn run_all() -> Result {
    run(cargo().args(["test", "--workspace"]))?;
    run(cargo()
        .args([
            "test",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "switchboard-client",
        ])
        .env("CARGO_TARGET_DIR", "target/wasm")
        .env("CHROMEDRIVER", chromedriver()))?;
    client::build()?;
    run(cargo().args(["build", "-p", "switchboard"]))?;
    let browser = root().join("tests/browser");
    npm_install(&browser)?;
    run(Command::new("node")
        .args(["--test", "--test-concurrency=1"])
        .current_dir(&browser))
}

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}
