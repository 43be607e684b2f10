//! The counting proxy between the binary and `postrust`: REST requests by
//! method, how long each took to be answered, and connections opened.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aimharder_testkit::listen::serve_each;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const METHODS: [&str; 4] = ["GET", "PATCH", "POST", "other"];

/// REST requests by method, and the summed time until `postrust` began to
/// answer each (as seen from the proxy).
#[derive(Default)]
pub struct Counters {
    requests: [AtomicU64; 4],
    wait_micros: [AtomicU64; 4],
    answered: [AtomicU64; 4],
    connections: AtomicU64,
}

#[derive(Clone, Copy, Default)]
pub struct Counts {
    pub requests: [u64; 4],
    /// Mean time to the first byte of the answer.
    pub mean_wait: [Duration; 4],
    /// Connections the binary opened to the REST server.
    pub connections: u64,
}

impl Counts {
    pub fn get(&self) -> u64 {
        self.requests[0]
    }
    pub fn patch(&self) -> u64 {
        self.requests[1]
    }
    pub fn post(&self) -> u64 {
        self.requests[2]
    }
    pub fn total(&self) -> u64 {
        self.requests.iter().sum()
    }
}

impl Counters {
    pub fn snapshot(&self) -> Counts {
        let mut counts = Counts {
            connections: self.connections.load(Ordering::SeqCst),
            ..Counts::default()
        };
        for i in 0..METHODS.len() {
            counts.requests[i] = self.requests[i].load(Ordering::SeqCst);
            let answered = self.answered[i].load(Ordering::SeqCst).max(1);
            counts.mean_wait[i] =
                Duration::from_micros(self.wait_micros[i].load(Ordering::SeqCst) / answered);
        }
        counts
    }
}

/// A TCP proxy in front of `postrust` that reads the request lines going
/// through it. The binary talks HTTP/1.1 without pipelining, so the first
/// bytes back after a request are that request's answer.
pub struct CountingProxy {
    pub addr: SocketAddr,
    pub counts: Arc<Counters>,
}

impl CountingProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counters::default());
        serve_each(listener, counts.clone(), move |counts, client| {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            async move {
                if let Ok(server) = TcpStream::connect(upstream).await {
                    relay(client, server, counts).await;
                }
            }
        });
        Self { addr, counts }
    }
}

async fn relay(client: TcpStream, server: TcpStream, counts: Arc<Counters>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    // Requests sent and not yet answered: (method index, when it was sent).
    let pending: Arc<Mutex<VecDeque<(usize, Instant)>>> = Arc::default();

    let (sent, up_counts) = (pending.clone(), counts.clone());
    let upstream = async move {
        let mut scanner = RequestScanner::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            scanner.feed(&buf[..n], |method| {
                up_counts.requests[method].fetch_add(1, Ordering::SeqCst);
                sent.lock().unwrap().push_back((method, Instant::now()));
            });
            if server_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_tx.shutdown().await;
    };
    let downstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some((method, at)) = pending.lock().unwrap().pop_front() {
                let waited = at.elapsed().as_micros() as u64;
                counts.wait_micros[method].fetch_add(waited, Ordering::SeqCst);
                counts.answered[method].fetch_add(1, Ordering::SeqCst);
            }
            if client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_tx.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// Finds request heads in a client→server byte stream, skipping bodies by
/// their `Content-Length`, so a body can never be mistaken for a request.
#[derive(Default)]
struct RequestScanner {
    head: Vec<u8>,
    body_left: usize,
}

impl RequestScanner {
    fn feed(&mut self, mut data: &[u8], mut on_request: impl FnMut(usize)) {
        while !data.is_empty() {
            if self.body_left > 0 {
                let skip = self.body_left.min(data.len());
                self.body_left -= skip;
                data = &data[skip..];
                continue;
            }
            // Append up to the end of the head, if it is in this chunk.
            let before = self.head.len();
            self.head.extend_from_slice(data);
            let search_from = before.saturating_sub(3);
            let Some(end) = self.head[search_from..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| search_from + p + 4)
            else {
                return;
            };
            data = &data[end - before..];
            let head = String::from_utf8_lossy(&self.head[..end]).into_owned();
            self.head.clear();
            let method = head.split(' ').next().unwrap_or("");
            on_request(METHODS.iter().position(|m| *m == method).unwrap_or(3));
            for line in head.lines() {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let name = name.trim().to_ascii_lowercase();
                if name == "content-length" {
                    self.body_left = value.trim().parse().unwrap_or(0);
                }
                assert!(
                    !(name == "transfer-encoding" && value.contains("chunked")),
                    "the counting proxy does not follow chunked request bodies"
                );
            }
        }
    }
}
