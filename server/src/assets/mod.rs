//! The pages and the browser client: `www/` as built into the binary, or a directory given with
//! `--www` (for development). Under `/client`: the bundle (`pkg/`) gzip-compressed when the
//! build left a `.gz` beside a file and cached for a year under a versioned URL, and the two
//! loader scripts, which name that version and are cached only briefly.
//!
//! From a directory the version is taken from the bundle files' size and modification time on
//! every request, so a rebuilt bundle is picked up without a restart; built in, from their
//! contents.

mod embedded;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::{cors::CorsLayer, services::ServeDir};

/// The bundle's files, as wasm-bindgen names them; the loaders refer to them by these names.
const BUNDLE: [&str; 2] = ["switchboard_client.js", "switchboard_client_bg.wasm"];
/// A versioned bundle file never changes: a year, and no revalidation.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The loaders name the current version, so a new bundle reaches pages within this time.
const LOADER: &str = "public, max-age=300";

/// Where the pages come from.
#[derive(Clone, Debug)]
pub enum Www {
    /// Built into the binary.
    BuiltIn,
    /// A directory laid out as `www/`.
    Dir(PathBuf),
}

/// What the `/client` routes need: the source, and the built-in bundle's version, computed once.
#[derive(Clone)]
struct Client {
    www: Www,
    built_in_version: Arc<OnceLock<String>>,
}

/// Routes for `/client/…`, and every other path as a file of `www`.
pub fn routes(www: &Www) -> Router {
    let client = Client {
        www: www.clone(),
        built_in_version: Arc::default(),
    };
    let loaders = Router::new()
        .route("/client/switchboard.js", get(loader))
        .route("/client/switchboard.mjs", get(loader))
        .with_state(client.clone());
    let client_files = match www {
        Www::BuiltIn => loaders.route("/client/{*file}", get(embedded::serve)),
        Www::Dir(dir) => loaders.nest_service(
            "/client",
            ServeDir::new(dir.join("client")).precompressed_gzip(),
        ),
    };
    // Any site may load the client.
    let client_files = client_files
        .layer(middleware::from_fn_with_state(client, cache_policy))
        .layer(CorsLayer::permissive().allow_credentials(false));
    match www {
        Www::BuiltIn => client_files.fallback(embedded::serve),
        Www::Dir(dir) => client_files.fallback_service(ServeDir::new(dir)),
    }
}

/// URLs of the current version (`?v=…`) are cached for good; anything else, an older version
/// included (its files have been replaced), is revalidated each time.
async fn cache_policy(State(client): State<Client>, request: Request, next: Next) -> Response {
    let asked = request
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("v="))
        .map(str::to_owned);
    let versioned = match asked {
        Some(v) => v == client.version().await,
        None => false,
    };
    let mut response = next.run(request).await;
    let policy = if versioned && response.status().is_success() {
        IMMUTABLE
    } else {
        "no-cache"
    };
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    // Sites may measure what loading the client costs their pages.
    headers.insert(
        header::HeaderName::from_static("timing-allow-origin"),
        HeaderValue::from_static("*"),
    );
    response
}

/// A loader script with the bundle's URLs made versioned.
async fn loader(State(client): State<Client>, request: Request) -> Response {
    let name = request.uri().path().rsplit('/').next().unwrap_or_default();
    let is_module = name.ends_with(".mjs");
    let Some(text) = client.loader_text(name).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let version = client.version().await;
    let text = BUNDLE.iter().fold(text, |text, file| {
        text.replace(file, &[file, "?v=", &version].concat())
    });
    let kind = if is_module {
        "text/javascript; charset=utf-8"
    } else {
        "application/javascript; charset=utf-8"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CACHE_CONTROL, HeaderValue::from_static(LOADER)),
        ],
        text,
    )
        .into_response()
}

impl Client {
    async fn loader_text(&self, name: &str) -> Option<String> {
        match &self.www {
            Www::BuiltIn => embedded::get(&format!("client/{name}"))
                .and_then(|file| String::from_utf8(file.data.into_owned()).ok()),
            Www::Dir(dir) => tokio::fs::read_to_string(dir.join("client").join(name))
                .await
                .ok(),
        }
    }

    /// A short tag that changes whenever a bundle file does.
    async fn version(&self) -> String {
        match &self.www {
            Www::BuiltIn => self
                .built_in_version
                .get_or_init(|| {
                    let mut hasher = DefaultHasher::new();
                    for file in BUNDLE {
                        embedded::get(&format!("client/pkg/{file}"))
                            .map(|f| f.metadata.sha256_hash())
                            .hash(&mut hasher);
                    }
                    format!("{:016x}", hasher.finish())
                })
                .clone(),
            Www::Dir(dir) => {
                let pkg = dir.join("client/pkg");
                let mut hasher = DefaultHasher::new();
                for file in BUNDLE {
                    let meta = tokio::fs::metadata(pkg.join(file)).await.ok();
                    meta.as_ref().map(std::fs::Metadata::len).hash(&mut hasher);
                    meta.and_then(|m| m.modified().ok())
                        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                        .hash(&mut hasher);
                }
                format!("{:016x}", hasher.finish())
            }
        }
    }
}
