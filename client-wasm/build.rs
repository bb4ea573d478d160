//! Declares the `web_sys_unstable_apis` cfg that `.cargo/config.toml` sets for wasm builds, so
//! native builds (tests of the pure parts) know it and leave Web Locks out.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(web_sys_unstable_apis)");
}
