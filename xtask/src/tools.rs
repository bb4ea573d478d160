//! What the tasks need on the machine, installed when missing: the wasm target and the
//! wasm-bindgen CLI at the version Cargo.lock pins (for `run` and `test`), and for `test` the
//! browser, the servers the integration tests start, and the interpreters the token snippets
//! run in (Debian packages, installed with apt when run as root, named otherwise).

use std::process::Command;

use crate::shell::{Result, cargo, root, run};

/// The wasm target and the wasm-bindgen CLI.
pub fn for_client() -> Result {
    let targets = output(Command::new("rustup").args(["target", "list", "--installed"]));
    if !targets
        .lines()
        .any(|t| t.trim() == "wasm32-unknown-unknown")
    {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    let want = crate::client::locked_version("wasm-bindgen")?;
    let have = output(crate::shell::tool("wasm-bindgen").arg("--version"));
    if !have.trim().ends_with(&want) {
        // The CLI must match the library the client links, and it brings the wasm test runner.
        let install = |locked: &[&str]| {
            run(cargo().args(["install"]).args(locked).args([
                "wasm-bindgen-cli",
                "--version",
                &want,
            ]))
        };
        // Its own lock file first; a registry that no longer serves a version it pins (a
        // yanked crate) leaves only a fresh resolution within its requirements.
        if let Err(e) = install(&["--locked"]) {
            eprintln!("xtask: {e}; installing with a fresh resolution of its dependencies");
            install(&[])?;
        }
    }
    Ok(())
}

/// A Debian package that provides something the tests run.
struct Need {
    /// Shell test that succeeds when it is there.
    present: &'static str,
    packages: &'static [&'static str],
}

const TEST_NEEDS: &[Need] = &[
    Need {
        present: "command -v chromium && command -v chromedriver",
        packages: &["chromium", "chromium-driver"],
    },
    Need {
        present: "command -v redis-server",
        packages: &["redis-server"],
    },
    Need {
        present: "ls /usr/lib/postgresql/*/bin/postgres",
        packages: &["postgresql"],
    },
    Need {
        present: "command -v turnserver",
        packages: &["coturn"],
    },
    Need {
        present: "command -v nginx && command -v openssl",
        packages: &["nginx", "openssl"],
    },
    Need {
        present: "command -v systemd-analyze",
        packages: &["systemd"],
    },
    Need {
        present: "command -v php",
        packages: &["php-cli"],
    },
    Need {
        present: "/usr/bin/python3 -c 'import jwt'",
        packages: &["python3-jwt"],
    },
];

/// Everything `cargo xtask test` runs besides Rust and Node.
pub fn for_tests() -> Result {
    for_client()?;
    let missing: Vec<&str> = TEST_NEEDS
        .iter()
        .filter(|need| !sh_ok(need.present))
        .flat_map(|need| need.packages.iter().copied())
        .collect();
    if !missing.is_empty() {
        let install = format!("apt-get install -y {}", missing.join(" "));
        if output(Command::new("id").arg("-u")).trim() != "0" {
            return Err(format!(
                "the tests need Debian packages: run as root: {install}"
            ));
        }
        run(Command::new("apt-get").arg("update").arg("-qq"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    // PHP's firebase/php-jwt, for the PHP snippet (Composer's registry is not needed).
    run(Command::new("bash").arg(root().join("examples/token/php/install-php-jwt.sh")))
}

fn sh_ok(test: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("{test} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn output(cmd: &mut Command) -> String {
    cmd.output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
