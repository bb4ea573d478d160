//! One WebSocket's transport, shared by `/ws` and the room pages' signalling: every write has a
//! deadline, an idle socket is pinged, and a peer that stays silent or stops reading is let go.
//! Generic over `Sink`/`Stream`, so tests drive it with channels and paused time.

use std::{fmt::Display, future::Future, time::Duration};

use axum::{
    body::Bytes,
    extract::ws::{CloseFrame, Message, close_code},
};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// The most a close reason may take: a control frame carries 125 bytes, 2 of them the code.
const MAX_CLOSE_REASON: usize = 123;

/// How long a socket may stay quiet, and how long one write may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub ping_interval: Duration,
    /// A peer not heard from (not even a pong) for this long is gone.
    pub idle_timeout: Duration,
    /// A write the peer does not take within this long means it stopped reading. Without it a
    /// task blocked in a write would never ping, never notice the silence, and hold its socket
    /// and queue until the process ends.
    pub write_timeout: Duration,
}

/// Why a socket stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The peer closed, or the connection dropped.
    Closed,
    /// A frame could not be read (too large, not WebSocket); the text says why.
    ReadFailed(String),
    /// Nothing was heard for the idle timeout; the peer was told so.
    Silent,
    /// A write did not complete within the write timeout: the peer stopped reading, so no
    /// goodbye can reach it either.
    Stalled,
    /// A write failed: the connection is gone.
    WriteFailed,
}

/// What the socket has for its owner.
#[derive(Debug)]
pub enum Next<T> {
    /// A text or binary frame from the peer (pings, pongs and close are handled here).
    Frame(Message),
    /// What the owner's queue produced.
    Queued(T),
}

pub struct Socket<S, R> {
    sink: S,
    stream: R,
    timing: Timing,
    ping: Interval,
    last_heard: Instant,
}

impl<S, R, E> Socket<S, R>
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: Display,
{
    pub fn new(sink: S, stream: R, timing: Timing) -> Self {
        let now = Instant::now();
        let mut ping = tokio::time::interval_at(now + timing.ping_interval, timing.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            sink,
            stream,
            timing,
            ping,
            last_heard: now,
        }
    }

    /// Waits for the peer's next frame or for `queued` (which must be cancel-safe, like
    /// `mpsc::Receiver::recv`), pinging the peer meanwhile.
    pub async fn next<T>(&mut self, queued: impl Future<Output = T>) -> Result<Next<T>, End> {
        let mut queued = std::pin::pin!(queued);
        loop {
            tokio::select! {
                item = &mut queued => return Ok(Next::Queued(item)),
                frame = self.stream.next() => {
                    let frame = match frame {
                        Some(Ok(frame)) => frame,
                        Some(Err(e)) => return Err(End::ReadFailed(e.to_string())),
                        None => return Err(End::Closed),
                    };
                    self.last_heard = Instant::now();
                    match frame {
                        Message::Close(_) => return Err(End::Closed),
                        Message::Ping(_) | Message::Pong(_) => continue,
                        frame => return Ok(Next::Frame(frame)),
                    }
                }
                _ = self.ping.tick() => {
                    if self.last_heard.elapsed() >= self.timing.idle_timeout {
                        self.close(close_code::AWAY, "no answer to pings").await?;
                        return Err(End::Silent);
                    }
                    self.send(Message::Ping(Bytes::new())).await?;
                }
            }
        }
    }

    /// Writes one frame within the write timeout.
    pub async fn send(&mut self, message: Message) -> Result<(), End> {
        match tokio::time::timeout(self.timing.write_timeout, self.sink.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::WriteFailed),
            Err(_) => Err(End::Stalled),
        }
    }

    /// Says goodbye with a close frame, within the write timeout like any write.
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), End> {
        self.send(close_message(code, reason)).await
    }
}

