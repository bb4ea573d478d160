//! Configuration: defaults, then an optional TOML file, then `SWITCHBOARD_*` environment
//! variables, then command-line flags; validated once into a typed [`Config`].

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use crate::{
    admission::AdmissionLimits,
    api::ApiConfig,
    assets::Www,
    logging::LogFormat,
    rooms::{IceConfig, IcePolicy, JitsiTokens, OpenMeetingsConfig, TurnRelay, UrlTemplate},
    socket::Timing,
};

/// Command-line flags. Each also has a config-file key and a `SWITCHBOARD_*` variable of the
/// same name (`--ring-timeout` ↔ `ring_timeout` ↔ `SWITCHBOARD_RING_TIMEOUT`).
#[derive(Debug, Default, Parser, Serialize)]
#[command(
    name = "switchboard",
    version,
    about = "Presence and calls for web sites"
)]
pub struct Cli {
    /// A TOML file with settings (keys as the flags, with `_` for `-`).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// SQLite database file [default: data/switchboard.db].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<PathBuf>,
    /// Serve the pages and the client bundle from this directory instead of the copy built
    /// into the binary (for development).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub www: Option<PathBuf>,
    /// Base URL browsers reach this server at, for join links [default: http://LISTEN].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Comma-separated site origins allowed to open WebSockets, e.g. https://forum.example.org.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<String>,
    /// HS256 secret the site signs identity tokens with; unset means demo mode.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<String>,
    /// A new login logs the user's other sessions out, as in 2010.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single_session: Option<bool>,
    /// How long a call rings before it is missed, e.g. 45s.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_timeout: Option<String>,
    /// How long a user with no connection stays online (covers page reloads), e.g. 5s.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_grace: Option<String>,
    /// How long an answered call may last before it is ended, e.g. 4h.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_call_duration: Option<String>,
    /// Room URL template (`{room}`, `{name}`), e.g. https://meet.example.org/{room}.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_url_template: Option<String>,
    /// Comma-separated STUN/TURN URLs for the built-in room (stun_urls and turn_urls, sorted
    /// by scheme).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ice_servers: Option<String>,
    /// Comma-separated STUN URLs for the built-in room, e.g. stun:stun.example.org:3478.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stun_urls: Option<String>,
    /// Comma-separated TURN URLs, e.g. turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349?transport=tcp.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_urls: Option<String>,
    /// The TURN server's shared secret (coturn's static-auth-secret).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_secret: Option<String>,
    /// How long a room page's TURN credential is valid [default: max_call_duration].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_credential_ttl: Option<String>,
    /// all, or relay to send all media through TURN and hide participants' addresses.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ice_transport_policy: Option<String>,
    /// Jitsi's app secret: each room_url_template redirect then carries a signed token.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_jwt_secret: Option<String>,
    /// Jitsi's app id, the tokens' `iss`.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_jwt_app_id: Option<String>,
    /// The tokens' `sub` [default: the host of room_url_template].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_jwt_sub: Option<String>,
    /// OpenMeetings base URL, e.g. https://om.example.org/openmeetings.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openmeetings_url: Option<String>,
    /// OpenMeetings API user (needs the SOAP right).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openmeetings_user: Option<String>,
    /// OpenMeetings API password.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openmeetings_password: Option<String>,
    /// Comma-separated keys the site's backend presents to the HTTP API (each at least 32
    /// bytes); unset: no API.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<String>,
    /// HTTP API requests per second per key (0: no limit) [default: 50].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_requests_per_second: Option<u32>,
    /// HTTP API requests one key may make at once [default: 100].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_burst: Option<u32>,
    /// The `aud` claim identity tokens must carry, e.g. switchboard.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_audience: Option<String>,
    /// The `iss` claim identity tokens must carry, e.g. https://forum.example.org.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_issuer: Option<String>,
    /// Serve /metrics on this address instead of the main one, e.g. 127.0.0.1:9090.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    /// Comma-separated proxy addresses whose X-Forwarded-For names the client.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_proxies: Option<String>,
    /// Run demo mode (no jwt_secret: anyone can be anyone) on a non-loopback address.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_demo_on_network: Option<bool>,
    /// PostgreSQL to record calls in instead of the SQLite file, e.g.
    /// postgres://switchboard@db.example.org/switchboard.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Redis the nodes of a cluster share, e.g. redis://10.0.0.5:6379/ (unset: one node).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// How long a node may go without a heartbeat in Redis before the others treat it as
    /// dead, e.g. 10s.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_timeout: Option<String>,
    /// text, or json for one JSON object per log line [default: text].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    /// What to log, e.g. info, or info,switchboard::calls=warn (RUST_LOG, when set, wins)
    /// [default: info].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// Comma-separated URLs the site's backend takes signed events at (unset: no webhooks).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_urls: Option<String>,
    /// The secret webhooks are signed with (at least 32 bytes).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// How long an event is retried before it is given up, e.g. 24h.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_retry_for: Option<String>,
    /// Longest one webhook request may take, e.g. 10s.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_timeout: Option<String>,
    /// Longest pause between two attempts at an event, e.g. 10m.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_backoff_max: Option<String>,
    /// Allow http:// webhook URLs on other machines (events and signatures cross in clear).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_allow_http: Option<bool>,
}

