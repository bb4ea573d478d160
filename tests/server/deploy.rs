//! What deploy/ relies on: the systemd unit as shipped passes `systemd-analyze verify`, the
//! binary tells systemd when it is ready and when it stops (Type=notify), and SIGHUP applies a
//! changed configuration without a restart.

use std::{
    os::unix::net::UnixDatagram,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use crate::{binary::Binary, security::upgrade};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn the_systemd_unit_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(root().join("deploy/switchboard.service")).unwrap();
    assert!(unit.contains("Type=notify"));
    // The unit names the installed path; verify it against this build of the binary.
    let unit = unit.replace(
        "/usr/local/bin/switchboard",
        env!("CARGO_BIN_EXE_switchboard"),
    );
    let path = dir.path().join("switchboard.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze runs (Debian package systemd)");
    let said = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}");
    assert!(
        !said.contains("switchboard.service"),
        "warnings about the unit: {said}"
    );
}

#[tokio::test]
async fn tells_systemd_when_it_is_ready_and_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let server = Binary::spawn_with(&dir.path().join("sb.db"), |command| {
        command.env("NOTIFY_SOCKET", &socket_path);
    });
    let mut buf = [0; 256];
    let n = socket.recv(&mut buf).expect("a notification");
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim(), "READY=1");
    // Ready means serving: the socket it announced takes sessions.
    server.user("ann", "Ann").await;
    server.terminate();
    let n = socket.recv(&mut buf).expect("a notification");
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim(), "STOPPING=1");
    let (exit, log) = server.exit().await;
    assert!(exit.success(), "{log}");
}

#[tokio::test]
async fn sighup_admits_an_origin_added_to_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    const OLD_KEY: &str = "an-api-key-of-at-least-32-bytes-1";
    const NEW_KEY: &str = "an-api-key-of-at-least-32-bytes-2";
    let settings = |origins: &str, key: &str| {
        format!("allowed_origins = [{origins}]\npresence_grace = \"3s\"\napi_keys = [\"{key}\"]\n")
    };
    std::fs::write(&config, settings(r#""https://forum.example.org""#, OLD_KEY)).unwrap();
    let server = Binary::spawn_with(&dir.path().join("sb.db"), |command| {
        command.arg("--config").arg(&config).env_remove("RUST_LOG");
    });
    let addr = server.addr.parse().unwrap();
    let status = |origin: &'static str| upgrade(addr, "/ws", origin.as_bytes(), None);
    let api = |key: &'static str| {
        reqwest::Client::new()
            .get(format!("http://{addr}/api/v1/presence/count"))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(status("https://forum.example.org").await, 101);
    assert_eq!(status("https://shop.example.org").await, 403);
    assert_eq!(api(OLD_KEY).await.unwrap().status(), 200);
    assert_eq!(api(NEW_KEY).await.unwrap().status(), 401);

    std::fs::write(
        &config,
        settings(
            r#""https://forum.example.org", "https://shop.example.org""#,
            NEW_KEY,
        )
        .replace("3s", "4s"),
    )
    .unwrap();
    server.signal("HUP");
    let start = Instant::now();
    while status("https://shop.example.org").await != 101 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the added origin is still refused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status("https://forum.example.org").await, 101);
    assert_eq!(status("https://evil.example.org").await, 403);
    // The key was rotated: the new one is taken, the old one refused.
    assert_eq!(api(NEW_KEY).await.unwrap().status(), 200);
    assert_eq!(api(OLD_KEY).await.unwrap().status(), 401);

    // A broken file is refused and changes nothing.
    std::fs::write(&config, "allowed_origins = [\"not an origin\"]\n").unwrap();
    server.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status("https://shop.example.org").await, 101);

    server.terminate();
    let (exit, log) = server.exit().await;
    assert!(exit.success(), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(
        log.contains("only a restart applies") && log.contains("presence_grace"),
        "the changed presence_grace is named as needing a restart: {log}"
    );
    assert!(log.contains("configuration not reloaded"), "{log}");
}
