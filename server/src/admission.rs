//! Who may open a connection and log in: caps per client address and in all, a login rate per
//! address, and which address a request comes from when it passes through trusted proxies.
//! The limits can be replaced while the server runs: connections already admitted keep their
//! places, and the new caps judge the next ones.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
};

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::http::{HeaderMap, StatusCode};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Addresses tracked by the login limiter before stale ones are swept; keeps its memory bounded
/// without a timer.
const LOGIN_KEYS_BEFORE_SWEEP: usize = 10_000;

/// What [`Admission`] needs from the configuration. Zero means no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdmissionLimits {
    pub connections_per_ip: usize,
    pub max_connections: usize,
    pub logins_per_ip_per_minute: u32,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

/// Why a connection was refused before its upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The client's address already holds its share of connections.
    AddressFull,
    /// The server holds as many connections as it is configured for.
    ServerFull,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Self::AddressFull => StatusCode::TOO_MANY_REQUESTS,
            Self::ServerFull => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Self::AddressFull => "too many connections from your address",
            Self::ServerFull => "the server is full; try again later",
        }
    }
}

/// The shared gate: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Admission {
    shared: Arc<Shared>,
}

struct Shared {
    limits: ArcSwap<AdmissionLimits>,
    open: Mutex<Open>,
    logins: ArcSwapOption<DefaultKeyedRateLimiter<IpAddr>>,
}

#[derive(Default)]
struct Open {
    total: usize,
    /// Connections per client address; an address with none has no entry.
    by_ip: HashMap<IpAddr, usize>,
}

/// A connection's place, given back when dropped.
#[must_use]
pub struct Ticket {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.shared.lock();
        open.total -= 1;
        if let Some(n) = open.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Self {
        Self {
            shared: Arc::new(Shared {
                logins: ArcSwapOption::new(login_limiter(limits.logins_per_ip_per_minute)),
                limits: ArcSwap::from_pointee(limits),
                open: Mutex::default(),
            }),
        }
    }

    /// Puts new limits in force. A changed login rate starts every address afresh.
    pub fn reload(&self, limits: AdmissionLimits) {
        let rate = limits.logins_per_ip_per_minute;
        if self.shared.limits.load().logins_per_ip_per_minute != rate {
            self.shared.logins.store(login_limiter(rate));
        }
        self.shared.limits.store(Arc::new(limits));
    }

    /// Takes a connection's place, or says why there is none.
    pub fn admit(&self, ip: IpAddr) -> Result<Ticket, Refusal> {
        let ip = client_key(ip);
        let limits = self.shared.limits.load();
        let mut open = self.shared.lock();
        if limits.max_connections != 0 && open.total >= limits.max_connections {
            return Err(Refusal::ServerFull);
        }
        let mine = open.by_ip.entry(ip).or_default();
        if limits.connections_per_ip != 0 && *mine >= limits.connections_per_ip {
            return Err(Refusal::AddressFull);
        }
        *mine += 1;
        open.total += 1;
        drop(open);
        Ok(Ticket {
            shared: self.shared.clone(),
            ip,
        })
    }

    /// Whether `ip` may log in once more now; counts the attempt.
    pub fn login_allowed(&self, ip: IpAddr) -> bool {
        let logins = self.shared.logins.load();
        let Some(logins) = logins.as_deref() else {
            return true;
        };
        if logins.len() > LOGIN_KEYS_BEFORE_SWEEP {
            logins.retain_recent();
        }
        logins.check_key(&client_key(ip)).is_ok()
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
    /// address in `X-Forwarded-For` that is not one (each proxy appends the address it saw, so
    /// entries left of an untrusted one may be forged).
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let limits = self.shared.limits.load();
        let trusted = |ip: &IpAddr| limits.trusted_proxies.contains(ip);
        let mut client = peer.ip().to_canonical();
        if !trusted(&client) {
            return client;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for entry in forwarded.into_iter().rev() {
            let Ok(ip) = entry.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip.to_canonical();
            if !trusted(&client) {
                break;
            }
        }
        client
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn login_limiter(per_minute: u32) -> Option<Arc<DefaultKeyedRateLimiter<IpAddr>>> {
    NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n))))
}

/// The key an address is counted under: an IPv6 host usually has a whole /64 to pick
/// addresses from, so it counts as one.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !0xffff_ffff_ffff_ffff)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(per_ip: usize, total: usize) -> Admission {
        Admission::new(AdmissionLimits {
            connections_per_ip: per_ip,
            max_connections: total,
            logins_per_ip_per_minute: 2,
            trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn caps_connections_per_address_and_in_all() {
        let gate = admission(2, 3);
        let a1 = gate.admit(ip("192.0.2.1")).unwrap();
        let _a2 = gate.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            gate.admit(ip("192.0.2.1")).err(),
            Some(Refusal::AddressFull)
        );
        let _b = gate.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(gate.admit(ip("192.0.2.3")).err(), Some(Refusal::ServerFull));
        drop(a1);
        let _a3 = gate.admit(ip("192.0.2.1")).unwrap();
        // One IPv6 /64 is one client.
        let gate = admission(1, 0);
        let _v6 = gate.admit(ip("2001:db8::1")).unwrap();
        assert!(gate.admit(ip("2001:db8::2")).is_err());
        assert!(gate.admit(ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn new_limits_judge_the_next_connections_and_keep_the_admitted_ones() {
        let gate = admission(1, 0);
        let held = gate.admit(ip("192.0.2.1")).unwrap();
        assert!(gate.admit(ip("192.0.2.1")).is_err());
        gate.reload(AdmissionLimits {
            connections_per_ip: 2,
            logins_per_ip_per_minute: 0,
            ..AdmissionLimits::default()
        });
        let second = gate.admit(ip("192.0.2.1")).unwrap();
        assert!((0..5).all(|_| gate.login_allowed(ip("192.0.2.1"))));
        gate.reload(AdmissionLimits {
            connections_per_ip: 1,
            ..AdmissionLimits::default()
        });
        assert_eq!(
            gate.admit(ip("192.0.2.1")).err(),
            Some(Refusal::AddressFull)
        );
        drop((held, second));
        assert!(gate.admit(ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn logins_are_counted_per_address() {
        let gate = admission(0, 0);
        assert!(gate.login_allowed(ip("192.0.2.1")));
        assert!(gate.login_allowed(ip("192.0.2.1")));
        assert!(!gate.login_allowed(ip("192.0.2.1")));
        assert!(gate.login_allowed(ip("192.0.2.2")));
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let gate = admission(0, 0);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        let from = |peer: &str| gate.client_ip(format!("{peer}:5000").parse().unwrap(), &headers);
        assert_eq!(from("192.0.2.1"), ip("192.0.2.1"));
        // The proxy's nearest untrusted entry, not the client-supplied one on the left.
        assert_eq!(from("10.0.0.1"), ip("198.51.100.7"));
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(
            gate.client_ip("10.0.0.1:5000".parse().unwrap(), &headers),
            ip("10.0.0.1")
        );
    }
}
