//! One room page's signalling socket: reads what the page sends and passes it on, writes what
//! the seats hold for the page, and keeps an idle socket alive (or notices it died).

use std::fmt::Display;
use std::time::Duration;

use axum::extract::ws::{Message, close_code};
use futures_util::{Sink, Stream};
use switchboard_proto::{CallId, Role, close};
use tokio::time::Instant;

use super::SignalOutcome;
use super::message::{EndReason, PageMessage, RelayMessage};
use super::seats::{Seats, ToPage};
use crate::socket::{End, Next, Socket};

/// Messages one page may send per [`BUDGET_WINDOW`]: a negotiation is a handful of messages
/// plus a few dozen candidates, so this only stops a page that floods its peer.
const BUDGET: u32 = 200;
const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// Runs the socket of `role`'s page in `call`'s room until it leaves, hangs up, or the call
/// ends. Generic over the socket halves so tests drive it with channels.
pub async fn run<S, R, E>(
    seats: &Seats,
    call: &CallId,
    role: Role,
    socket: Socket<S, R>,
) -> SignalOutcome
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: Display,
{
    let (outcome, end) = serve(seats, call, role, socket).await;
    if let Some(end) = end {
        tracing::debug!(%call, ?role, ?end, "room socket ended");
    }
    outcome
}

/// The page's loop; also says how the socket ended when the server did not close it cleanly.
async fn serve<S, R, E>(
    seats: &Seats,
    call: &CallId,
    role: Role,
    mut socket: Socket<S, R>,
) -> (SignalOutcome, Option<End>)
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: Display,
{
    let left = |result: Result<(), End>| (SignalOutcome::Left, result.err());
    let Some(mut seat) = seats.join(call, role) else {
        // The link was valid a moment ago but the call has ended since.
        let ended = RelayMessage::Ended {
            reason: EndReason::Ended,
        };
        if let Err(end) = socket.send(Message::Text(ended.to_json().into())).await {
            return (SignalOutcome::Left, Some(end));
        }
        return left(socket.close(close_code::NORMAL, "the call has ended").await);
    };
    let mut budget = Budget::new(Instant::now());

    loop {
        let frame = match socket.next(seat.rx.recv()).await {
            Ok(Next::Queued(Some(ToPage::Text(text)))) => {
                if let Err(end) = socket.send(Message::Text(text.into())).await {
                    return (SignalOutcome::Left, Some(end));
                }
                continue;
            }
            Ok(Next::Queued(Some(ToPage::Close { code, reason }))) => {
                return left(socket.close(code, reason).await);
            }
            // The seats dropped this page's queue because it was full.
            Ok(Next::Queued(None)) => return left(socket.close(close::TOO_SLOW, "too slow").await),
            Ok(Next::Frame(frame)) => frame,
            Err(end) => return (SignalOutcome::Left, Some(end)),
        };
        let now = Instant::now();
        let Message::Text(text) = frame else {
            let error = RelayMessage::Error {
                message: "only JSON text messages are understood".into(),
            };
            seats.reply(&seat, &error);
            continue;
        };
        if !budget.take(now) {
            return left(socket.close(close_code::POLICY, "too many messages").await);
        }
        match PageMessage::parse(text.as_str(), seat.role()) {
            Ok(PageMessage::Hangup) => {
                if seats.hang_up(&seat, now) {
                    let closed = socket.close(close_code::NORMAL, "you hung up").await;
                    return (SignalOutcome::HungUp, closed.err());
                }
                // A page that was already replaced does not speak for the participant.
                return (SignalOutcome::Left, None);
            }
            Ok(message) => {
                seats.forward(&seat, message.to_json());
            }
            Err(message) => seats.reply(&seat, &RelayMessage::Error { message }),
        }
    }
}

/// A fixed-window message budget.
struct Budget {
    window_start: Instant,
    used: u32,
}