/// Every setting, as layered from the sources; see [`Config`] for the validated form.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: String,
    pub db: PathBuf,
    /// Database writes waiting to commit beyond which new calls are refused.
    pub store_backlog_limit: u64,
    /// How the SQLite writer thread competes for the CPU.
    pub store_writer_priority: crate::store::WriterPriority,
    /// Unset: the pages built into the binary.
    pub www: Option<PathBuf>,
    pub public_url: Option<String>,
    #[serde(deserialize_with = "comma_list")]
    pub allowed_origins: Vec<String>,
    pub jwt_secret: Option<String>,
    pub single_session: bool,
    #[serde(with = "humantime_serde")]
    pub ring_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub presence_grace: Duration,
    #[serde(with = "humantime_serde")]
    pub max_call_duration: Duration,
    pub room_url_template: Option<String>,
    /// The older name for stun_urls and turn_urls together, still accepted.
    #[serde(deserialize_with = "comma_list")]
    pub ice_servers: Vec<String>,
    #[serde(deserialize_with = "comma_list")]
    pub stun_urls: Vec<String>,
    #[serde(deserialize_with = "comma_list")]
    pub turn_urls: Vec<String>,
    /// Signs the built-in room's short-lived TURN credentials; never sent to a browser.
    pub turn_secret: Option<String>,
    /// Unset: max_call_duration, so a page's credential lasts as long as its call may.
    #[serde(with = "humantime_serde")]
    pub turn_credential_ttl: Option<Duration>,
    pub ice_transport_policy: Option<String>,
    /// Signs the per-participant tokens a Jitsi deployment with token authentication needs.
    pub room_jwt_secret: Option<String>,
    pub room_jwt_app_id: Option<String>,
    /// The Jitsi domain or tenant the tokens are for, when not the template's host.
    pub room_jwt_sub: Option<String>,
    pub openmeetings_url: Option<String>,
    pub openmeetings_user: Option<String>,
    pub openmeetings_password: Option<String>,
    /// CONFERENCE, PRESENTATION or INTERVIEW.
    pub openmeetings_room_type: Option<String>,
    pub openmeetings_capacity: Option<u32>,
    /// OpenMeetings' UI language id (1 en, 2 de, 4 fr, 5 it, 8 es, 9 ru).
    pub openmeetings_language: Option<u32>,
    /// Whether both participants enter as moderators.
    pub openmeetings_moderators: Option<bool>,
    /// close, delete or keep the room when the call is over.
    pub openmeetings_after_call: Option<String>,
    #[serde(with = "humantime_serde")]
    pub openmeetings_timeout: Option<Duration>,
    /// Keys the site's backend presents to the HTTP API; none: the API is off.
    #[serde(deserialize_with = "comma_list")]
    pub api_keys: Vec<String>,
    /// HTTP API requests per second per key (0: no limit).
    pub api_requests_per_second: u32,
    /// HTTP API requests one key may make at once before the rate applies.
    pub api_burst: u32,
    /// Tokens must carry this `aud`, so one minted for another service sharing the secret is
    /// refused here.
    pub jwt_audience: Option<String>,
    /// Tokens must carry this `iss`.
    pub jwt_issuer: Option<String>,
    /// Where `/metrics` is served instead of the main listener, so it can stay private.
    pub metrics_listen: Option<String>,
    /// Largest WebSocket message a client may send, in bytes.
    pub max_message_bytes: usize,
    /// Size of each connection's read buffer, in bytes (tungstenite's default is 128 KiB).
    pub socket_buffer_bytes: usize,
    /// Events queued for one connection before it is cut off as too slow.
    pub send_queue: usize,
    /// Events kept per session for a reconnecting client to catch up on.
    pub replay_events: usize,
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// A connection that sends nothing (not even a pong) for this long is dead.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    pub calls_per_minute: u32,
    /// Logins per minute per session (0: no limit), so no client mints users without end.
    pub logins_per_minute: u32,
    pub sessions_per_user: usize,
    pub max_watched: usize,
    /// Longest one write to a socket may take: a peer that does not take a frame within it has
    /// stopped reading, and is dropped with everything it held.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// Messages per second one connection may send (0: no limit), so no client floods the hub.
    pub messages_per_second: u32,
    /// Messages one connection may send at once before `messages_per_second` applies.
    pub message_burst: u32,
    /// `watch` commands per minute per connection (0: no limit): each costs the hub a lookup
    /// per id, so it has a smaller budget than other messages.
    pub watches_per_minute: u32,
    /// Open connections per client address (0: no limit).
    pub connections_per_ip: usize,
    /// Logins per minute per client address across its connections (0: no limit), since every
    /// new connection is a new session with a fresh `logins_per_minute`.
    pub logins_per_ip_per_minute: u32,
    /// Open connections in all (0: no limit).
    pub max_connections: usize,
    /// Sessions in all, including those in their grace period (0: no limit).
    pub max_sessions: usize,
    /// Users kept in memory (0: no limit); beyond it, offline users not in a call are
    /// forgotten from memory (the database keeps them) until they log in again.
    pub max_known_users: usize,
    /// Addresses of proxies whose `X-Forwarded-For` is believed.
    #[serde(deserialize_with = "comma_list")]
    pub trusted_proxies: Vec<String>,
    /// Demo mode (anyone can be anyone) on an address other machines reach must be meant.
    pub allow_demo_on_network: bool,
    /// Set: calls are recorded in this PostgreSQL database, not in `db`.
    pub database_url: Option<String>,
    /// Set: this node is one of several sharing this Redis.
    pub redis_url: Option<String>,
    /// A node without a heartbeat for this long is dead to the others.
    #[serde(with = "humantime_serde")]
    pub node_timeout: Duration,
    pub log_format: LogFormat,
    /// `tracing` filter directives.
    pub log_level: String,
    /// Where the site's backend hears of calls and presence; empty: no webhooks.
    #[serde(deserialize_with = "comma_list")]
    pub webhook_urls: Vec<String>,
    /// Signs every webhook, so the backend can tell them from forgeries.
    pub webhook_secret: Option<String>,
    /// An event not acknowledged within this long of being recorded is given up.
    #[serde(with = "humantime_serde")]
    pub webhook_retry_for: Duration,
    /// Longest one webhook request may take.
    #[serde(with = "humantime_serde")]
    pub webhook_timeout: Duration,
    /// Longest pause between two attempts at an event.
    #[serde(with = "humantime_serde")]
    pub webhook_backoff_max: Duration,
    /// Webhooks in clear to another machine must be meant.
    pub webhook_allow_http: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            db: PathBuf::from("data/switchboard.db"),
            store_backlog_limit: crate::store::BACKLOG_LIMIT,
            store_writer_priority: crate::store::WriterPriority::Idle,
            www: None,
            public_url: None,
            allowed_origins: Vec::new(),
            jwt_secret: None,
            single_session: false,
            ring_timeout: Duration::from_secs(45),
            presence_grace: Duration::from_secs(5),
            max_call_duration: Duration::from_secs(4 * 3600),
            room_url_template: None,
            ice_servers: Vec::new(),
            stun_urls: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: None,
            turn_credential_ttl: None,
            ice_transport_policy: None,
            room_jwt_secret: None,
            room_jwt_app_id: None,
            room_jwt_sub: None,
            openmeetings_url: None,
            openmeetings_user: None,
            openmeetings_password: None,
            openmeetings_room_type: None,
            openmeetings_capacity: None,
            openmeetings_language: None,
            openmeetings_moderators: None,
            openmeetings_after_call: None,
            openmeetings_timeout: None,
            api_keys: Vec::new(),
            api_requests_per_second: 50,
            api_burst: 100,
            jwt_audience: None,
            jwt_issuer: None,
            metrics_listen: None,
            max_message_bytes: 4096,
            socket_buffer_bytes: 256,
            send_queue: 1024,
            replay_events: 64,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(50),
            calls_per_minute: 30,
            logins_per_minute: 30,
            sessions_per_user: 16,
            max_watched: 256,
            write_timeout: Duration::from_secs(10),
            messages_per_second: 20,
            message_burst: 60,
            watches_per_minute: 30,
            connections_per_ip: 64,
            logins_per_ip_per_minute: 120,
            max_connections: 20_000,
            max_sessions: 25_000,
            max_known_users: 200_000,
            trusted_proxies: Vec::new(),
            allow_demo_on_network: false,
            database_url: None,
            redis_url: None,
            node_timeout: Duration::from_secs(10),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            webhook_urls: Vec::new(),
            webhook_secret: None,
            webhook_retry_for: Duration::from_secs(24 * 3600),
            webhook_timeout: Duration::from_secs(10),
            webhook_backoff_max: Duration::from_secs(10 * 60),
            webhook_allow_http: false,
        }
    }
}

