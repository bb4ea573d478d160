//! The site backend's token snippets in `examples/token/` (PHP, Python, Node, Rust), each run
//! for real: the token it prints logs in to a real server as the user it names, with and
//! without an audience and issuer, and one signed with another secret is refused.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use switchboard_proto::{Auth, Command as Frame, ErrorCode, Event, UserRef, close};
use tempfile::TempDir;

use crate::common::TestServer;

const SECRET: &str = "a snippet-test secret of at least thirty-two bytes";
const AUDIENCE: &str = "switchboard";
const ISSUER: &str = "https://forum.example.org";
/// A display name that JSON has to escape and that is not ASCII.
const NAME: &str = "Zoë \"Z\" <O'Brien>";

#[derive(Clone, Copy, Debug)]
enum Snippet {
    Php,
    Python,
    Node,
    Rust,
}

/// What the snippet is given besides the user.
struct Signing<'a> {
    secret: &'a str,
    audience_and_issuer: bool,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the server crate sits inside the workspace")
        .to_path_buf()
}

impl Snippet {
    /// How to run the snippet, from `scratch` where it needs a folder of its own.
    fn command(self, scratch: &Path) -> Command {
        let examples = root().join("examples/token");
        match self {
            Snippet::Php => {
                // The snippet loads Composer's vendor/autoload.php beside it; here that file
                // loads firebase/php-jwt as installed without Composer.
                let script = scratch.join("switchboard_token.php");
                std::fs::copy(examples.join("php/switchboard_token.php"), &script).unwrap();
                std::fs::create_dir(scratch.join("vendor")).unwrap();
                std::fs::copy(
                    examples.join("php/autoload-without-composer.php"),
                    scratch.join("vendor/autoload.php"),
                )
                .unwrap();
                let mut cmd = Command::new("php");
                cmd.arg(script);
                cmd
            }
            Snippet::Python => {
                // Debian's Python, which python3-jwt installs into; a python3 earlier on PATH
                // (pyenv's, say) would not have it.
                let mut cmd = Command::new("/usr/bin/python3");
                cmd.arg(examples.join("python/switchboard_token.py"));
                cmd
            }
            Snippet::Node => {
                let mut cmd = Command::new("node");
                cmd.arg(examples.join("node/switchboard_token.mjs"));
                cmd
            }
            Snippet::Rust => {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let mut cmd = Command::new(cargo);
                cmd.current_dir(root()).args([
                    "run",
                    "--quiet",
                    "-p",
                    "switchboard-token-example",
                    "--",
                ]);
                // What `cargo test` tells this test about its own package would make build
                // scripts that watch such variables rebuild.
                for (key, _) in std::env::vars_os() {
                    let key = key.to_string_lossy();
                    if key.starts_with("CARGO_PKG_")
                        || key.starts_with("CARGO_MANIFEST_")
                        || key.starts_with("CARGO_CRATE_")
                        || key == "CARGO_PRIMARY_PACKAGE"
                    {
                        cmd.env_remove(key.as_ref());
                    }
                }
                cmd
            }
        }
    }

    /// What makes the snippet runnable on a bare Debian 12 (as `.ci/run` does).
    fn install_hint(self) -> &'static str {
        match self {
            Snippet::Php => {
                "apt-get install php-cli && bash examples/token/php/install-php-jwt.sh \
                 (a site: composer require firebase/php-jwt)"
            }
            Snippet::Python => "apt-get install python3-jwt (elsewhere: pip install PyJWT)",
            Snippet::Node => "apt-get install nodejs npm && npm ci --prefix examples/token/node",
            Snippet::Rust => "cargo build -p switchboard-token-example",
        }
    }

    /// Runs the snippet for `user` and returns what it printed, which must be a token alone.
    fn sign(self, signing: &Signing, user: &str) -> String {
        let scratch = TempDir::new().unwrap();
        let mut cmd = self.command(scratch.path());
        cmd.args([user, NAME])
            .env("SWITCHBOARD_JWT_SECRET", signing.secret)
            .env_remove("SWITCHBOARD_JWT_AUDIENCE")
            .env_remove("SWITCHBOARD_JWT_ISSUER")
            .stdin(Stdio::null());
        if signing.audience_and_issuer {
            cmd.env("SWITCHBOARD_JWT_AUDIENCE", AUDIENCE)
                .env("SWITCHBOARD_JWT_ISSUER", ISSUER);
        }
        let program = cmd.get_program().to_string_lossy().into_owned();
        let output = match cmd.output() {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "the {self:?} snippet needs {program}, which is not installed; install: {}",
                self.install_hint()
            ),
            Err(e) => panic!("cannot run {program}: {e}"),
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "the {self:?} snippet failed ({}):\n{stderr}\ninstall: {}",
            output.status,
            self.install_hint()
        );
        let stdout = String::from_utf8(output.stdout).expect("the token is text");
        let token = stdout.trim_end_matches('\n');
        assert!(
            token.split('.').count() == 3 && !token.contains(char::is_whitespace),
            "the {self:?} snippet printed more than a token: {stdout:?}"
        );
        token.to_owned()
    }
}