/// A close frame; the reason is cut to what a control frame holds, at a character boundary.
pub fn close_message(code: u16, reason: &str) -> Message {
    let reason = &reason[..reason.floor_char_boundary(MAX_CLOSE_REASON)];
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tokio::sync::mpsc;

    use super::*;

    const TIMING: Timing = Timing {
        ping_interval: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(50),
        write_timeout: Duration::from_secs(10),
    };

    type Incoming = mpsc::Sender<Result<Message, Infallible>>;

    /// A socket whose peer is two channels; the peer's inbox holds `room` frames.
    fn socket(
        room: usize,
    ) -> (
        Socket<impl Sink<Message> + Unpin, impl Stream<Item = Result<Message, Infallible>> + Unpin>,
        Incoming,
        mpsc::Receiver<Message>,
    ) {
        let (to_server, mut server_in) = mpsc::channel(16);
        let (server_out, from_server) = mpsc::channel(room);
        let sink = futures_util::sink::unfold(server_out, |tx, msg: Message| async move {
            tx.send(msg).await.map(|()| tx)
        });
        let stream = futures_util::stream::poll_fn(move |cx| server_in.poll_recv(cx));
        (
            Socket::new(Box::pin(sink), stream, TIMING),
            to_server,
            from_server,
        )
    }

    /// Fails a test whose socket would wait forever, rather than hang it.
    async fn within_an_hour<T>(f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(3600), f)
            .await
            .expect("the socket gave up")
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_pinged_then_told_and_let_go() {
        let (mut socket, _peer, mut heard) = socket(16);
        let start = Instant::now();
        let end = socket.next(std::future::pending::<()>()).await.unwrap_err();
        assert_eq!(end, End::Silent);
        assert_eq!(start.elapsed(), Duration::from_secs(60));
        for _ in 0..2 {
            assert!(matches!(heard.recv().await, Some(Message::Ping(_))));
        }
        match heard.recv().await {
            Some(Message::Close(Some(frame))) => assert_eq!(frame.code, close_code::AWAY),
            other => panic!("expected a close, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn frames_and_pongs_keep_a_peer_alive() {
        let (mut socket, peer, _heard) = socket(16);
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(30)).await;
            peer.send(Ok(Message::Pong(Bytes::new()))).await.unwrap();
            peer.send(Ok(Message::Text("hi".into()))).await.unwrap();
            let next = socket.next(std::future::pending::<()>()).await.unwrap();
            assert!(matches!(next, Next::Frame(Message::Text(_))));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_is_dropped_at_the_write_deadline() {
        // Room for one frame, which the peer never takes.
        let (mut socket, _peer, _heard) = socket(1);
        socket.send(Message::Text("one".into())).await.unwrap();
        let start = Instant::now();
        let send = socket.send(Message::Text("two".into()));
        assert_eq!(within_an_hour(send).await, Err(End::Stalled));
        assert_eq!(start.elapsed(), TIMING.write_timeout);
        // A ping or a goodbye is held to the same deadline.
        assert_eq!(
            socket.close(close_code::NORMAL, "bye").await,
            Err(End::Stalled)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_ping_ends_the_wait() {
        let (mut socket, _peer, _heard) = socket(1);
        socket.send(Message::Text("fills".into())).await.unwrap();
        let start = Instant::now();
        let next = socket.next(std::future::pending::<()>());
        assert_eq!(within_an_hour(next).await.unwrap_err(), End::Stalled);
        assert_eq!(start.elapsed(), TIMING.ping_interval + TIMING.write_timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn queued_items_and_a_closing_peer_reach_the_owner() {
        let (mut socket, peer, _heard) = socket(16);
        let (tx, mut rx) = mpsc::channel(1);
        tx.send(7).await.unwrap();
        assert!(matches!(
            socket.next(rx.recv()).await,
            Ok(Next::Queued(Some(7)))
        ));
        peer.send(Ok(Message::Close(None))).await.unwrap();
        assert_eq!(socket.next(rx.recv()).await.unwrap_err(), End::Closed);
        drop(peer);
        assert_eq!(socket.next(rx.recv()).await.unwrap_err(), End::Closed);
    }

    #[test]
    fn close_reasons_are_cut_by_bytes_at_a_character_boundary() {
        let reason = "\u{1F4DE}".repeat(40); // 160 bytes of four-byte characters
        let Message::Close(Some(frame)) = close_message(1000, &reason) else {
            panic!("a close frame");
        };
        assert_eq!(frame.reason.len(), 120);
        assert!(reason.starts_with(frame.reason.as_str()));
        let Message::Close(Some(frame)) = close_message(1000, &"é".repeat(100)) else {
            panic!("a close frame");
        };
        assert_eq!(frame.reason.len(), 122);
        let Message::Close(Some(frame)) = close_message(1000, "short") else {
            panic!("a close frame");
        };
        assert_eq!(frame.reason.as_str(), "short");
    }
}