/// A PostgreSQL URL, checked: `postgres://` or `postgresql://`, without TLS (not offered yet).
fn database_url(s: &Settings) -> Result<Option<String>, ConfigError> {
    let Some(url) = s.database_url.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let parsed = Url::parse(url).map_err(|e| invalid("database_url", e))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(invalid("database_url", "must start with postgres://"));
    }
    if parsed
        .query_pairs()
        .any(|(k, v)| k == "sslmode" && matches!(&*v, "require" | "verify-ca" | "verify-full"))
    {
        return Err(invalid(
            "database_url",
            "TLS to PostgreSQL is not supported yet: reach it over a private network or a local socket",
        ));
    }
    Ok(Some(url.to_string()))
}

/// The cluster settings, checked: a Redis URL (`redis://`, `rediss://` or `redis+unix://`) and
/// a node timeout from 2 s to 5 min.
fn cluster_config(s: &Settings) -> Result<Option<ClusterConfig>, ConfigError> {
    let Some(url) = s.redis_url.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let redis_url = Url::parse(url).map_err(|e| invalid("redis_url", e))?;
    if !matches!(
        redis_url.scheme(),
        "redis" | "rediss" | "redis+unix" | "unix"
    ) {
        return Err(invalid(
            "redis_url",
            "must start with redis://, rediss:// or redis+unix://",
        ));
    }
    if !(Duration::from_secs(2)..=Duration::from_secs(300)).contains(&s.node_timeout) {
        return Err(invalid("node_timeout", "must be 2s to 5min"));
    }
    Ok(Some(ClusterConfig {
        redis_url,
        node_timeout: s.node_timeout,
        record_presence: !s.webhook_urls.is_empty(),
    }))
}

/// Accepts either a list or one comma-separated string (the form environment variables take).
fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        One(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(list) => list,
        Either::One(one) => one
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// The longest timer the server arms.
const MAX_TIMER: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading settings")]
    Source(#[from] Box<figment::Error>),
    #[error("{key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

pub(crate) fn invalid(key: &'static str, problem: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.to_string(),
    }
}

/// Who may claim to be whom.
#[derive(Clone)]
pub enum IdentityMode {
    /// Anyone can be anyone: the 2010 trust model.
    Demo,
    /// Identities must come inside a token signed with this secret.
    Signed {
        secret: Vec<u8>,
        /// The `aud` tokens must carry, when the site sets one.
        audience: Option<String>,
        /// The `iss` tokens must carry, when the site sets one.
        issuer: Option<String>,
    },
}

impl std::fmt::Debug for IdentityMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Demo => f.write_str("Demo"),
            Self::Signed {
                audience, issuer, ..
            } => f
                .debug_struct("Signed")
                .field("secret", &"<redacted>")
                .field("audience", audience)
                .field("issuer", issuer)
                .finish(),
        }
    }
}

/// Where `/join` links lead.
#[derive(Clone, Debug)]
pub enum RoomsConfig {
    /// Switchboard's own WebRTC room.
    Builtin(IceConfig),
    /// A URL made from a template.
    Template(UrlTemplate),
    /// An OpenMeetings server.
    OpenMeetings(OpenMeetingsConfig),
}

/// The smallest read buffer a connection gets: a frame larger than the buffer is read in
/// several reads, so below a typical command's size every frame would take two.
const MIN_SOCKET_BUFFER: usize = 256;

/// Bounds on what one client can make the server do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub socket_buffer_bytes: usize,
    pub send_queue: usize,
    pub replay_events: usize,
    pub timing: Timing,
    pub messages_per_second: u32,
    pub message_burst: u32,
    pub watches_per_minute: u32,
    pub max_sessions: usize,
    pub max_known_users: usize,
    pub calls_per_minute: u32,
    pub logins_per_minute: u32,
    pub sessions_per_user: usize,
    pub max_watched: usize,
}

