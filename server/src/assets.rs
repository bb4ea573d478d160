//! The browser client's files under `/client`: the bundle (`pkg/`) gzip-compressed when the
//! build left a `.gz` beside a file and cached for a year under a versioned URL, and the two
//! loader scripts, which name that version and are cached only briefly.
//!
//! The version is taken from the bundle files' size and modification time on every request,
//! so a rebuilt bundle is picked up without a restart.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::services::ServeDir;

/// The bundle's files, as wasm-bindgen names them; the loaders refer to them by these names.
const BUNDLE: [&str; 2] = ["switchboard_client.js", "switchboard_client_bg.wasm"];
/// A versioned bundle file never changes: a year, and no revalidation.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The loaders name the current version, so a new bundle reaches pages within this time.
const LOADER: &str = "public, max-age=300";

/// Routes for `/client/…`, serving from `www/client`.
pub fn routes(www: &Path) -> Router {
    let dir = www.join("client");
    let files = ServeDir::new(&dir).precompressed_gzip();
    Router::new()
        .route("/client/switchboard.js", get(loader))
        .route("/client/switchboard.mjs", get(loader))
        .with_state(dir.clone())
        .nest_service("/client", files)
        .layer(middleware::from_fn_with_state(dir, cache_policy))
}

/// URLs of the current version (`?v=…`) are cached for good; anything else, an older version
/// included (its files have been replaced), is revalidated each time.
async fn cache_policy(State(dir): State<PathBuf>, request: Request, next: Next) -> Response {
    let asked = request
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("v="))
        .map(str::to_owned);
    let versioned = match asked {
        Some(v) => v == version(&dir.join("pkg")).await,
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
async fn loader(State(dir): State<PathBuf>, request: Request) -> Response {
    let name = request.uri().path().rsplit('/').next().unwrap_or_default();
    let (is_module, path) = (name.ends_with(".mjs"), dir.join(name));
    let Ok(text) = tokio::fs::read_to_string(&path).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let version = version(&dir.join("pkg")).await;
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

/// A short tag that changes whenever a bundle file does.
async fn version(pkg: &Path) -> String {
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
