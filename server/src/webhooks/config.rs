//! The webhook settings, checked: where events go, the secret they are signed with, and how
//! long and how often delivery is tried.

use std::time::Duration;

use url::Url;

use crate::config::{ConfigError, Settings, invalid, is_loopback};

/// The shortest secret accepted: HMAC-SHA256 is only as strong as its key, and a short one can
/// be found offline from one signed request.
const MIN_SECRET_BYTES: usize = 32;
/// Bounds on `webhook_retry_for`: a second (for tests and impatient sites) to 30 days.
const RETRY_FOR: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30 * 86_400));
/// Bounds on `webhook_timeout`: a backend that takes longer than a minute to acknowledge is
/// better told again later.
const TIMEOUT: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
/// Bounds on `webhook_backoff_max`.
const BACKOFF_MAX: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(3600));

/// The validated webhook settings.
#[derive(Clone)]
pub struct WebhookConfig {
    /// Each event goes to every one of these, independently.
    pub urls: Vec<Url>,
    pub secret: Vec<u8>,
    /// An event not acknowledged within this long of being recorded is given up.
    pub retry_for: Duration,
    /// Longest one request may take, connecting included.
    pub timeout: Duration,
    /// Longest pause between two attempts.
    pub backoff_max: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("urls", &self.urls)
            .field("secret", &"<redacted>")
            .field("retry_for", &self.retry_for)
            .field("timeout", &self.timeout)
            .field("backoff_max", &self.backoff_max)
            .finish()
    }
}

impl WebhookConfig {
    /// `None` without URLs: webhooks are off.
    pub fn from_settings(s: &Settings) -> Result<Option<Self>, ConfigError> {
        if s.webhook_urls.is_empty() {
            if s.webhook_secret.is_some() {
                return Err(invalid("webhook_urls", "required with webhook_secret"));
            }
            return Ok(None);
        }
        let mut urls: Vec<Url> = Vec::new();
        for text in &s.webhook_urls {
            let url =
                Url::parse(text).map_err(|e| invalid("webhook_urls", format!("{text}: {e}")))?;
            check_url(&url, s.webhook_allow_http)?;
            if urls.contains(&url) {
                return Err(invalid("webhook_urls", format!("{url} is listed twice")));
            }
            urls.push(url);
        }
        let secret = match &s.webhook_secret {
            None => return Err(invalid("webhook_secret", "required with webhook_urls")),
            Some(secret) if secret.len() < MIN_SECRET_BYTES => {
                return Err(invalid(
                    "webhook_secret",
                    format!("must be at least {MIN_SECRET_BYTES} bytes"),
                ));
            }
            Some(secret) => secret.clone().into_bytes(),
        };
        for (key, value, (least, most), words) in [
            (
                "webhook_retry_for",
                s.webhook_retry_for,
                RETRY_FOR,
                "1s to 30 days",
            ),
            ("webhook_timeout", s.webhook_timeout, TIMEOUT, "1s to 60s"),
            (
                "webhook_backoff_max",
                s.webhook_backoff_max,
                BACKOFF_MAX,
                "1s to 1h",
            ),
        ] {
            if !(least..=most).contains(&value) {
                return Err(invalid(key, format!("must be {words}")));
            }
        }
        Ok(Some(Self {
            urls,
            secret,
            retry_for: s.webhook_retry_for,
            timeout: s.webhook_timeout,
            backoff_max: s.webhook_backoff_max,
        }))
    }
}

/// `https://`, or `http://` on this machine (or anywhere when `allow_http`): events name users
/// and calls, and anyone on the path could read them.
fn check_url(url: &Url, allow_http: bool) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => {}
        "http" if allow_http || is_loopback(url) => {}
        "http" => {
            return Err(invalid(
                "webhook_urls",
                format!(
                    "{url} must be https unless it is on this machine (or webhook_allow_http = \
                     true): events would cross the network in clear"
                ),
            ));
        }
        _ => {
            return Err(invalid(
                "webhook_urls",
                format!("{url} is not an http(s) URL"),
            ));
        }
    }
    if url.host().is_none() {
        return Err(invalid("webhook_urls", format!("{url} has no host")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const SECRET: &str = "a webhook secret of at least 32 bytes";

    fn with(urls: &[&str], f: impl FnOnce(&mut Settings)) -> Result<Config, ConfigError> {
        let mut s = Settings {
            webhook_urls: urls.iter().map(|u| u.to_string()).collect(),
            webhook_secret: Some(SECRET.into()),
            ..Settings::default()
        };
        f(&mut s);
        Config::from_settings(s)
    }

    fn refused(result: Result<Config, ConfigError>, key: &str) {
        let error = result.unwrap_err().to_string();
        assert!(error.starts_with(&format!("{key}:")), "{error}");
    }

    #[test]
    fn off_without_urls_and_checked_with_them() {
        assert!(
            Config::from_settings(Settings::default())
                .unwrap()
                .webhooks
                .is_none()
        );
        let config = with(
            &["https://site.example/hooks", "http://127.0.0.1:3000/h"],
            |_| {},
        )
        .unwrap()
        .webhooks
        .unwrap();
        assert_eq!(config.urls.len(), 2);
        assert_eq!(config.retry_for, Duration::from_secs(86_400));
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert!(!format!("{config:?}").contains(SECRET));
    }

    #[test]
    fn refuses_a_short_or_missing_secret() {
        let short = with(&["https://site.example/h"], |s| {
            s.webhook_secret = Some("x".repeat(31));
        });
        assert_eq!(
            short.unwrap_err().to_string(),
            "webhook_secret: must be at least 32 bytes"
        );
        refused(
            with(&["https://site.example/h"], |s| s.webhook_secret = None),
            "webhook_secret",
        );
        refused(with(&[], |_| {}), "webhook_urls");
    }

    #[test]
    fn http_only_on_this_machine_unless_allowed() {
        for url in [
            "http://localhost:3000/h",
            "http://[::1]/h",
            "https://10.0.0.5/h",
        ] {
            assert!(with(&[url], |_| {}).is_ok(), "{url}");
        }
        for url in [
            "http://site.example/h",
            "http://10.0.0.5/h",
            "ftp://site.example/h",
            "not a url",
            "https://",
        ] {
            refused(with(&[url], |_| {}), "webhook_urls");
        }
        assert!(with(&["http://10.0.0.5/h"], |s| s.webhook_allow_http = true).is_ok());
        refused(
            with(&["https://a.example/h", "https://a.example/h"], |_| {}),
            "webhook_urls",
        );
    }

    #[test]
    fn bounds_the_times() {
        for (key, tweak) in [
            (
                "webhook_retry_for",
                (|s: &mut Settings| s.webhook_retry_for = Duration::ZERO) as fn(&mut Settings),
            ),
            ("webhook_retry_for", |s| {
                s.webhook_retry_for = Duration::from_secs(365 * 86_400)
            }),
            ("webhook_timeout", |s| {
                s.webhook_timeout = Duration::from_millis(10)
            }),
            ("webhook_timeout", |s| {
                s.webhook_timeout = Duration::from_secs(600)
            }),
            ("webhook_backoff_max", |s| {
                s.webhook_backoff_max = Duration::from_secs(86_400)
            }),
        ] {
            refused(with(&["https://site.example/h"], tweak), key);
        }
    }
}
