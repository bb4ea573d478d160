//! Running the tools the tasks are made of, from the workspace root.

use std::ffi::OsString;
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
    // The wasm test runner is found on PATH by cargo.
    cmd.current_dir(root()).env("PATH", path_with_installed());
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

/// A program, looked for first where `cargo install` puts programs, so one installed by a task
/// is found even when that folder (a fresh `CARGO_HOME`'s `bin`) is not on `PATH`.
pub fn tool(name: &str) -> Command {
    let mut cmd = Command::new(name);
    cmd.env("PATH", path_with_installed());
    cmd
}

/// Where `cargo install` puts programs.
fn installed_bin() -> PathBuf {
    let home = std::env::var_os("CARGO_INSTALL_ROOT")
        .or_else(|| std::env::var_os("CARGO_HOME"))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    home.join("bin")
}

/// `PATH` with [`installed_bin`] in front, unless it is on it already (a `PATH` that changes
/// between a task and a plain cargo run would rebuild what build scripts watching it built).
fn path_with_installed() -> OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let bin = installed_bin();
    if std::env::split_paths(&rest).any(|dir| dir == bin) {
        return rest;
    }
    let dirs = std::iter::once(bin).chain(std::env::split_paths(&rest));
    std::env::join_paths(dirs).unwrap_or(rest)
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