/// The validated configuration the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: String,
    pub db: PathBuf,
    /// Database writes waiting to commit beyond which new calls are refused (`overloaded`).
    pub store_backlog_limit: u64,
    /// The SQLite writer thread's scheduling: behind the signalling, or level with it.
    pub store_writer_priority: crate::store::WriterPriority,
    pub www: Www,
    pub public_url: Option<Url>,
    /// Origins (`scheme://host[:port]`) allowed to open WebSockets besides the server's own.
    pub allowed_origins: Vec<String>,
    pub identity: IdentityMode,
    pub single_session: bool,
    pub ring_timeout: Duration,
    pub presence_grace: Duration,
    pub max_call_duration: Duration,
    pub rooms: RoomsConfig,
    pub limits: Limits,
    /// Where `/metrics` is served when it is kept off the main listener.
    pub metrics_listen: Option<SocketAddr>,
    pub admission: AdmissionLimits,
    /// Set: this node is one of a cluster.
    pub cluster: Option<ClusterConfig>,
    /// Set: records go to PostgreSQL (a `postgres://` URL) instead of `db`.
    pub database_url: Option<String>,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Set (keys configured): the HTTP API for the site's backend is served.
    pub api: Option<ApiConfig>,
    /// Set: the site's backend hears of calls and presence through signed webhooks.
    pub webhooks: Option<crate::webhooks::WebhookConfig>,
}

/// How this node finds the others.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub redis_url: Url,
    pub node_timeout: Duration,
    /// Webhooks are on: Redis records each presence change with the decision, once.
    pub record_presence: bool,
}

impl Config {
    /// Layers the sources in order of precedence and validates the result.
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = &cli.config {
            if !path.exists() {
                return Err(invalid(
                    "config",
                    format!("{} does not exist", path.display()),
                ));
            }
            figment = figment.merge(Toml::file(path));
        }
        let settings: Settings = figment
            .merge(Env::prefixed("SWITCHBOARD_").ignore(&["config"]))
            .merge(Serialized::defaults(cli))
            .extract()
            .map_err(Box::new)?;
        Self::from_settings(settings)
    }

    pub fn from_settings(s: Settings) -> Result<Self, ConfigError> {
        let listen = s
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| invalid("listen", e))?;
        let public_url = s
            .public_url
            .as_deref()
            .map(Url::parse)
            .transpose()
            .map_err(|e| invalid("public_url", e))?;
        // Its origin is the one the server's own pages come from.
        if public_url
            .as_ref()
            .is_some_and(|url| crate::origin::normalize(url).is_none())
        {
            return Err(invalid("public_url", "must be an http or https URL"));
        }
        let allowed_origins = s
            .allowed_origins
            .iter()
            .map(|o| normalize_origin(o).ok_or_else(|| invalid("allowed_origins", o)))
            .collect::<Result<_, _>>()?;
        let identity = identity(&s)?;
        let metrics_listen = s
            .metrics_listen
            .as_deref()
            .map(str::parse::<SocketAddr>)
            .transpose()
            .map_err(|e| invalid("metrics_listen", e))?;
        if matches!(identity, IdentityMode::Demo)
            && !listen.ip().is_loopback()
            && !s.allow_demo_on_network
        {
            return Err(invalid(
                "listen",
                "demo mode (no jwt_secret) lets anyone be anyone: on an address other machines \
                 reach, set jwt_secret, or allow_demo_on_network = true if that is meant",
            ));
        }
        let rooms = match (s.openmeetings_url.clone(), s.room_url_template.clone()) {
            (Some(url), _) => RoomsConfig::OpenMeetings(openmeetings(url, &s)?),
            (None, Some(template)) => {
                if !template.contains("{room}") {
                    return Err(invalid("room_url_template", "must contain {room}"));
                }
                // The filled template becomes a `Location` header.
                if !template.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(invalid(
                        "room_url_template",
                        "must be ASCII without spaces or control characters (percent-encode the rest)",
                    ));
                }
                let tokens = room_tokens(&s, &template)?;
                let template = UrlTemplate::new(template);
                RoomsConfig::Template(match tokens {
                    Some(tokens) => template.with_tokens(tokens),
                    None => template,
                })
            }
            (None, None) => RoomsConfig::Builtin(ice(&s)?),
        };
        if s.room_jwt_secret.is_some() && !matches!(rooms, RoomsConfig::Template(_)) {
            return Err(invalid(
                "room_jwt_secret",
                "needs room_url_template (and no openmeetings_url)",
            ));
        }
        for (key, value) in [
            ("ring_timeout", s.ring_timeout),
            ("max_call_duration", s.max_call_duration),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "must be more than zero"));
            }
        }
        for (key, value) in [
            ("ring_timeout", s.ring_timeout),
            ("presence_grace", s.presence_grace),
            ("max_call_duration", s.max_call_duration),
        ] {
            if value > MAX_TIMER {
                return Err(invalid(key, "must be at most 30 days"));
            }
        }
        // One command may answer with a replay window or a whole watch list at once; that
        // burst must fit the queue, or a client that reads normally would be cut off.
        // Checked arithmetic: the operands come straight from the operator's file.
        let burst = s
            .replay_events
            .checked_add(s.max_watched)
            .and_then(|n| n.checked_add(8));
        if burst.is_none_or(|burst| s.send_queue < burst) {
            return Err(invalid(
                "send_queue",
                "must be at least replay_events + max_watched + 8",
            ));
        }
        let timing = socket_timing(&s)?;
        let trusted_proxies = s
            .trusted_proxies
            .iter()
            .map(|p| p.parse().map_err(|_| invalid("trusted_proxies", p)))
            .collect::<Result<_, _>>()?;
        if !(256..=65536).contains(&s.max_message_bytes) {
            return Err(invalid("max_message_bytes", "must be 256 to 65536"));
        }
        if s.send_queue == 0 || s.sessions_per_user == 0 {
            return Err(invalid(
                "send_queue/sessions_per_user",
                "must be at least 1",
            ));
        }
        let cluster = cluster_config(&s)?;
        let database_url = database_url(&s)?;
        crate::logging::parse_level(&s.log_level).map_err(|e| invalid("log_level", e))?;
        let api = api(&s)?;
        let webhooks = crate::webhooks::WebhookConfig::from_settings(&s)?;
        Ok(Self {
            listen: s.listen,
            db: s.db,
            store_backlog_limit: s.store_backlog_limit,
            store_writer_priority: s.store_writer_priority,
            www: s.www.map_or(Www::BuiltIn, Www::Dir),
            public_url,
            allowed_origins,
            identity,
            single_session: s.single_session,
            ring_timeout: s.ring_timeout,
            presence_grace: s.presence_grace,
            max_call_duration: s.max_call_duration,
            rooms,
            limits: Limits {
                max_message_bytes: s.max_message_bytes,
                socket_buffer_bytes: s.socket_buffer_bytes.max(MIN_SOCKET_BUFFER),
                send_queue: s.send_queue,
                replay_events: s.replay_events,
                timing,
                messages_per_second: s.messages_per_second,
                message_burst: s.message_burst,
                watches_per_minute: s.watches_per_minute,
                max_sessions: s.max_sessions,
                max_known_users: s.max_known_users,
                calls_per_minute: s.calls_per_minute,
                logins_per_minute: s.logins_per_minute,
                sessions_per_user: s.sessions_per_user,
                max_watched: s.max_watched,
            },
            metrics_listen,
            cluster,
            database_url,
            log_format: s.log_format,
            log_level: s.log_level,
            api,
            webhooks,
            admission: AdmissionLimits {
                connections_per_ip: s.connections_per_ip,
                max_connections: s.max_connections,
                logins_per_ip_per_minute: s.logins_per_ip_per_minute,
                trusted_proxies,
            },
        })
    }
}