impl Budget {
    fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            used: 0,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.window_start) >= BUDGET_WINDOW {
            self.window_start = now;
            self.used = 0;
        }
        self.used += 1;
        self.used <= BUDGET
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures_util::stream;
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;

    use super::*;
    use axum::body::Bytes;

    use crate::socket::Timing;

    const TIMING: Timing = Timing {
        ping_interval: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(60),
        write_timeout: Duration::from_secs(10),
    };

    /// A page connected through channels instead of a socket.
    struct Page {
        to_server: mpsc::Sender<Result<Message, Infallible>>,
        from_server: mpsc::Receiver<Message>,
        task: JoinHandle<SignalOutcome>,
    }

    impl Page {
        /// Connects a page and waits for the seats' first message (the welcome), so pages
        /// opened one after the other join in that order.
        async fn open(seats: &Seats, call: &str, role: Role) -> (Self, String) {
            let (to_server, mut server_in) = mpsc::channel(16);
            let (server_out, from_server) = mpsc::channel(16);
            let sink = futures_util::sink::unfold(server_out, |tx, msg: Message| async move {
                tx.send(msg).await.map(|()| tx)
            });
            let stream = stream::poll_fn(move |cx| server_in.poll_recv(cx));
            let seats = seats.clone();
            let call = CallId(call.into());
            let socket = Socket::new(Box::pin(sink), stream, TIMING);
            let task = tokio::spawn(async move { run(&seats, &call, role, socket).await });
            let mut page = Self {
                to_server,
                from_server,
                task,
            };
            let first = page.hear().await;
            (page, first)
        }

        async fn say(&self, text: &str) {
            self.to_server
                .send(Ok(Message::Text(text.into())))
                .await
                .unwrap();
        }

        /// The next text the page receives (pings skipped).
        async fn hear(&mut self) -> String {
            loop {
                match self.from_server.recv().await.expect("socket still open") {
                    Message::Text(text) => return text.as_str().to_owned(),
                    Message::Ping(_) => continue,
                    other => panic!("expected text, got {other:?}"),
                }
            }
        }

        async fn closed_with(&mut self) -> u16 {
            loop {
                match self.from_server.recv().await {
                    Some(Message::Close(Some(frame))) => return frame.code,
                    Some(Message::Ping(_)) => continue,
                    other => panic!("expected a close frame, got {other:?}"),
                }
            }
        }
    }

    /// Ann (caller) and Bob (callee) both in call `c`, all greetings consumed.
    async fn both(seats: &Seats) -> (Page, Page) {
        let (mut ann, _) = Page::open(seats, "c", Role::Caller).await;
        let (bob, _) = Page::open(seats, "c", Role::Callee).await;
        assert_eq!(ann.hear().await, r#"{"type":"peer_joined"}"#);
        (ann, bob)
    }

    const OFFER: &str = r#"{"type":"offer","n":1,"sdp":"v=0\r\n"}"#;

    #[tokio::test]
    async fn relays_a_negotiation_between_the_two_pages() {
        let seats = Seats::default();
        let (mut ann, welcome) = Page::open(&seats, "c", Role::Caller).await;
        assert_eq!(
            welcome,
            r#"{"type":"welcome","role":"caller","peer_present":false}"#
        );
        let (mut bob, welcome) = Page::open(&seats, "c", Role::Callee).await;
        assert_eq!(
            welcome,
            r#"{"type":"welcome","role":"callee","peer_present":true}"#
        );
        assert_eq!(ann.hear().await, r#"{"type":"peer_joined"}"#);

        ann.say(OFFER).await;
        assert_eq!(bob.hear().await, OFFER);
        let answer = r#"{"type":"answer","n":1,"sdp":"v=0\r\n"}"#;
        bob.say(answer).await;
        assert_eq!(ann.hear().await, answer);
        let mute = r#"{"type":"mute","audio":false,"video":true}"#;
        bob.say(mute).await;
        assert_eq!(ann.hear().await, mute);

        // Closing the page without hanging up is leaving.
        drop(bob.to_server);
        assert!(matches!(bob.task.await.unwrap(), SignalOutcome::Left));
        assert_eq!(ann.hear().await, r#"{"type":"peer_left"}"#);
    }

    #[tokio::test]
    async fn bad_messages_get_an_error_and_change_nothing() {
        let seats = Seats::default();
        let (mut ann, mut bob) = both(&seats).await;
        for bad in [
            "{",
            r#"{"type":"offer","n":1,"sdp":"v=0"}"#,
            r#"{"type":"nonsense"}"#,
        ] {
            bob.say(bad).await;
            let error = bob.hear().await;
            assert!(
                error.starts_with(r#"{"type":"error","message":"#),
                "{error}"
            );
        }
        bob.to_server
            .send(Ok(Message::Binary(Bytes::from_static(b"\0"))))
            .await
            .unwrap();
        assert!(bob.hear().await.contains("only JSON text"));

        // The socket still works, and Ann heard none of it.
        bob.say(r#"{"type":"answer","n":1,"sdp":"v=0"}"#).await;
        assert_eq!(ann.hear().await, r#"{"type":"answer","n":1,"sdp":"v=0"}"#);
    }

    #[tokio::test]
    async fn hang_up_ends_the_room_for_both() {
        let seats = Seats::default();
        let (mut ann, mut bob) = both(&seats).await;
        ann.say(r#"{"type":"hangup"}"#).await;
        assert_eq!(ann.closed_with().await, close_code::NORMAL);
        assert!(matches!(ann.task.await.unwrap(), SignalOutcome::HungUp));
        assert_eq!(
            bob.hear().await,
            r#"{"type":"ended","reason":"peer_hung_up"}"#
        );
        assert_eq!(bob.closed_with().await, close_code::NORMAL);
        assert!(matches!(bob.task.await.unwrap(), SignalOutcome::Left));

        // A page that comes late is told the call is over.
        let (late, heard) = Page::open(&seats, "c", Role::Callee).await;
        assert_eq!(heard, r#"{"type":"ended","reason":"ended"}"#);
        assert!(matches!(late.task.await.unwrap(), SignalOutcome::Left));
    }

    #[tokio::test]
    async fn the_server_ending_the_call_closes_both_pages() {
        let seats = Seats::default();
        let (mut ann, mut bob) = both(&seats).await;
        seats.end(&CallId("c".into()), Instant::now());
        for page in [&mut ann, &mut bob] {
            assert_eq!(page.hear().await, r#"{"type":"ended","reason":"ended"}"#);
            assert_eq!(page.closed_with().await, close_code::NORMAL);
        }
        assert!(matches!(ann.task.await.unwrap(), SignalOutcome::Left));
    }

    #[tokio::test]
    async fn a_newer_page_replaces_the_older_one() {
        let seats = Seats::default();
        let (mut ann, mut old) = both(&seats).await;
        let (mut new, _) = Page::open(&seats, "c", Role::Callee).await;
        assert_eq!(old.hear().await, r#"{"type":"replaced"}"#);
        assert_eq!(old.closed_with().await, close::REPLACED);
        assert!(matches!(old.task.await.unwrap(), SignalOutcome::Left));
        assert_eq!(ann.hear().await, r#"{"type":"peer_joined"}"#);
        ann.say(OFFER).await;
        assert_eq!(new.hear().await, OFFER);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_page_is_pinged_then_dropped() {
        let seats = Seats::default();
        let (mut ann, _) = Page::open(&seats, "c", Role::Caller).await;
        assert!(matches!(
            ann.from_server.recv().await,
            Some(Message::Ping(_))
        ));
        assert_eq!(ann.closed_with().await, close_code::AWAY);
        assert!(matches!(ann.task.await.unwrap(), SignalOutcome::Left));
    }

    #[tokio::test(start_paused = true)]
    async fn a_flooding_page_is_cut_off() {
        let seats = Seats::default();
        let (mut ann, _) = Page::open(&seats, "c", Role::Caller).await;
        let mute = r#"{"type":"mute","audio":true,"video":true}"#;
        for _ in 0..=BUDGET {
            ann.say(mute).await;
        }
        assert_eq!(ann.closed_with().await, close_code::POLICY);
    }
}
