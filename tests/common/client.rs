//! A protocol client over a real WebSocket (tokio-tungstenite), with expectations that fail
//! loudly when the server says something else or nothing.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchboard_proto::{
    Auth, CallId, CallState, CallView, ClientFrame, Command, ErrorCode, Event, PROTOCOL_VERSION,
    Resume, ServerFrame,
};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, protocol::frame::coding::CloseCode},
};

/// How long an expected event may take.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u32,
    /// The resume key from the last welcome.
    pub session: String,
    pub resumed: bool,
    /// The highest sequence number received.
    pub last_seq: u64,
}

impl Client {
    pub async fn connect(url: &str) -> Self {
        Self::connect_resuming(url, None).await
    }

    pub async fn connect_resuming(url: &str, resume: Option<Resume>) -> Self {
        let (ws, _) = connect_async(url).await.expect("websocket connects");
        let mut client = Client {
            ws,
            next_id: 0,
            session: String::new(),
            resumed: false,
            last_seq: 0,
        };
        client
            .send_frame(&ClientFrame::new(Command::Hello {
                v: PROTOCOL_VERSION,
                resume,
            }))
            .await;
        match client.next().await.ev {
            Event::Welcome {
                session, resumed, ..
            } => {
                client.session = session;
                client.resumed = resumed;
            }
            other => panic!("expected welcome, got {other:?}"),
        }
        client
    }

    /// Connects with a 4 KiB receive buffer, for tests of readers that fall behind.
    pub async fn connect_with_small_buffer(url: &str) -> Self {
        let addr = server_addr(url);
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("websocket connects");
        let mut client = Client::wrap(ws);
        client
            .send_frame(&ClientFrame::new(Command::Hello {
                v: PROTOCOL_VERSION,
                resume: None,
            }))
            .await;
        client.next().await;
        client
    }

    /// What to present to resume this client's session.
    pub fn resume(&self) -> Resume {
        Resume {
            session: self.session.clone(),
            last_seq: self.last_seq,
        }
    }

    pub async fn send_frame(&mut self, frame: &ClientFrame) {
        let text = serde_json::to_string(frame).unwrap();
        self.send_text(text).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Sends a command with a fresh id and returns the id.
    pub async fn send(&mut self, cmd: Command) -> u32 {
        self.next_id += 1;
        let id = self.next_id;
        self.send_frame(&ClientFrame::with_id(id, cmd)).await;
        id
    }

    /// The next server frame; panics if none comes in time or the connection ends.
    pub async fn next(&mut self) -> ServerFrame {
        match self.try_next(PATIENCE).await {
            Some(Ok(frame)) => frame,
            Some(Err(close)) => panic!("connection closed: {close:?}"),
            None => panic!("no frame within {PATIENCE:?}"),
        }
    }

    /// The next frame, or the close code if the server closed, or None after `wait`.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Result<ServerFrame, Option<u16>>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match message {
                Some(Ok(Message::Text(text))) => {
                    let frame: ServerFrame = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("bad frame {text}: {e}"));
                    if frame.seq != 0 {
                        assert_eq!(
                            frame.seq,
                            self.last_seq + 1,
                            "sequence gap or repeat in {text}"
                        );
                        self.last_seq = frame.seq;
                    }
                    return Some(Ok(frame));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(Err(frame.map(|f| u16::from(f.code))));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Err(None)),
            }
        }
    }

    pub async fn event(&mut self) -> Event {
        self.next().await.ev
    }

    /// Asserts nothing arrives for `wait`.
    pub async fn silent_for(&mut self, wait: Duration) {
        if let Some(frame) = self.try_next(wait).await {
            panic!("expected silence, got {frame:?}");
        }
    }

    /// Asserts that nothing was queued for this client: a command's reply is the very next frame.
    /// Events to one session go out in order, so whatever the server sent before it would come
    /// first; this proves an absence without waiting on a clock.
    pub async fn nothing_pending(&mut self) {
        let id = self
            .send(Command::Answer {
                call: switchboard_proto::CallId("no-such-call".into()),
            })
            .await;
        let frame = self.next().await;
        assert_eq!(
            frame.re,
            Some(id),
            "expected nothing before the reply, got {frame:?}"
        );
    }

    /// Waits for the server to close the connection and returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.try_next(PATIENCE).await {
                Some(Ok(_)) => continue,
                Some(Err(code)) => return code,
                None => panic!("the connection stayed open"),
            }
        }
    }

    pub async fn login(&mut self, id: &str, name: &str) {
        self.send(Command::Login {
            auth: Auth::Demo {
                id: id.into(),
                name: name.into(),
            },
        })
        .await;
        match self.event().await {
            Event::LoggedIn { user } => assert_eq!(user.id, id),
            other => panic!("expected logged_in, got {other:?}"),
        }
    }

    pub async fn call_view(&mut self) -> CallView {
        match self.event().await {
            Event::Call(view) => view,
            other => panic!("expected a call event, got {other:?}"),
        }
    }

    /// The next event must be a call event in `state`.
    pub async fn call_in(&mut self, state: CallState) -> CallView {
        let view = self.call_view().await;
        assert_eq!(view.state, state, "{view:?}");
        view
    }

    pub async fn error(&mut self) -> (Option<u32>, ErrorCode) {
        let frame = self.next().await;
        match frame.ev {
            Event::Error { code, .. } => (frame.re, code),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// Places a call and returns the caller's ringing view.
    pub async fn call(&mut self, to: &str) -> CallView {
        self.send(Command::Call { to: to.into() }).await;
        self.call_in(CallState::Ringing).await
    }

    pub async fn answer(&mut self, call: &CallId) {
        self.send(Command::Answer { call: call.clone() }).await;
    }

    pub async fn presence(&mut self) -> (String, Option<String>, bool) {
        match self.event().await {
            Event::Presence { user, name, online } => (user, name, online),
            other => panic!("expected presence, got {other:?}"),
        }
    }

    pub async fn close(mut self) {
        let _ = self
            .ws
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
    }
}

/// The `host:port` a `ws://` URL names.
fn server_addr(url: &str) -> std::net::SocketAddr {
    let authority = url.trim_start_matches("ws://").split('/').next();
    authority
        .unwrap()
        .parse()
        .expect("a ws:// URL with an IP address and port")
}

/// Opens a WebSocket to `url` from the loopback address `source`, optionally claiming to
/// forward for another client; the server's refusal comes back as the error.
pub async fn open_from(
    url: &str,
    source: &str,
    forwarded_for: Option<&str>,
) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let addr = server_addr(url);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut request = url.into_client_request().unwrap();
    if let Some(client) = forwarded_for {
        request
            .headers_mut()
            .insert("x-forwarded-for", client.parse().unwrap());
    }
    tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .map(|(ws, _)| ws)
}

impl Client {
    /// Wraps a socket that has not said hello (for tests of the opening handshake).
    pub fn wrap(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Client {
            ws,
            next_id: 0,
            session: String::new(),
            resumed: false,
            last_seq: 0,
        }
    }
}
