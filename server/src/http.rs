//! The HTTP surface: `/ws`, `/join/{token}` (and its room signalling), `/healthz`, `/metrics`,
//! and the `www/` directory at `/` with CORS on the client bundle.

use std::{net::SocketAddr, sync::Arc};

use arc_swap::ArcSwap;

use axum::{
    Router,
    extract::{ConnectInfo, Path, State, WebSocketUpgrade, ws::WebSocket},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};

use crate::{
    admission::Refusal,
    cluster::Cluster,
    connection::{self, Client, ConnectionContext},
    hub::LinkAction,
    origin::Origins,
    rooms::{BuiltinRoom, JoinTarget, RoomError, RoomProvider, SignalOutcome},
    store::Health,
};

/// Socket messages larger than this are refused by the WebSocket layer itself; smaller ones over
/// the protocol's limit get a typed error from the session.
const TRANSPORT_MESSAGE_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub session: ConnectionContext,
    /// The pages allowed to open WebSockets; a reload may replace them.
    pub origins: Arc<ArcSwap<Origins>>,
    /// Whether the database takes writes: `/healthz` fails while it does not.
    pub store: Health,
    /// Set on a node of a cluster: `/healthz` fails while it cannot reach Redis.
    pub cluster: Option<Cluster>,
    pub rooms: Arc<dyn RoomProvider>,
    /// The built-in room, when it is the provider: it also runs its pages' signalling.
    pub builtin: Option<Arc<BuiltinRoom>>,
}

/// The public routes; `/metrics` among them unless it is served on a listener of its own.
pub fn router(state: AppState, www: &crate::assets::Www, with_metrics: bool) -> Router {
    let files = crate::assets::routes(www);
    let routes = Router::new().route("/healthz", get(healthz));
    let routes = if with_metrics {
        routes.route("/metrics", get(metrics))
    } else {
        routes
    };
    routes
        .route("/ws", get(websocket))
        .route("/join/{token}", get(join))
        .route("/join/{token}/signal", get(signal))
        .with_state(state)
        .merge(files)
}

async fn healthz(State(state): State<AppState>) -> Response {
    if !state.session.hub.is_running() {
        return (StatusCode::SERVICE_UNAVAILABLE, "not accepting sessions").into_response();
    }
    if state.cluster.as_ref().is_some_and(|c| !c.is_up()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Redis cannot be reached: new calls are refused",
        )
            .into_response();
    }
    match state.store.problem() {
        None => "ok".into_response(),
        Some(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the database takes no writes: {problem}"),
        )
            .into_response(),
    }
}

/// `/metrics` alone, for the private metrics listener.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
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

async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !state.origins.load().admits_site(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "this site's origin may not connect to this server",
        )
            .into_response();
    }
    let client = match admit(&state.session, peer, &headers, true) {
        Ok(client) => client,
        Err(refusal) => return (refusal.status(), refusal.reason()).into_response(),
    };
    let buffer = state.session.limits.load().socket_buffer_bytes;
    upgrade
        .read_buffer_size(buffer)
        .write_buffer_size(0)
        .max_write_buffer_size(buffer.max(TRANSPORT_MESSAGE_LIMIT) * 2)
        .max_message_size(TRANSPORT_MESSAGE_LIMIT)
        .max_frame_size(TRANSPORT_MESSAGE_LIMIT)
        .on_upgrade(move |socket: WebSocket| connection::serve(socket, state.session, client))
}

/// A place at the admission gate for a WebSocket from `peer`, or why there is none.
/// `new_session`: the socket will make a session, so the session cap applies too.
fn admit(
    ctx: &ConnectionContext,
    peer: SocketAddr,
    headers: &HeaderMap,
    new_session: bool,
) -> Result<Client, Refusal> {
    let ip = ctx.admission.client_ip(peer, headers);
    let max_sessions = ctx.limits.load().max_sessions;
    // Sessions outlive their connections by the grace period, so a client that reconnects
    // without resuming could pile them up under the connection caps.
    let sessions_full =
        new_session && max_sessions != 0 && ctx.metrics.sessions.get() >= max_sessions as i64;
    let ticket = if sessions_full {
        Err(Refusal::ServerFull)
    } else {
        ctx.admission.admit(ip)
    };
    match ticket {
        Ok(ticket) => Ok(Client { ip, ticket }),
        Err(refusal) => {
            ctx.metrics.turned_away(match refusal {
                Refusal::AddressFull => "address_full",
                Refusal::ServerFull => "server_full",
            });
            Err(refusal)
        }
    }
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
    let target = state.rooms.join(&joiner).await;
    // The call may have ended while its room was being made, too early for the end of the call
    // to release a room this click made: release it now.
    let ended = matches!(target, Err(RoomError::CallEnded))
        || hub.link(token.clone(), LinkAction::Peek).await.is_none();
    if ended {
        let (rooms, room) = (state.rooms.clone(), joiner.room.clone());
        tokio::spawn(async move { rooms.call_over(&room).await });
        return page(
            StatusCode::GONE,
            "The call has ended",
            "This call ended before its room was ready.",
        );
    }
    let failure = match target {
        Ok(JoinTarget::Page(html)) => return personal(Html(html).into_response()),
        Ok(JoinTarget::Redirect(url)) => match see_other(&url) {
            Some(redirect) => return personal(redirect),
            // Not the address itself: it may carry an entry ticket.
            None => "the room's address cannot be sent as a redirect".to_string(),
        },
        Err(e) => e.to_string(),
    };
    // The cause (server names, OpenMeetings' own messages) is for the log and the call's
    // record; the participant gets a plain sentence.
    tracing::warn!(provider = state.rooms.name(), call = %joiner.room.id, error = %failure, "no room");
    hub.link(token, LinkAction::RoomFailed(failure)).await;
    page(
        StatusCode::BAD_GATEWAY,
        "The room is not available",
        "The conference room could not be opened. Try the link again in a moment.",
    )
}

async fn signal(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(builtin) = state.builtin.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The room page is served by this server, so only its own origin may signal.
    if !state.origins.load().admits_own(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    // Room pages count towards their address's connections like any socket.
    let client = match admit(&state.session, peer, &headers, false) {
        Ok(client) => client,
        Err(refusal) => return (refusal.status(), refusal.reason()).into_response(),
    };
    let hub = state.session.hub.clone();
    let Some(joiner) = hub.link(token.clone(), LinkAction::Join).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let timing = state.session.limits.load().timing;
    BuiltinRoom::limit_upgrade(upgrade).on_upgrade(move |socket| async move {
        let _held = client.ticket;
        if let SignalOutcome::HungUp = builtin.signal(joiner, socket, timing).await {
            hub.link(token, LinkAction::Hangup).await;
        }
    })
}

/// A 303 to `url`, or None if `url` is not a valid `Location`: axum's `Redirect` panics on
/// control characters, and passes raw non-ASCII bytes that browsers decode as they please.
fn see_other(url: &str) -> Option<Response> {
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let location = HeaderValue::from_str(url).ok()?;
    Some((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response())
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

    #[test]
    fn a_redirect_target_that_cannot_be_a_header_is_no_redirect() {
        let redirect = see_other("https://meet.example.org/switchboard-abc").unwrap();
        assert_eq!(redirect.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            redirect.headers()[header::LOCATION],
            "https://meet.example.org/switchboard-abc"
        );
        for bad in [
            "https://meet.example.org/räume",
            "https://meet.example.org/\r\nSet-Cookie: a=b",
        ] {
            assert!(see_other(bad).is_none(), "{bad:?}");
        }
    }
}
