//! Rebuilds the server when anything under `www/` changes: the pages are built into the binary,
//! and a file added there (the client bundle, once built) must be picked up.

fn main() {
    println!("cargo:rerun-if-changed=../www");
    println!("cargo:rerun-if-changed=build.rs");
}
