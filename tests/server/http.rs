//! The HTTP surface: health, metrics, the demo files and the client bundle's CORS headers.

use switchboard::Config;
use tokio::net::TcpListener;

use crate::common::{
    TestServer,
    server::{http, test_settings},
};

#[tokio::test]
async fn health_metrics_and_static_files() {
    let server = TestServer::start().await;
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    let _ann = server.user("ann").await;
    let metrics = server.metrics().await;
    for name in [
        "switchboard_connections 1",
        "switchboard_sessions 1",
        "switchboard_users_online 1",
        "switchboard_messages_in_total 2",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }

    let index = http().get(server.url("/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    let missing = http()
        .get(server.url("/no-such-file"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_client_bundle_may_be_loaded_from_other_sites() {
    let server = TestServer::start().await;
    let response = http()
        .get(server.url("/client/switchboard.js"))
        .header("origin", "https://forum.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn metrics_can_be_kept_off_the_public_listener() {
    let dir = tempfile::tempdir().unwrap();
    let settings = switchboard::config::Settings {
        metrics_listen: Some("127.0.0.1:0".into()),
        ..test_settings(&dir)
    };
    let config = Config::from_settings(settings).unwrap();
    let listener = TcpListener::bind(&config.listen).await.unwrap();
    let running = switchboard::start(config, listener, std::future::pending())
        .await
        .unwrap();
    let public = http()
        .get(format!("http://{}/metrics", running.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let metrics_addr = running.metrics_addr.expect("a metrics address");
    assert_ne!(metrics_addr, running.addr);
    let private = http()
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), 200);
    assert!(
        private
            .text()
            .await
            .unwrap()
            .contains("switchboard_connections")
    );
    running.stop().await;
}
