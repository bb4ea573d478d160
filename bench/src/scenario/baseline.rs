//! The machine's own ceiling, without Switchboard: how many small WebSocket-sized writes per
//! second one sending thread can push over loopback TCP to sockets read by another thread
//! (presence fan-out and calls cost at least one such write per event delivered), and the
//! round-trip time of one small message to an echoing thread and back at 1,000 per second
//! (a ring is one such round: caller to server, server to callee).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use super::{header, print_median};
use crate::{
    cli::Common,
    stats::{Histogram, Summary, median_summary},
};

/// The size of a presence event frame as the server sends it.
const FRAME: usize = 80;

pub async fn run(common: &Common, sockets: usize, secs: f64) -> anyhow::Result<bool> {
    header("baseline");
    let mut rates = Vec::new();
    let mut rounds: Vec<Summary> = Vec::new();
    for run in 1..=common.runs {
        let (written, read) = tokio::task::spawn_blocking(move || measure(sockets, secs)).await??;
        println!(
            "run {run}: {sockets} sockets: {written:.0} writes/s of {FRAME} bytes, {read:.0} frames/s read"
        );
        let rate = read;
        let round = tokio::task::spawn_blocking(move || round_trips(secs)).await??;
        println!("  echo round trip at 1,000/s: {round}");
        rates.push(rate);
        rounds.push(round);
    }
    println!("medians of {} runs:", common.runs);
    print_median(
        "loopback frames read (one thread sends, one reads)",
        "/s",
        &rates,
    );
    println!("  echo round trip at 1,000/s: {}", median_summary(&rounds));
    Ok(true)
}

/// One thread sends a frame every millisecond over loopback TCP; another echoes it back.
fn round_trips(secs: f64) -> anyhow::Result<Summary> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut buf = [0u8; FRAME];
        while stream.read_exact(&mut buf).is_ok() {
            stream.write_all(&buf)?;
        }
        Ok(())
    });
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut histogram = Histogram::default();
    let mut buf = [b'x'; FRAME];
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed().as_secs_f64() < secs {
        let at = Instant::now();
        stream.write_all(&buf)?;
        stream.read_exact(&mut buf)?;
        histogram.record(at.elapsed());
        sent += 1;
        let next = started + Duration::from_millis(sent);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    drop(stream);
    let _ = echo.join();
    Ok(histogram.summary())
}

/// One thread accepts and writes one frame to each socket in turn; another reads them all.
/// Frames written and frames read per second, over the same time.
fn measure(sockets: usize, secs: f64) -> anyhow::Result<(f64, f64)> {
    let rt = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr: SocketAddr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, received) = (stop.clone(), received.clone());
        let rt = rt()?;
        std::thread::spawn(move || -> anyhow::Result<()> {
            rt.block_on(async {
                for _ in 0..sockets {
                    let mut stream = TcpStream::connect(addr).await?;
                    stream.set_nodelay(true)?;
                    let (stop, received) = (stop.clone(), received.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 4096];
                        while !stop.load(Ordering::Relaxed) {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => received.fetch_add(n as u64, Ordering::Relaxed),
                            };
                        }
                    });
                }
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(())
            })
        })
    };
    let rt = rt()?;
    let rates = rt.block_on(async {
        let listener = TcpListener::from_std(listener)?;
        let mut streams = Vec::with_capacity(sockets);
        for _ in 0..sockets {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            streams.push(stream);
        }
        let frame = [b'x'; FRAME];
        let read_before = received.load(Ordering::Relaxed);
        let started = Instant::now();
        let mut sent = 0u64;
        while started.elapsed().as_secs_f64() < secs {
            for stream in &mut streams {
                stream.write_all(&frame).await?;
                sent += 1;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let read = (received.load(Ordering::Relaxed) - read_before) as f64 / FRAME as f64;
        anyhow::Ok((sent as f64 / seconds, read / seconds))
    })?;
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    anyhow::ensure!(rates.1 > 0.0, "nothing was read");
    Ok(rates)
}
