//! Who may use the API: a request must carry one of the configured keys
//! (`Authorization: Bearer <key>`), compared in constant time, and each key has its own request
//! rate.

use std::num::NonZeroU32;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::{Api, ApiConfig, error::ApiError};

/// The keys, and each one's budget (keyed by the key's place in the list, so rotating keys
/// gives the new one a fresh budget).
pub struct Keys {
    keys: Vec<Vec<u8>>,
    limiter: Option<DefaultKeyedRateLimiter<u32>>,
}

impl Keys {
    pub fn new(config: &ApiConfig) -> Self {
        let limiter = NonZeroU32::new(config.requests_per_second).map(|rate| {
            let burst = NonZeroU32::new(config.burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            keys: config.keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
            limiter,
        }
    }

    /// The place of the key `offered` in the list, if it is one. Every key is compared in full
    /// whatever matched, so the time taken says nothing about which bytes were right.
    fn find(&self, offered: &[u8]) -> Option<u32> {
        let mut found = subtle::Choice::from(0);
        let mut place = 0u32;
        for (i, key) in self.keys.iter().enumerate() {
            let same = key.as_slice().ct_eq(offered);
            place.conditional_assign(&(i as u32), same);
            found |= same;
        }
        bool::from(found).then_some(place)
    }

    /// The key a request presents, checked, then its budget taken.
    fn admit(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let offered = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let key = self.find(offered).ok_or(ApiError::Unauthorized)?;
        if let Some(limiter) = &self.limiter
            && let Err(not_until) = limiter.check_key(&key)
        {
            return Err(ApiError::RateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            });
        }
        Ok(())
    }
}

/// Middleware in front of every endpoint but the description.
pub async fn authorize(State(api): State<Api>, request: Request, next: Next) -> Response {
    match api.keys().admit(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const ONE: &str = "k1-0123456789abcdef0123456789abcdef";
    const TWO: &str = "k2-0123456789abcdef0123456789abcdef";

    fn keys(list: &[&str], rate: u32, burst: u32) -> Keys {
        Keys::new(&ApiConfig {
            keys: list.iter().map(|k| k.to_string()).collect(),
            requests_per_second: rate,
            burst,
        })
    }

    fn bearer(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
        );
        headers
    }

    #[test]
    fn any_configured_key_is_admitted_and_nothing_else() {
        let keys = keys(&[ONE, TWO], 0, 0);
        assert_eq!(keys.find(ONE.as_bytes()), Some(0));
        assert_eq!(keys.find(TWO.as_bytes()), Some(1));
        for bad in ["", "k1", &ONE[..ONE.len() - 1], &format!("{ONE}x")] {
            assert_eq!(keys.find(bad.as_bytes()), None, "{bad:?}");
        }
        assert!(keys.admit(&bearer(TWO)).is_ok());
        assert!(matches!(
            keys.admit(&bearer("nope")),
            Err(ApiError::Unauthorized)
        ));
        let mut basic = HeaderMap::new();
        basic.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic Zm9v"),
        );
        assert!(matches!(keys.admit(&basic), Err(ApiError::Unauthorized)));
        assert!(matches!(
            keys.admit(&HeaderMap::new()),
            Err(ApiError::Unauthorized)
        ));
    }

    #[test]
    fn each_key_has_its_own_budget() {
        let keys = keys(&[ONE, TWO], 1, 2);
        assert!(keys.admit(&bearer(ONE)).is_ok());
        assert!(keys.admit(&bearer(ONE)).is_ok());
        let Err(ApiError::RateLimited { retry_after }) = keys.admit(&bearer(ONE)) else {
            panic!("the third request within the burst is refused");
        };
        assert!(retry_after <= std::time::Duration::from_secs(1));
        assert!(
            keys.admit(&bearer(TWO)).is_ok(),
            "the other key is not charged"
        );
    }
}
