//! A fake Apache OpenMeetings for tests: the REST calls Switchboard makes, with the real
//! server's quirks (see shared openmeetings-api.md), on 127.0.0.1 in the test's own runtime.

// Shared by every test module; each uses only part of it.
#![allow(dead_code)]

mod handlers;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use self::state::Shared;
pub use self::state::{FakeCall, FakeRoom, IssuedHash, LoginAttempt};

/// The API account the fake accepts unless told otherwise.
pub const USER: &str = "switchboard-api";
pub const PASSWORD: &str = "om-p4ss&word=1";

/// Where OpenMeetings is deployed under the host, as in a default install.
const BASE_PATH: &str = "/openmeetings";

/// How the fake accepts logins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginStyle {
    /// OpenMeetings 4.x to 8.x: `GET /services/user/login?user=..&pass=..`; POST is 405.
    GetOnly,
    /// OpenMeetings 9.x: `POST` with a form; GET is 405.
    PostOnly,
}

#[derive(Clone, Debug)]
pub struct FakeOptions {
    pub login: LoginStyle,
    pub user: String,
    pub password: String,
    /// How long a SID lives after its last use (30 minutes on a real server).
    pub sid_idle: Duration,
    /// Whether the API account has the SOAP right; without it every room and hash call is
    /// `error.notallowed`.
    pub soap_right: bool,
    /// OpenMeetings before 6.3 answers a bad session with HTTP 500 and an HTML page instead of
    /// a `serviceResult` and an `exception` header.
    pub html_errors: bool,
    /// OpenMeetings 9 answers a wrong password only after a penalty (6 to 15 s).
    pub wrong_password_delay: Duration,
}

impl FakeOptions {
    /// Like OpenMeetings 6.0 to 6.2, the oldest with find-or-create by external id.
    pub fn v6() -> Self {
        Self {
            html_errors: true,
            ..Self::v8()
        }
    }

    /// Like OpenMeetings 8.x.
    pub fn v8() -> Self {
        Self {
            login: LoginStyle::GetOnly,
            ..Self::v9()
        }
    }

    /// Like OpenMeetings 9.x.
    pub fn v9() -> Self {
        Self {
            login: LoginStyle::PostOnly,
            user: USER.into(),
            password: PASSWORD.into(),
            sid_idle: Duration::from_secs(30 * 60),
            soap_right: true,
            html_errors: false,
            wrong_password_delay: Duration::ZERO,
        }
    }
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self::v9()
    }
}

/// A running fake. Stops serving when dropped.
pub struct FakeOpenMeetings {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl FakeOpenMeetings {
    pub async fn start(options: FakeOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake OpenMeetings");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared::new(options));
        let running = serve(listener, shared.clone());
        Self {
            addr,
            shared,
            running: Mutex::new(Some(running)),
        }
    }

    /// The base URL to configure, e.g. `http://127.0.0.1:41234/openmeetings`.
    pub fn base_url(&self) -> String {
        format!("http://{}{BASE_PATH}", self.addr)
    }

    /// Delays every answer by `delay` (zero: answer at once).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.set_delay(delay);
    }

    /// Puts a dead reverse proxy in front: every answer is a 502 page (false: answer again).
    pub fn set_proxy_down(&self, down: bool) {
        self.shared.set_proxy_down(down);
    }

    /// Accepts logins in this style from now on.
    pub fn set_login_style(&self, style: LoginStyle) {
        self.shared.set_login_style(style);
    }

    pub fn set_sid_idle(&self, idle: Duration) {
        self.shared.state().sid_idle = idle;
    }

    /// Forgets every SID, as a restart of OpenMeetings does.
    pub fn expire_all_sids(&self) {
        self.shared.state().sessions.clear();
    }

    /// Forgets every SID just before the next `call` is handled: a session lost half-way.
    pub fn expire_sids_before_next(&self, call: FakeCall) {
        self.shared.state().expire_before = Some(call);
    }

    /// Stops listening: connections are refused until [`come_back`](Self::come_back).
    pub async fn go_down(&self) {
        let running = self.lock_running().take();
        if let Some(Running { stop, mut task }) = running {
            let _ = stop.send(());
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Listens again on the same port.
    pub async fn come_back(&self) {
        if self.lock_running().is_some() {
            return;
        }
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("bind the fake OpenMeetings again");
        *self.lock_running() = Some(serve(listener, self.shared.clone()));
    }

    pub fn rooms(&self) -> Vec<FakeRoom> {
        self.shared.state().rooms.clone()
    }

    pub fn hashes(&self) -> Vec<IssuedHash> {
        self.shared.state().hashes.clone()
    }

    pub fn logins(&self) -> Vec<LoginAttempt> {
        self.shared.state().logins.clone()
    }

    /// How many calls of this kind were made with a SID.
    pub fn count(&self, call: FakeCall) -> usize {
        self.shared
            .state()
            .calls
            .iter()
            .filter(|c| **c == call)
            .count()
    }

    fn lock_running(&self) -> MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FakeOpenMeetings {
    fn drop(&mut self) {
        if let Some(Running { stop, task }) = self.lock_running().take() {
            let _ = stop.send(());
            task.abort();
        }
    }
}

fn serve(listener: TcpListener, shared: Arc<Shared>) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let app = handlers::router(BASE_PATH, shared);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Running { stop, task }
}

/// The `secure` hash in a `.../hash?secure=HASH&language=N` link.
pub fn hash_in(link: &str) -> Option<String> {
    let url = url::Url::parse(link).ok()?;
    url.query_pairs()
        .find(|(key, _)| key == "secure")
        .map(|(_, value)| value.into_owned())
}
