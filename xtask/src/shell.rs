//! Running the tools the tasks are made of, from the workspace root.

use std::path::{Path, PathBuf};
use std::process::Command;

pub type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}

/// `cargo`, the same one that runs this task.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    // `cargo run` describes the xtask package in these; build scripts that watch such
    // variables would otherwise see a change and rebuild what a plain `cargo build` built.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let leaked = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| key.starts_with(p))
            || key == "CARGO_PRIMARY_PACKAGE"
            || key == "CARGO_RUSTC_CURRENT_DIR";
        if leaked {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

/// Runs a command to the end, failing with its description when it fails.
pub fn run(cmd: &mut Command) -> Result {
    let what = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("xtask: running {what}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// Installs a folder's npm packages when they are missing.
pub fn npm_install(dir: &Path) -> Result {
    if dir.join("node_modules").is_dir() {
        return Ok(());
    }
    let verb = if dir.join("package-lock.json").is_file() {
        "ci"
    } else {
        "install"
    };
    run(Command::new("npm")
        .args([verb, "--no-audit", "--no-fund"])
        .current_dir(dir))
}

pub fn run_server(args: &[String]) -> Result {
    run(cargo().args(["run", "-p", "switchboard", "--"]).args(args))
}
