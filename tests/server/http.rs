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

/// A metric's value in the Prometheus text (the first line of that exact name).
fn value(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn latency_queue_and_commit_metrics_have_real_values_after_a_call() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let call = ann.call("bob").await;
    bob.call_in(switchboard_proto::CallState::Ringing).await;
    bob.answer(&call.id).await;
    ann.call_in(switchboard_proto::CallState::Answered).await;

    let mut metrics = server.metrics().await;
    for histogram in ["switchboard_ring_seconds", "switchboard_answer_seconds"] {
        assert_eq!(
            value(&metrics, &format!("{histogram}_count")),
            Some(1.0),
            "{metrics}"
        );
        let sum = value(&metrics, &format!("{histogram}_sum")).unwrap_or_default();
        assert!(sum > 0.0 && sum < 1.0, "{histogram}: {sum} s");
    }
    assert_eq!(
        value(&metrics, "switchboard_hub_queue"),
        Some(0.0),
        "{metrics}"
    );
    // The writes reach the database within a few milliseconds.
    for _ in 0..100 {
        if value(&metrics, "switchboard_store_commit_seconds_count").is_some_and(|n| n >= 1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        metrics = server.metrics().await;
    }
    let commits = value(&metrics, "switchboard_store_commit_seconds_count").unwrap_or_default();
    assert!(commits >= 1.0, "{metrics}");
    assert!(value(&metrics, "switchboard_store_commit_seconds_sum").is_some_and(|s| s > 0.0));
}

#[tokio::test]
async fn every_metric_the_grafana_dashboard_plots_is_served() {
    let server = TestServer::start_with(|s| s.max_connections = 2).await;
    // Activity that makes the labelled families appear: a call, a refusal, a full server.
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    ann.call("bob").await;
    bob.call_in(switchboard_proto::CallState::Ringing).await;
    ann.send(switchboard_proto::Command::Call {
        to: "nobody".into(),
    })
    .await;
    ann.error().await;
    assert!(
        tokio_tungstenite::connect_async(server.ws_url())
            .await
            .is_err()
    );
    let metrics = server.metrics().await;
    // Only a fault makes these appear; the dashboard must still name them as registered.
    let registered = include_str!("../../server/src/metrics.rs");
    let after_faults = ["store_errors", "dropped_connections"];
    let served: Vec<&str> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut plotted = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(name) = word.strip_prefix("switchboard_") {
                    plotted.push(name.to_string());
                }
            }
        }
    }
    assert!(plotted.len() > 10, "{plotted:?}");
    for name in plotted {
        let base = ["_bucket", "_total"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        let known = if after_faults.contains(&base) {
            registered.contains(&format!("\"{base}\""))
        } else {
            served.contains(&format!("switchboard_{base}").as_str())
        };
        assert!(
            known,
            "the dashboard plots switchboard_{name}, which /metrics does not serve"
        );
    }
}
