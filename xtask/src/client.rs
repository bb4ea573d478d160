//! Building the browser client: cargo for wasm32, wasm-bindgen, wasm-opt, and a size report.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::shell::{self, Result, cargo, root, run};

/// Where the page loads the client from (`/client/pkg/` on the server).
const OUT_DIR: &str = "www/client/pkg";
/// Wasm builds get their own target dir so they never wait on the native build lock.
const TARGET_DIR: &str = "target/wasm";
const CRATE_FILE: &str = "switchboard_client";
/// The gzip size the bundle should stay under.
const BUDGET_GZIP: usize = 30 * 1024;

pub fn build() -> Result {
    let root = root();
    // The workspace's `wasm-release` profile: size over speed, LTO, no unwinding.
    run(cargo()
        .args(["build", "--profile", "wasm-release"])
        .args([
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "switchboard-client",
        ])
        .env("CARGO_TARGET_DIR", TARGET_DIR))?;
    let wasm = root.join(TARGET_DIR).join(format!(
        "wasm32-unknown-unknown/wasm-release/{CRATE_FILE}.wasm"
    ));
    bindgen(&wasm, &root.join(OUT_DIR))?;
    report_largest(&wasm)?;
    optimise(&root.join(OUT_DIR).join(format!("{CRATE_FILE}_bg.wasm")))?;
    precompress(&root.join(OUT_DIR))?;
    report_size(&root.join(OUT_DIR))
}

/// Writes `FILE.gz` beside each bundle file: the server sends it to browsers that accept gzip,
/// so nothing is compressed per request.
fn precompress(out: &Path) -> Result {
    for name in [format!("{CRATE_FILE}_bg.wasm"), format!("{CRATE_FILE}.js")] {
        let path = out.join(&name);
        let bytes = std::fs::read(&path).map_err(|e| format!("{name}: {e}"))?;
        std::fs::write(path.with_file_name(format!("{name}.gz")), gzip(&bytes))
            .map_err(|e| format!("{name}.gz: {e}"))?;
    }
    Ok(())
}

/// Builds unless the bundle is newer than every source it is made of.
pub fn build_if_stale() -> Result {
    let root = root();
    let bundle = root.join(OUT_DIR).join(format!("{CRATE_FILE}_bg.wasm"));
    let built = modified(&bundle);
    let newest = ["client-wasm", "proto", "Cargo.lock"]
        .iter()
        .filter_map(|p| newest_in(&root.join(p)))
        .max();
    match (built, newest) {
        (Some(b), Some(n)) if b >= n => Ok(()),
        _ => build(),
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

fn newest_in(path: &Path) -> Option<SystemTime> {
    if path.is_file() {
        return modified(path);
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|e| newest_in(&e.path()))
        .max()
}

/// The wasm-bindgen CLI must be the exact version the crate links, or the glue mismatches.
fn bindgen(wasm: &Path, out: &Path) -> Result {
    let want = locked_version("wasm-bindgen")?;
    let have = shell::tool("wasm-bindgen")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if !have.ends_with(&want) {
        return Err(format!(
            "wasm-bindgen {want} is needed (found {have:?}): \
             cargo install wasm-bindgen-cli --version {want}"
        ));
    }
    let _ = std::fs::remove_dir_all(out);
    run(shell::tool("wasm-bindgen")
        .args(["--target", "web", "--no-typescript", "--out-dir"])
        .arg(out)
        .arg(wasm))
}

/// The version of a package as pinned in Cargo.lock.
pub fn locked_version(name: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).map_err(|e| e.to_string())?;
    let needle = format!("name = \"{name}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .ok_or(format!("{name} is not in Cargo.lock"))?
        + needle.len();
    Ok(lock[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// wasm-opt from npm's binaryen: Debian's older build writes modules that fail to load.
fn optimise(wasm: &Path) -> Result {
    let tools = root().join("xtask");
    shell::npm_install(&tools)?;
    let wasm_opt: PathBuf = tools.join("node_modules/.bin/wasm-opt");
    run(Command::new(wasm_opt)
        .args([
            "-Oz",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
        ])
        .args([
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
        ])
        .arg(wasm)
        .arg("-o")
        .arg(wasm))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

fn report_size(out: &Path) -> Result {
    let mut raw = 0;
    let mut gz = 0;
    for name in [format!("{CRATE_FILE}_bg.wasm"), format!("{CRATE_FILE}.js")] {
        let bytes = std::fs::read(out.join(&name)).map_err(|e| format!("{name}: {e}"))?;
        let z = gzip(&bytes).len();
        println!(
            "  {name}: {:.1} KB raw, {:.1} KB gzip",
            kb(bytes.len()),
            kb(z)
        );
        raw += bytes.len();
        gz += z;
    }
    println!(
        "client bundle: {:.1} KB raw, {:.1} KB gzip",
        kb(raw),
        kb(gz)
    );
    if gz > BUDGET_GZIP {
        println!("warning: over the {} KB gzip budget", BUDGET_GZIP / 1024);
    }
    Ok(())
}

/// Where the bytes go: the largest functions, named, before wasm-opt shrinks (and renames)
/// them. A separate wasm-bindgen run keeps the names the bundle drops.
fn report_largest(wasm: &Path) -> Result {
    let dir = root().join(TARGET_DIR).join("sizes");
    run(shell::tool("wasm-bindgen")
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--keep-debug",
            "--out-dir",
        ])
        .arg(&dir)
        .arg(wasm))?;
    let named = dir.join(format!("{CRATE_FILE}_bg.wasm"));
    let bytes = std::fs::read(&named).map_err(|e| format!("{}: {e}", named.display()))?;
    println!("largest functions (before wasm-opt):");
    for (size, name) in crate::wasm_sizes::largest(&bytes, 12) {
        let name: String = name.chars().take(100).collect();
        println!("  {size:>6} {name}");
    }
    Ok(())
}

fn kb(n: usize) -> f64 {
    n as f64 / 1024.0
}
