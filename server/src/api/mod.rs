//! The HTTP API for the site's backend, under `/api/v1/`: presence, live calls, call history,
//! and acting for users, in JSON, for holders of a configured key. Every route is registered
//! together with its OpenAPI description, so the document at `/api/v1/openapi.json` lists
//! exactly what the router serves. Without keys nothing is served: everything under `/api/v1`
//! answers 404.

mod auth;
mod calls;
mod error;
mod history;
mod openapi;
mod paging;
mod presence;
mod reader;
mod users;

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwap;

use axum::{
    Extension, Router,
    body::Bytes,
    extract::{
        DefaultBodyLimit,
        rejection::{BytesRejection, QueryRejection},
    },
    http::StatusCode,
    middleware,
    routing::any,
};
use serde::de::DeserializeOwned;
use switchboard_proto::ErrorCode;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use error::ApiError;
pub use reader::{ReadError, Reader};

use crate::{Config, cluster::Cluster, hub::Hub};

/// The largest request body: the API's requests are a few ids and a sentence.
const MAX_BODY: usize = 16 * 1024;

/// The API's settings, validated.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Keys a request may present; several, so one can be replaced without downtime.
    pub keys: Vec<String>,
    /// Requests per second per key (0: no limit).
    pub requests_per_second: u32,
    /// Requests one key may make at once before the rate applies.
    pub burst: u32,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .field("requests_per_second", &self.requests_per_second)
            .field("burst", &self.burst)
            .finish()
    }
}

/// What the handlers use. Cheap to clone.
#[derive(Clone)]
pub struct Api(Arc<Shared>);

struct Shared {
    hub: Hub,
    /// Set on a node of a cluster: presence is read from Redis.
    cluster: Option<Cluster>,
    reader: Reader,
    /// Replaced whole when the configuration is reloaded.
    keys: ArcSwap<auth::Keys>,
    /// How long a caller over `calls_per_minute` should wait for the next call.
    call_interval: Duration,
}

impl Api {
    /// The API as `config` asks for it: `None` without keys. Opens its own connection to the
    /// database the store writes (the SQLite file must exist already).
    pub fn start(
        config: &Config,
        hub: Hub,
        cluster: Option<Cluster>,
    ) -> Result<Option<Self>, ReadError> {
        let Some(settings) = &config.api else {
            return Ok(None);
        };
        let reader = match &config.database_url {
            Some(url) => Reader::postgres(url),
            None => Reader::sqlite(&config.db)?,
        };
        let per_minute = config.limits.calls_per_minute;
        Ok(Some(Self::new(settings, hub, cluster, reader, per_minute)))
    }

    fn new(
        config: &ApiConfig,
        hub: Hub,
        cluster: Option<Cluster>,
        reader: Reader,
        calls_per_minute: u32,
    ) -> Self {
        Self(Arc::new(Shared {
            hub,
            cluster,
            reader,
            keys: ArcSwap::from_pointee(auth::Keys::new(config)),
            call_interval: Duration::from_secs(60) / calls_per_minute.max(1),
        }))
    }

    fn hub(&self) -> &Hub {
        &self.0.hub
    }

    fn cluster(&self) -> Option<&Cluster> {
        self.0.cluster.as_ref()
    }

    fn reader(&self) -> &Reader {
        &self.0.reader
    }

    fn keys(&self) -> arc_swap::Guard<Arc<auth::Keys>> {
        self.0.keys.load()
    }

    /// Takes new keys and rates: the next request is judged by them, and each key's budget
    /// starts afresh.
    pub fn reload(&self, config: &ApiConfig) {
        self.0.keys.store(Arc::new(auth::Keys::new(config)));
    }

    /// A refusal from the hub, as the API answers it.
    fn refused(&self, code: ErrorCode) -> ApiError {
        match code {
            ErrorCode::RateLimited => ApiError::RateLimited {
                retry_after: self.0.call_interval,
            },
            code => code.into(),
        }
    }
}

/// The API's routes. With `None` (no keys configured) every path under `/api/v1` answers 404.
pub fn router(api: Option<Api>) -> Router {
    let Some(api) = api else {
        return unknown();
    };
    let secured = OpenApiRouter::from(unknown())
        .routes(routes!(presence::lookup))
        .routes(routes!(presence::count))
        .routes(routes!(calls::live, calls::place))
        .routes(routes!(calls::get))
        .routes(routes!(calls::end))
        .routes(routes!(history::list))
        .routes(routes!(users::log_out))
        .layer(middleware::from_fn_with_state(api.clone(), auth::authorize));
    let (router, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(secured)
        .routes(routes!(openapi::document))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
        .split_for_parts();
    let json = document.to_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI document could not be written");
        String::from("{}")
    });
    router.layer(Extension(openapi::Document(json.into())))
}

/// Every path under `/api/v1`, answering 404: the endpoints are routes of their own, which
/// take precedence.
fn unknown<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/api/v1", any(no_such_route))
        .route("/api/v1/{*rest}", any(no_such_route))
}

/// Any path under `/api/v1` that is no endpoint.
async fn no_such_route() -> ApiError {
    ApiError::NoSuchRoute
}

/// A request's body, refused `frame_too_large` past [`MAX_BODY`].
fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::FrameTooLarge.into(),
        _ => ApiError::Invalid(rejection.body_text()),
    })
}

/// A request body as JSON of `T`; any content type is taken, so a bare `curl -d` works.
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Invalid(format!("the body: {e}")))
}

/// A query string that does not parse.
fn invalid_query(rejection: QueryRejection) -> ApiError {
    ApiError::Invalid(rejection.body_text())
}
