//! Relay latency of a plugin WebSocket channel (`bench/channels.sh`, docs/benchmarks.md):
//! member A joins a room at URL_A, member B the same room at URL_B (the same server, or another
//! replica on the same PostgreSQL database), then A sends one message at a time and the time
//! until B receives it is recorded. Plain `ws://` (the servers' plain HTTP listener), so TLS is
//! not part of the figure.
//!
//! `channel_latency URL_A URL_B [MESSAGES] [BYTES]`

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

type Socket = WebSocketStream<TcpStream>;

async fn connect(url: &str) -> Socket {
    let authority = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .expect("a ws:// URL");
    let tcp = TcpStream::connect(authority).await.expect("connect");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let (socket, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .expect("WebSocket handshake");
    socket
}

async fn next_text(socket: &mut Socket) -> String {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .expect("frame");
        if let Message::Text(t) = m {
            return t.as_str().to_owned();
        }
    }
}

/// The next frame that is not the host's (presence).
async fn next_relayed(socket: &mut Socket) -> String {
    loop {
        let t = next_text(socket).await;
        if !t.starts_with("{\"megalis\"") {
            return t;
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url_a, url_b) = match (args.first(), args.get(1)) {
        (Some(a), Some(b)) => (a.clone(), b.clone()),
        _ => {
            eprintln!("usage: channel_latency URL_A URL_B [MESSAGES] [BYTES]");
            std::process::exit(2);
        }
    };
    let messages: usize = args.get(2).map_or(2000, |n| n.parse().expect("MESSAGES"));
    let bytes: usize = args.get(3).map_or(100, |n| n.parse().expect("BYTES"));

    let mut a = connect(&url_a).await;
    assert!(next_text(&mut a).await.contains("\"welcome\""));
    let mut b = connect(&url_b).await;
    assert!(next_text(&mut b).await.contains("\"welcome\""));
    // B's arrival reaching A proves the path between the two servers is up.
    assert!(next_text(&mut a).await.contains("\"joined\""));

    let padding = "x".repeat(bytes.saturating_sub(12));
    let warmup = messages / 10;
    let mut samples = Vec::with_capacity(messages);
    for i in 0..warmup + messages {
        let text = format!("{i:010}:{padding}");
        let t0 = Instant::now();
        a.send(Message::text(text.clone())).await.expect("send");
        let got = next_relayed(&mut b).await;
        let elapsed = t0.elapsed();
        assert_eq!(got, text, "messages arrive in order");
        if i >= warmup {
            samples.push(elapsed);
        }
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "messages={} bytes={} p50_us={} p99_us={} mean_us={} max_us={}",
        samples.len(),
        bytes,
        percentile(&samples, 0.50).as_micros(),
        percentile(&samples, 0.99).as_micros(),
        mean.as_micros(),
        samples.last().expect("samples").as_micros(),
    );
}