/// The HTTP API's settings, checked: every key long enough to be unguessable and fit for an
/// `Authorization` header.
fn api(s: &Settings) -> Result<Option<ApiConfig>, ConfigError> {
    if s.api_keys.is_empty() {
        return Ok(None);
    }
    for key in &s.api_keys {
        if key.len() < MIN_SECRET_BYTES {
            return Err(invalid(
                "api_keys",
                format!("each key must be at least {MIN_SECRET_BYTES} bytes"),
            ));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "api_keys",
                "keys must be printable ASCII, without spaces",
            ));
        }
    }
    Ok(Some(ApiConfig {
        keys: s.api_keys.clone(),
        requests_per_second: s.api_requests_per_second,
        burst: s.api_burst,
    }))
}

/// The shortest secret accepted: HS256 is only as strong as its key, and a short one can be
/// found offline from a single token.
const MIN_SECRET_BYTES: usize = 32;

fn identity(s: &Settings) -> Result<IdentityMode, ConfigError> {
    let claim = |key: &'static str, value: &Option<String>| match value {
        Some(v) if v.trim().is_empty() => Err(invalid(key, "must not be empty")),
        Some(_) if s.jwt_secret.is_none() => Err(invalid(key, "needs jwt_secret")),
        _ => Ok(value.clone()),
    };
    let audience = claim("jwt_audience", &s.jwt_audience)?;
    let issuer = claim("jwt_issuer", &s.jwt_issuer)?;
    Ok(match s.jwt_secret.clone() {
        Some(secret) if secret.len() < MIN_SECRET_BYTES => {
            return Err(invalid(
                "jwt_secret",
                format!("must be at least {MIN_SECRET_BYTES} bytes"),
            ));
        }
        Some(secret) => IdentityMode::Signed {
            secret: secret.into_bytes(),
            audience,
            issuer,
        },
        None => IdentityMode::Demo,
    })
}

/// The longest a participant's browser may wait on OpenMeetings for a room.
const MAX_OPENMEETINGS_TIMEOUT: Duration = Duration::from_secs(60);

/// Pings often enough to keep proxies from dropping idle sockets, but not so often they are
/// load; a dead peer found within minutes; a write deadline short of the idle timeout.
fn socket_timing(s: &Settings) -> Result<Timing, ConfigError> {
    const SECOND: Duration = Duration::from_secs(1);
    const MINUTE: Duration = Duration::from_secs(60);
    if !(SECOND..=5 * MINUTE).contains(&s.ping_interval) {
        return Err(invalid("ping_interval", "must be 1s to 5m"));
    }
    if s.idle_timeout <= s.ping_interval || s.idle_timeout > 30 * MINUTE {
        return Err(invalid(
            "idle_timeout",
            "must be longer than ping_interval and at most 30m",
        ));
    }
    if !(SECOND..=2 * MINUTE).contains(&s.write_timeout) {
        return Err(invalid("write_timeout", "must be 1s to 2m"));
    }
    Ok(Timing {
        ping_interval: s.ping_interval,
        idle_timeout: s.idle_timeout,
        write_timeout: s.write_timeout,
    })
}

fn openmeetings(url: String, s: &Settings) -> Result<OpenMeetingsConfig, ConfigError> {
    let parsed = Url::parse(&url).map_err(|e| invalid("openmeetings_url", e))?;
    if parsed.scheme() == "http" && !is_loopback(&parsed) {
        return Err(invalid(
            "openmeetings_url",
            "must be https unless OpenMeetings runs on this machine: the API password would \
             cross the network in clear",
        ));
    }
    if let Some(timeout) = s.openmeetings_timeout
        && (timeout.is_zero() || timeout > MAX_OPENMEETINGS_TIMEOUT)
    {
        return Err(invalid(
            "openmeetings_timeout",
            "must be more than zero and at most 60s",
        ));
    }
    let user = s
        .openmeetings_user
        .clone()
        .ok_or_else(|| invalid("openmeetings_user", "required with openmeetings_url"))?;
    let password = s
        .openmeetings_password
        .clone()
        .ok_or_else(|| invalid("openmeetings_password", "required with openmeetings_url"))?;
    let mut om = OpenMeetingsConfig::new(url.trim_end_matches('/'), user, password);
    if let Some(kind) = &s.openmeetings_room_type {
        om.room_type = kind
            .parse()
            .map_err(|e| invalid("openmeetings_room_type", e))?;
    }
    if let Some(after) = &s.openmeetings_after_call {
        om.after_call = after
            .parse()
            .map_err(|e| invalid("openmeetings_after_call", e))?;
    }
    om.capacity = s.openmeetings_capacity.unwrap_or(om.capacity);
    om.language = s.openmeetings_language.or(om.language);
    om.moderators = s.openmeetings_moderators.unwrap_or(om.moderators);
    om.timeout = s.openmeetings_timeout.unwrap_or(om.timeout);
    Ok(om)
}

