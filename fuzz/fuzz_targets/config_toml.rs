//! An operator's TOML config file: figment layers it over the defaults into `Settings`, then
//! `Config::from_settings` validates. Refusals are fine; panics and invalid accepted configs are not.
#![no_main]

use figment::{
    Figment,
    providers::{Format, Serialized, Toml},
};
use libfuzzer_sys::fuzz_target;
use switchboard::config::{Config, Settings};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(settings) = Figment::from(Serialized::defaults(Settings::default()))
        .merge(Toml::string(text))
        .extract::<Settings>()
    else {
        return;
    };
    let Ok(config) = Config::from_settings(settings) else {
        return;
    };
    let limits = &config.limits;
    assert!((256..=65536).contains(&limits.max_message_bytes));
    assert!(limits.timing.idle_timeout > limits.timing.ping_interval);
    assert!(!config.ring_timeout.is_zero() && !limits.timing.ping_interval.is_zero());
    assert!(limits.send_queue >= limits.replay_events + limits.max_watched + 8);
    assert!(limits.sessions_per_user >= 1);
});
