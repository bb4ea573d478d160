//! The Switchboard browser client: the 2010 page contract (`sv_*` commands, `my_on*`
//! callbacks) over one WebSocket per browser, shared by its tabs.
//!
//! The pure parts (event → callbacks, backoff, addresses, tab messages) build and test
//! natively; the rest drives browser APIs through web-sys.

pub mod address;
pub mod backoff;
pub mod callbacks;
pub mod json;
pub mod outstanding;
pub mod relay;
pub mod small_map;
pub mod succession;
pub mod token;
pub mod tracker;
pub mod wire;

mod channel;
mod client;
mod election;
mod exports;
mod leader;
mod lifecycle;
mod page;
mod socket;
mod tabs;

pub use exports::*;

#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
