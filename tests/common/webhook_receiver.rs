//! A site backend's webhook endpoint on 127.0.0.1, as a test controls it: it checks every
//! request's signature with the hmac crate (as a backend would, independently of the server's
//! code) and records what it got; it can answer 503, hang, or refuse connections.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::{net::TcpListener, task::JoinHandle, time::Instant};

/// The secret the tests' servers sign with.
pub const SECRET: &str = "the tests' webhook secret, 32 bytes or more";

/// How the endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 200, and the event is recorded.
    Accept,
    /// This status, and nothing recorded.
    Fail(u16),
    /// Never answers.
    Hang,
}

/// One delivery of an event (a retried event may be delivered more than once).
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: String,
    pub body: Value,
}

#[derive(Default)]
struct Log {
    delivered: Vec<Delivery>,
    /// Requests answered otherwise (failed or hanging).
    refused: usize,
    /// What was wrong with requests that were not properly signed or formed.
    bad: Vec<String>,
}

struct Shared {
    mode: Mutex<Mode>,
    log: Mutex<Log>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    pub async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut receiver = Self {
            addr: listener.local_addr().unwrap(),
            shared: Arc::new(Shared {
                mode: Mutex::new(mode),
                log: Mutex::default(),
            }),
            task: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(self.shared.clone());
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Stops listening: new connections are refused. Connections already open (a client's
    /// pool) are answered `503`.
    pub fn refuse_connections(&mut self) {
        self.set(Mode::Fail(503));
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port, accepting.
    pub async fn reopen(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
        self.set(Mode::Accept);
    }

    /// Every delivery so far, in the order they arrived.
    pub fn delivered(&self) -> Vec<Delivery> {
        let log = self.shared.log.lock().unwrap();
        assert!(log.bad.is_empty(), "bad webhook requests: {:?}", log.bad);
        log.delivered.clone()
    }

    /// Each event once, in the order of its first delivery.
    pub fn events(&self) -> Vec<Delivery> {
        let mut seen = std::collections::HashSet::new();
        self.delivered()
            .into_iter()
            .filter(|d| seen.insert(d.id.clone()))
            .collect()
    }

    /// Requests answered with a failure or left hanging.
    pub fn refused(&self) -> usize {
        self.shared.log.lock().unwrap().refused
    }

    /// Waits until the events delivered satisfy `check`; panics naming `what` if they do not
    /// within [`DELIVERY_PATIENCE`].
    pub async fn until(&self, what: &str, check: impl Fn(&[Delivery]) -> bool) {
        self.until_within(what, DELIVERY_PATIENCE, check).await;
    }

    /// [`Receiver::until`] with another patience.
    pub async fn until_within(
        &self,
        what: &str,
        patience: Duration,
        check: impl Fn(&[Delivery]) -> bool,
    ) {
        let deadline = Instant::now() + patience;
        while !check(&self.events()) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}; got {:?}",
                self.events().iter().map(|d| &d.id).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mode = *shared.mode.lock().unwrap();
    match mode {
        Mode::Accept => {}
        Mode::Fail(status) => {
            shared.log.lock().unwrap().refused += 1;
            return StatusCode::from_u16(status).unwrap();
        }
        Mode::Hang => {
            shared.log.lock().unwrap().refused += 1;
            std::future::pending::<()>().await;
        }
    }
    match check(&headers, &body) {
        Ok(delivery) => {
            shared.log.lock().unwrap().delivered.push(delivery);
            StatusCode::OK
        }
        Err(why) => {
            shared.log.lock().unwrap().bad.push(why);
            StatusCode::BAD_REQUEST
        }
    }
}

/// What a backend checks: the content type, a signature over the raw body made within five
/// minutes with the shared secret, and an event id that is the body's.
fn check(headers: &HeaderMap, body: &[u8]) -> Result<Delivery, String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(format!("no {name}"))
    };
    if header("content-type")? != "application/json" {
        return Err("content-type is not application/json".into());
    }
    let signature = header("switchboard-signature")?;
    let (t, v1) = signature
        .split_once(',')
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1.strip_prefix("v1=")?)))
        .ok_or(format!("malformed signature {signature}"))?;
    let t: u64 = t.parse().map_err(|_| format!("bad t in {signature}"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(t) > 300 {
        return Err(format!("t {t} is too far from now {now}"));
    }
    if v1.len() != 64 || v1.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!("v1 is not lowercase hex: {v1}"));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = (0..32)
        .map(|i| u8::from_str_radix(&v1[2 * i..2 * i + 2], 16).unwrap())
        .collect::<Vec<_>>();
    mac.verify_slice(&expected)
        .map_err(|_| format!("the signature does not verify: {signature}"))?;
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let id = header("switchboard-event-id")?.to_string();
    if body["id"] != id.as_str() {
        return Err(format!("event id {id} is not the body's {}", body["id"]));
    }
    Ok(Delivery { id, body })
}

/// How long a test gives the server to deliver what it has queued once the endpoint works: a
/// few of the tests' 2 s backoff caps, and a thousand events.
pub const DELIVERY_PATIENCE: Duration = Duration::from_secs(20);
