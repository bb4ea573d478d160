//! The Switchboard browser client (the page contract lands here).
