//! `cargo xtask test`: every suite, each one run even when an earlier one failed, so one run
//! shows every failure; the task fails if any suite did.

use std::process::Command;

use crate::client;
use crate::shell::{Result, cargo, npm_install, root, run};

pub fn run_all() -> Result {
    let mut failed = vec![];
    let mut step = |name: &str, result: Result| {
        if let Err(e) = result {
            eprintln!("xtask: {name} FAILED: {e}");
            failed.push(name.to_owned());
        }
    };
    // The bundle first: the server's tests serve the pages and the bundle built into it.
    let bundle = client::build();
    let bundled = bundle.is_ok();
    step("client build", bundle);
    // The token snippets' test (among the native tests) runs the Node snippet, and the browser
    // tests run the example site backend: both with their npm packages.
    let examples = root().join("examples");
    step(
        "example packages",
        npm_install(&examples.join("token/node"))
            .and_then(|()| npm_install(&examples.join("site-backend"))),
    );
    step(
        "native tests",
        run(cargo().args(["test", "--workspace", "--no-fail-fast"])),
    );
    step(
        "wasm tests",
        run(cargo()
            .args([
                "test",
                "--target",
                "wasm32-unknown-unknown",
                "-p",
                "switchboard-client",
            ])
            .env("CARGO_TARGET_DIR", "target/wasm")
            .env("CHROMEDRIVER", chromedriver())),
    );
    // The release binary, built as deploy/Dockerfile builds it, with the bundle inside: the
    // browser tests run it from an empty directory.
    let built = run(cargo().args(["build", "--release", "--locked", "-p", "switchboard"]));
    let ready = bundled && built.is_ok();
    step("release build", built);
    if ready {
        let browser = root().join("tests/browser");
        step(
            "browser tests",
            npm_install(&browser).and_then(|()| {
                run(Command::new("node")
                    .args(["--test", "--test-concurrency=1"])
                    .env(
                        "E2E_SERVER_BINARY",
                        root().join("target/release/switchboard"),
                    )
                    .current_dir(&browser))
            }),
        );
    }
    step(
        "example site backend tests",
        run(Command::new("node")
            .arg("--test")
            .current_dir(examples.join("site-backend"))),
    );
    if failed.is_empty() {
        println!("xtask: all suites passed");
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join(", ")))
    }
}

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}