/// The built-in room's STUN and TURN servers. `ice_servers` entries are sorted by scheme.
fn ice(s: &Settings) -> Result<IceConfig, ConfigError> {
    use crate::rooms::turn_url_kind;
    let (mut stun_urls, mut turn_urls) = (Vec::new(), Vec::new());
    for (key, urls) in [
        ("ice_servers", &s.ice_servers),
        ("stun_urls", &s.stun_urls),
        ("turn_urls", &s.turn_urls),
    ] {
        for url in urls {
            match (turn_url_kind(url), key) {
                (None, _) => {
                    return Err(invalid(
                        key,
                        format!("{url} is not a stun:, stuns:, turn: or turns: URL"),
                    ));
                }
                (Some(true), "stun_urls") | (Some(false), "turn_urls") => {
                    return Err(invalid(key, format!("{url} has the other kind of scheme")));
                }
                (Some(true), _) => turn_urls.push(url.clone()),
                (Some(false), _) => stun_urls.push(url.clone()),
            }
        }
    }
    // A page may have to allocate on the relay again at any time in its call (an ICE restart,
    // a relay restart), always with the credential it was served with.
    let ttl = s.turn_credential_ttl.unwrap_or(s.max_call_duration);
    if ttl < s.max_call_duration {
        return Err(invalid(
            "turn_credential_ttl",
            "must be at least max_call_duration: a page re-allocates on the relay with the \
             credential it was served with, at any time in its call",
        ));
    }
    let turn = match (turn_urls.is_empty(), &s.turn_secret) {
        (true, None) => None,
        (true, Some(_)) => return Err(invalid("turn_urls", "required with turn_secret")),
        (false, None) => {
            return Err(invalid(
                "turn_secret",
                "required with TURN URLs: browsers need a credential for the relay",
            ));
        }
        (false, Some(secret)) if secret.is_empty() => {
            return Err(invalid("turn_secret", "must not be empty"));
        }
        (false, Some(secret)) => Some(TurnRelay {
            urls: turn_urls,
            secret: secret.clone().into_bytes(),
            ttl,
        }),
    };
    let policy = match &s.ice_transport_policy {
        Some(text) => text
            .parse::<IcePolicy>()
            .map_err(|e| invalid("ice_transport_policy", e))?,
        None => IcePolicy::All,
    };
    if policy == IcePolicy::Relay && turn.is_none() {
        return Err(invalid(
            "ice_transport_policy",
            "relay needs turn_urls and turn_secret",
        ));
    }
    Ok(IceConfig {
        stun_urls,
        turn,
        policy,
    })
}

/// The Jitsi tokens for a room URL template, when `room_jwt_secret` is set.
fn room_tokens(s: &Settings, template: &str) -> Result<Option<JitsiTokens>, ConfigError> {
    let Some(secret) = &s.room_jwt_secret else {
        if s.room_jwt_app_id.is_some() || s.room_jwt_sub.is_some() || template.contains("{jwt}") {
            return Err(invalid(
                "room_jwt_secret",
                "required with room_jwt_* or {jwt}",
            ));
        }
        return Ok(None);
    };
    if secret.is_empty() {
        return Err(invalid("room_jwt_secret", "must not be empty"));
    }
    let app_id = s
        .room_jwt_app_id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| invalid("room_jwt_app_id", "required with room_jwt_secret"))?;
    let sub = match &s.room_jwt_sub {
        Some(sub) => sub.clone(),
        None => {
            let sample = template.replace(['{', '}'], "");
            Url::parse(&sample)
                .ok()
                .and_then(|url| url.host_str().map(str::to_owned))
                .ok_or_else(|| {
                    invalid(
                        "room_jwt_sub",
                        "required: room_url_template has no host to take it from",
                    )
                })?
        }
    };
    Ok(Some(JitsiTokens {
        secret: secret.clone().into_bytes(),
        app_id,
        sub,
        call_lifetime: s.max_call_duration,
    }))
}

