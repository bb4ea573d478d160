//! The HTTP surface: `/ws`, `/join/{token}` (and its room signalling), `/healthz`, `/metrics`,
//! and the `www/` directory at `/` with CORS on the client bundle.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, State, WebSocketUpgrade, ws::WebSocket},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use tower_http::{cors::CorsLayer, services::ServeDir};

use crate::{
    hub::LinkAction,
    rooms::{BuiltinRoom, JoinTarget, RoomProvider, SignalOutcome},
    session::{self, SessionContext},
};

/// Socket messages larger than this are refused by the WebSocket layer itself; smaller ones over
/// the protocol's limit get a typed error from the session.
const TRANSPORT_MESSAGE_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub session: SessionContext,
    /// Origins allowed to open WebSockets besides the server's own.
    pub allowed_origins: Arc<Vec<String>>,
    pub rooms: Arc<dyn RoomProvider>,
    /// The built-in room, when it is the provider: it also runs its pages' signalling.
    pub builtin: Option<Arc<BuiltinRoom>>,
}

pub fn router(state: AppState, www: &std::path::Path) -> Router {
    let client = crate::assets::routes(www).layer(CorsLayer::permissive().allow_credentials(false));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/ws", get(websocket))
        .route("/join/{token}", get(join))
        .route("/join/{token}/signal", get(signal))
        .with_state(state)
        .merge(client)
        .fallback_service(ServeDir::new(www))
}

async fn healthz(State(state): State<AppState>) -> Response {
    if state.session.hub.is_running() {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not accepting sessions").into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.session.metrics.render(),
    )
}

/// Browsers always send `Origin` on a WebSocket upgrade; a request without one is not from a
/// page (and could claim any origin anyway), so it is let through.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let Some(origin) = crate::config::normalize_origin(origin) else {
        return false;
    };
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        });
    own || allowed.contains(&origin)
}

async fn websocket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.allowed_origins) {
        return (
            StatusCode::FORBIDDEN,
            "this site's origin may not connect to this server",
        )
            .into_response();
    }
    let limits = &state.session.limits;
    upgrade
        .read_buffer_size(limits.socket_buffer_bytes)
        .write_buffer_size(0)
        .max_write_buffer_size(limits.socket_buffer_bytes.max(TRANSPORT_MESSAGE_LIMIT) * 2)
        .max_message_size(TRANSPORT_MESSAGE_LIMIT)
        .max_frame_size(TRANSPORT_MESSAGE_LIMIT)
        .on_upgrade(move |socket: WebSocket| session::serve(socket, state.session))
}

async fn join(
    State(state): State<AppState>,
    method: Method,
    Path(token): Path<String>,
) -> Response {
    let hub = &state.session.hub;
    // A HEAD asks whether the link still works (a room page checking before it reconnects, a
    // link preview): it must not answer the call.
    let head = method == Method::HEAD;
    let action = if head {
        LinkAction::Peek
    } else {
        LinkAction::Join
    };
    let Some(joiner) = hub.link(token.clone(), action).await else {
        return page(
            StatusCode::NOT_FOUND,
            "No such call",
            "This link is not valid, or its call has ended.",
        );
    };
    if head {
        return personal(StatusCode::OK.into_response());
    }
    match state.rooms.join(&joiner).await {
        Ok(JoinTarget::Redirect(url)) => personal(Redirect::to(&url).into_response()),
        Ok(JoinTarget::Page(html)) => personal(Html(html).into_response()),
        Err(e) => {
            tracing::warn!(provider = state.rooms.name(), call = %joiner.room.id, error = %e, "no room");
            hub.link(token, LinkAction::RoomFailed(e.to_string())).await;
            page(
                StatusCode::BAD_GATEWAY,
                "The room is not available",
                &format!(
                    "The conference room could not be opened ({e}). Try the link again in a moment."
                ),
            )
        }
    }
}

async fn signal(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(builtin) = state.builtin.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The room page is served by this server, so only its own origin may signal.
    if !origin_allowed(&headers, &[]) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let hub = state.session.hub.clone();
    let Some(joiner) = hub.link(token.clone(), LinkAction::Join).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    BuiltinRoom::limit_upgrade(upgrade).on_upgrade(move |socket| async move {
        if let SignalOutcome::HungUp = builtin.signal(joiner, socket).await {
            hub.link(token, LinkAction::Hangup).await;
        }
    })
}

/// A personal answer: never cached, never framed by another site, never leaking its address.
fn personal(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    response
}

/// A small HTML page; the texts are escaped, whatever they hold.
fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let (title, text) = (
        html_escape::encode_text(title),
        html_escape::encode_text(text),
    );
    let body = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{title}</title>\
         <body style=\"font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto\">\
         <h1>{title}</h1><p>{text}</p></body></html>"
    );
    (status, Html(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: &str, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        h
    }

    #[test]
    fn origins() {
        let allowed = vec!["https://forum.example.org".to_string()];
        assert!(origin_allowed(
            &headers("https://forum.example.org", "sb.example.org"),
            &allowed
        ));
        assert!(origin_allowed(
            &headers("http://127.0.0.1:8080", "127.0.0.1:8080"),
            &allowed
        ));
        assert!(!origin_allowed(
            &headers("https://evil.example", "sb.example.org"),
            &allowed
        ));
        assert!(!origin_allowed(
            &headers("null", "sb.example.org"),
            &allowed
        ));
        assert!(origin_allowed(&HeaderMap::new(), &allowed));
    }
}
