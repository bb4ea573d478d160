//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod client;
pub mod cut_proxy;
pub mod fake_openmeetings;
pub mod postgres;
pub mod redis;
pub mod server;
pub mod webhook_receiver;

pub use client::Client;
pub use server::{PRESENCE_GRACE, TestServer};
