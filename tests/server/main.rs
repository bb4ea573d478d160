//! The server's integration tests, one module per area, in one binary so they build once.
//! Each test starts a real server on 127.0.0.1:0 with its own SQLite file and talks to it over
//! real WebSockets.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod binary;
mod calls;
mod cluster;
mod deploy;
mod http;
mod limits;
mod openmeetings;
mod postgres;
mod presence;
mod resume;
mod rooms;
mod security;
mod snippets;
mod store;
mod webhooks;