/// A token's claims, read without checking its signature (the server does that).
fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
        .expect("JSON claims")
}

/// Logs in with `token` over a new WebSocket: who the server says the user is, or why not.
async fn log_in(server: &TestServer, token: String) -> Result<UserRef, ErrorCode> {
    let mut client = server.client().await;
    let id = client
        .send(Frame::Login {
            auth: Auth::Token(token),
        })
        .await;
    let frame = client.next().await;
    match frame.ev {
        Event::LoggedIn { user } => Ok(user),
        Event::Error { code, .. } => {
            assert_eq!(frame.re, Some(id));
            assert_eq!(client.closed().await, Some(close::PROTOCOL));
            Err(code)
        }
        other => panic!("expected logged_in or an error, got {other:?}"),
    }
}

/// The whole check for one snippet, run on a blocking thread where it starts processes.
async fn check(snippet: Snippet) {
    let user = format!("u-{snippet:?}@example").to_lowercase();
    let sign = |secret: &'static str, audience_and_issuer: bool| {
        let user = user.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let signing = Signing {
                    secret,
                    audience_and_issuer,
                };
                snippet.sign(&signing, &user)
            })
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        }
    };
    let expected = UserRef {
        id: user.clone(),
        name: NAME.into(),
    };

    let server = TestServer::start_with(|s| s.jwt_secret = Some(SECRET.into())).await;
    let token = sign(SECRET, false).await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let exp = claims(&token)["exp"].as_u64().expect("a numeric exp");
    let life = exp.saturating_sub(now.as_secs());
    assert!(
        (60..=900).contains(&life),
        "{snippet:?}: exp is {life} s ahead, not a few minutes"
    );
    assert_eq!(claims(&token).get("aud"), None, "{snippet:?}");
    assert_eq!(log_in(&server, token).await, Ok(expected.clone()));

    let forged = sign("another secret, also thirty-two bytes long", false).await;
    assert_eq!(log_in(&server, forged).await, Err(ErrorCode::BadToken));

    let strict = TestServer::start_with(|s| {
        s.jwt_secret = Some(SECRET.into());
        s.jwt_audience = Some(AUDIENCE.into());
        s.jwt_issuer = Some(ISSUER.into());
    })
    .await;
    let token = sign(SECRET, true).await;
    assert_eq!(claims(&token)["aud"], AUDIENCE, "{snippet:?}");
    assert_eq!(claims(&token)["iss"], ISSUER, "{snippet:?}");
    assert_eq!(log_in(&strict, token).await, Ok(expected));
}

#[tokio::test]
async fn the_php_snippet_signs_a_token_that_logs_in() {
    check(Snippet::Php).await;
}

#[tokio::test]
async fn the_python_snippet_signs_a_token_that_logs_in() {
    check(Snippet::Python).await;
}

#[tokio::test]
async fn the_node_snippet_signs_a_token_that_logs_in() {
    check(Snippet::Node).await;
}

#[tokio::test]
async fn the_rust_snippet_signs_a_token_that_logs_in() {
    check(Snippet::Rust).await;
}
