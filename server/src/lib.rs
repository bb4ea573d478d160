//! The Switchboard server: presence and call signalling over WebSockets.
pub mod rooms;