/// Whether the URL's host is this machine (`localhost`, 127.0.0.0/8 or `::1`).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `https://Example.org:443/` → `https://example.org`; anything that is not an origin → None.
pub fn normalize_origin(text: &str) -> Option<String> {
    crate::origin::normalize(&Url::parse(text.trim()).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_the_demo() {
        let config = Config::from_settings(Settings::default()).unwrap();
        assert!(matches!(config.identity, IdentityMode::Demo));
        assert!(matches!(config.rooms, RoomsConfig::Builtin(_)));
        assert_eq!(config.listen, "127.0.0.1:8080");
        assert_eq!(config.ring_timeout, Duration::from_secs(45));
        assert_eq!(
            config.store_writer_priority,
            crate::store::WriterPriority::Idle
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn layers_file_env_and_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "sb.toml",
                "ring_timeout = \"30s\"\nlisten = \"127.0.0.1:9000\"\nallowed_origins = [\"https://a.example\"]",
            )?;
            jail.set_env("SWITCHBOARD_RING_TIMEOUT", "20s");
            jail.set_env("SWITCHBOARD_STORE_WRITER_PRIORITY", "normal");
            jail.set_env(
                "SWITCHBOARD_ALLOWED_ORIGINS",
                "https://b.example, http://c.example:8080/",
            );
            let cli = Cli {
                config: Some("sb.toml".into()),
                listen: Some("127.0.0.1:9100".into()),
                ..Cli::default()
            };
            let config = Config::load(&cli).map_err(|e| e.to_string())?;
            assert_eq!(config.ring_timeout, Duration::from_secs(20));
            assert_eq!(config.listen, "127.0.0.1:9100");
            assert_eq!(
                config.store_writer_priority,
                crate::store::WriterPriority::Normal
            );
            assert_eq!(
                config.allowed_origins,
                ["https://b.example", "http://c.example:8080"]
            );
            Ok(())
        });
    }

    #[test]
    fn refuses_bad_values() {
        let short_secret = Settings {
            jwt_secret: Some("31 bytes, which is not enough!!".into()),
            ..Settings::default()
        };
        assert!(Config::from_settings(short_secret).is_err());
        let no_password = Settings {
            openmeetings_url: Some("https://om.example.org/openmeetings".into()),
            openmeetings_user: Some("api".into()),
            ..Settings::default()
        };
        assert!(Config::from_settings(no_password).is_err());
        let forever = Settings {
            max_call_duration: Duration::from_secs(3 * 365 * 24 * 3600),
            ..Settings::default()
        };
        assert!(Config::from_settings(forever).is_err());
        let huge_bursts = Settings {
            replay_events: usize::MAX / 2 + 1,
            max_watched: usize::MAX / 2 + 1,
            ..Settings::default()
        };
        assert!(Config::from_settings(huge_bursts).is_err());
        let tiny_queue = Settings {
            send_queue: 16,
            ..Settings::default()
        };
        assert!(Config::from_settings(tiny_queue).is_err());
        let bad_origin = Settings {
            allowed_origins: vec!["not an origin".into()],
            ..Settings::default()
        };
        assert!(Config::from_settings(bad_origin).is_err());
        let bad_log_level = Settings {
            log_level: "info,switchboard=loud".into(),
            ..Settings::default()
        };
        assert!(Config::from_settings(bad_log_level).is_err());
    }

    fn openmeetings_at(url: &str) -> Settings {
        Settings {
            openmeetings_url: Some(url.into()),
            openmeetings_user: Some("api".into()),
            openmeetings_password: Some("pw".into()),
            ..Settings::default()
        }
    }

    #[test]
    fn secrets_claims_and_the_metrics_address() {
        let secret = |s: &str| Settings {
            jwt_secret: Some(s.into()),
            ..Settings::default()
        };
        let error = Config::from_settings(secret(&"x".repeat(31))).unwrap_err();
        assert_eq!(error.to_string(), "jwt_secret: must be at least 32 bytes");
        assert!(Config::from_settings(secret(&"x".repeat(32))).is_ok());

        let claims = Settings {
            jwt_audience: Some("switchboard".into()),
            jwt_issuer: Some("https://forum.example.org".into()),
            ..secret(&"x".repeat(32))
        };
        let IdentityMode::Signed {
            audience, issuer, ..
        } = Config::from_settings(claims).unwrap().identity
        else {
            panic!("signed");
        };
        assert_eq!(audience.as_deref(), Some("switchboard"));
        assert_eq!(issuer.as_deref(), Some("https://forum.example.org"));
        let demo_audience = Settings {
            jwt_audience: Some("switchboard".into()),
            ..Settings::default()
        };
        assert!(Config::from_settings(demo_audience).is_err());

        let metrics = Settings {
            metrics_listen: Some("127.0.0.1:9090".into()),
            ..Settings::default()
        };
        assert_eq!(
            Config::from_settings(metrics).unwrap().metrics_listen,
            Some("127.0.0.1:9090".parse().unwrap())
        );
        let bad_metrics = Settings {
            metrics_listen: Some("everywhere".into()),
            ..Settings::default()
        };
        assert!(Config::from_settings(bad_metrics).is_err());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn api_keys_come_as_a_list_and_must_be_long() {
        let one = "k1-0123456789abcdef0123456789abcdef";
        let two = "k2-0123456789abcdef0123456789abcdef";
        assert!(
            Config::from_settings(Settings::default())
                .unwrap()
                .api
                .is_none()
        );
        figment::Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD_API_KEYS", format!("{one}, {two}"));
            jail.set_env("SWITCHBOARD_API_REQUESTS_PER_SECOND", "5");
            let config = Config::load(&Cli::default()).map_err(|e| e.to_string())?;
            let api = config.api.expect("the API is on");
            assert_eq!(api.keys, [one, two]);
            assert_eq!((api.requests_per_second, api.burst), (5, 100));
            assert!(!format!("{api:?}").contains(one), "keys stay out of logs");
            Ok(())
        });
        for bad in ["x".repeat(31), format!("{one} x")] {
            let settings = Settings {
                api_keys: vec![bad],
                ..Settings::default()
            };
            let error = Config::from_settings(settings).unwrap_err();
            assert!(error.to_string().starts_with("api_keys:"), "{error}");
        }
    }

    #[test]
    fn the_public_url_must_have_an_http_origin() {
        let with = |url: &str| Settings {
            public_url: Some(url.into()),
            ..Settings::default()
        };
        assert!(Config::from_settings(with("https://sb.example.org/switchboard")).is_ok());
        for bad in [
            "ftp://sb.example.org",
            "file:///srv/www",
            "mailto:a@b.example",
        ] {
            let error = Config::from_settings(with(bad)).unwrap_err();
            assert!(error.to_string().starts_with("public_url:"), "{bad}");
        }
    }

    #[test]
    fn openmeetings_in_clear_only_on_this_machine() {
        for url in [
            "https://om.example.org/openmeetings",
            "http://127.0.0.1:5080/openmeetings",
            "http://localhost:5080/openmeetings",
            "http://[::1]:5080/openmeetings",
        ] {
            assert!(Config::from_settings(openmeetings_at(url)).is_ok(), "{url}");
        }
        for url in [
            "http://om.example.org/openmeetings",
            "http://10.0.0.5:5080/openmeetings",
            "http://localhost.example.org/openmeetings",
        ] {
            let error = Config::from_settings(openmeetings_at(url)).unwrap_err();
            assert!(error.to_string().starts_with("openmeetings_url:"), "{url}");
        }
    }

    #[test]
    fn the_openmeetings_timeout_is_bounded() {
        let with = |timeout: Duration| Settings {
            openmeetings_timeout: Some(timeout),
            ..openmeetings_at("https://om.example.org/openmeetings")
        };
        assert!(Config::from_settings(with(Duration::from_secs(10))).is_ok());
        for bad in [Duration::ZERO, Duration::from_secs(100 * 365 * 24 * 3600)] {
            let error = Config::from_settings(with(bad)).unwrap_err();
            assert!(
                error.to_string().starts_with("openmeetings_timeout:"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_room_url_template_must_fit_a_location_header() {
        let with = |template: &str| Settings {
            room_url_template: Some(template.into()),
            ..Settings::default()
        };
        assert!(Config::from_settings(with("https://meet.example.org/{room}")).is_ok());
        for bad in [
            "https://meet.example.org/räume/{room}",
            "https://meet.example.org/{room}\r\nSet-Cookie: a=b",
            "https://meet.example.org/a room/{room}",
        ] {
            let error = Config::from_settings(with(bad)).unwrap_err();
            assert!(error.to_string().starts_with("room_url_template:"), "{bad}");
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn refuses_demo_mode_on_the_network_unless_meant() {
        let open = |allow: bool, secret: Option<&str>| Settings {
            listen: "0.0.0.0:8080".into(),
            allow_demo_on_network: allow,
            jwt_secret: secret.map(String::from),
            ..Settings::default()
        };
        let refused = Config::from_settings(open(false, None)).unwrap_err();
        assert!(
            refused.to_string().contains("allow_demo_on_network"),
            "{refused}"
        );
        assert!(Config::from_settings(open(true, None)).is_ok());
        assert!(
            Config::from_settings(open(false, Some("a secret of at least thirty-two bytes")))
                .is_ok()
        );
        figment::Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2");
            let cli = Cli {
                listen: Some("0.0.0.0:8080".into()),
                allow_demo_on_network: Some(true),
                ..Cli::default()
            };
            let config = Config::load(&cli).map_err(|e| e.to_string())?;
            assert_eq!(config.admission.trusted_proxies.len(), 2);
            Ok(())
        });
        let loopback = Settings {
            listen: "[::1]:8080".into(),
            ..Settings::default()
        };
        assert!(Config::from_settings(loopback).is_ok());
    }

    #[test]
    fn bounds_socket_timing() {
        let with = |ping: u64, idle: u64, write: u64| Settings {
            ping_interval: Duration::from_millis(ping),
            idle_timeout: Duration::from_millis(idle),
            write_timeout: Duration::from_millis(write),
            ..Settings::default()
        };
        assert!(Config::from_settings(with(1_000, 2_500, 1_000)).is_ok());
        for (ping, idle, write) in [
            (100, 350, 10_000),
            (600_000, 900_000, 10_000),
            (20_000, 20_000, 10_000),
            (20_000, 3_600_000, 10_000),
            (20_000, 50_000, 0),
            (20_000, 50_000, 600_000),
        ] {
            let refused = Config::from_settings(with(ping, idle, write));
            assert!(refused.is_err(), "{ping} {idle} {write}");
        }
    }

    #[test]
    fn turn_settings() {
        let with = |f: fn(&mut Settings)| {
            let mut s = Settings::default();
            f(&mut s);
            Config::from_settings(s)
        };
        let RoomsConfig::Builtin(ice) = with(|s| {
            s.ice_servers = vec!["stun:a.example:3478".into()];
            s.turn_urls = vec!["turns:t.example:5349?transport=tcp".into()];
            s.turn_secret = Some("s3cret".into());
            s.ice_transport_policy = Some("relay".into());
        })
        .unwrap()
        .rooms
        else {
            panic!("the built-in room");
        };
        assert_eq!(ice.stun_urls, ["stun:a.example:3478"]);
        assert_eq!(ice.policy, IcePolicy::Relay);
        let turn = ice.turn.unwrap();
        assert_eq!(turn.urls, ["turns:t.example:5349?transport=tcp"]);
        assert_eq!(turn.ttl, Settings::default().max_call_duration);

        for (key, bad) in [
            (
                "turn_secret",
                with(|s| s.turn_urls = vec!["turn:t.example".into()]),
            ),
            ("turn_urls", with(|s| s.turn_secret = Some("s".into()))),
            (
                "turn_urls",
                with(|s| s.turn_urls = vec!["stun:t.example".into()]),
            ),
            (
                "stun_urls",
                with(|s| s.stun_urls = vec!["http://t.example".into()]),
            ),
            (
                "ice_transport_policy",
                with(|s| s.ice_transport_policy = Some("relay".into())),
            ),
            (
                "turn_credential_ttl",
                with(|s| {
                    s.turn_urls = vec!["turn:t.example".into()];
                    s.turn_secret = Some("s".into());
                    s.turn_credential_ttl = Some(Duration::from_secs(60));
                }),
            ),
        ] {
            let error = bad.unwrap_err().to_string();
            assert!(error.starts_with(&format!("{key}:")), "{error}");
        }
    }

    #[test]
    fn jitsi_token_settings() {
        let with = |f: fn(&mut Settings)| {
            let mut s = Settings {
                room_url_template: Some("https://meet.example.org/{room}".into()),
                ..Settings::default()
            };
            f(&mut s);
            Config::from_settings(s)
        };
        let signed = with(|s| {
            s.room_jwt_secret = Some("app-secret".into());
            s.room_jwt_app_id = Some("switchboard".into());
        })
        .unwrap();
        assert!(format!("{:?}", signed.rooms).contains(r#"sub: "meet.example.org""#));
        assert!(!format!("{:?}", signed.rooms).contains("app-secret"));
        for (key, bad) in [
            (
                "room_jwt_app_id",
                with(|s| s.room_jwt_secret = Some("x".into())),
            ),
            (
                "room_jwt_secret",
                with(|s| s.room_jwt_app_id = Some("sb".into())),
            ),
            (
                "room_jwt_secret",
                with(|s| {
                    s.room_url_template = None;
                    s.room_jwt_secret = Some("x".into());
                    s.room_jwt_app_id = Some("sb".into());
                }),
            ),
        ] {
            let error = bad.unwrap_err().to_string();
            assert!(error.starts_with(&format!("{key}:")), "{error}");
        }
    }
}
