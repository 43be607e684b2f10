//! A local HTTP server that answers 200 to everything and records each
//! request (method, target, body): a stand-in for healthchecks.io.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::listen::serve_each;

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub body: String,
}

#[derive(Clone)]
pub struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Recorder {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let recorder = Self {
            addr: listener.local_addr().unwrap(),
            seen: Arc::default(),
        };
        serve_each(listener, recorder.seen.clone(), |seen, stream| {
            record(stream, seen)
        });
        recorder
    }

    /// `http://127.0.0.1:PORT`, with no path.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}/ping/abc", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request off `stream`, keeps it in `seen`, and answers 200.
async fn record(mut stream: TcpStream, seen: Arc<Mutex<Vec<Request>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, body_len) = loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end, len);
        }
    };
    while buf.len() < head_end + 4 + body_len {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let request = Request {
        method: first.next().unwrap_or("").to_string(),
        target: first.next().unwrap_or("").to_string(),
        body: String::from_utf8_lossy(&buf[head_end + 4..]).into_owned(),
    };
    seen.lock().unwrap().push(request);
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
        .await;
}
