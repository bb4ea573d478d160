//! A real Switchboard server on 127.0.0.1:0 with a fresh SQLite file, started in-process.

use std::{path::PathBuf, time::Duration};

use switchboard::{Config, Running, config::Settings, reload::Reloaded};
use tempfile::TempDir;
use tokio::net::TcpListener;

use super::Client;

/// How long a test server keeps a user online after their last connection goes.
pub const PRESENCE_GRACE: Duration = Duration::from_millis(300);

pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub db: PathBuf,
    pub settings: Settings,
    running: Option<Running>,
    /// Keeps the database directory alive as long as the server.
    dir: std::sync::Arc<TempDir>,
}

/// Settings that make tests quick: short grace and ring times, the url-template provider so
/// `/join` answers with a redirect a test can read.
pub fn test_settings(dir: &TempDir) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        db: dir.path().join("switchboard.db"),
        www: None,
        presence_grace: PRESENCE_GRACE,
        ring_timeout: Duration::from_secs(10),
        room_url_template: Some("https://meet.example.org/{room}?name={name}".into()),
        ..Settings::default()
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = test_settings(&dir);
        tweak(&mut settings);
        Self::launch(settings, std::sync::Arc::new(dir)).await
    }

    async fn launch(settings: Settings, dir: std::sync::Arc<TempDir>) -> Self {
        let config = Config::from_settings(settings.clone()).expect("valid test settings");
        let listener = TcpListener::bind(&config.listen).await.expect("bind");
        let running = switchboard::start(config, listener, std::future::pending())
            .await
            .expect("server starts");
        Self {
            addr: running.addr,
            db: settings.db.clone(),
            settings,
            running: Some(running),
            dir,
        }
    }

    /// Stops gracefully and starts again on the same database (on a new port).
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        Self::launch(self.settings.clone(), self.dir.clone()).await
    }

    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// Applies changed settings as SIGHUP does, and says what took effect.
    pub async fn reload(&mut self, tweak: impl FnOnce(&mut Settings)) -> Reloaded {
        tweak(&mut self.settings);
        let config = Config::from_settings(self.settings.clone()).expect("valid test settings");
        let running = self.running.as_ref().expect("the server is running");
        running.reloader().apply(config).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// A connected client that has said hello.
    pub async fn client(&self) -> Client {
        Client::connect(&self.ws_url()).await
    }

    /// A connected client logged in as `id` (display name: `id` capitalised).
    pub async fn user(&self, id: &str) -> Client {
        let mut client = self.client().await;
        client.login(id, &capitalise(id)).await;
        client
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one un-labelled metric line.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }
}

pub fn capitalise(id: &str) -> String {
    let mut chars = id.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// An HTTP client that does not follow redirects, so tests can read `Location`.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
