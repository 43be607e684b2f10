//! A local HTTP server that answers 200 to everything and records each
//! request (method, target, body): a stand-in for healthchecks.io.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::listen::serve_each;
use crate::wire::read_message;

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
    let Some(message) = read_message(&mut stream, &mut Vec::new(), false).await else {
        return;
    };
    let request = Request {
        body: message.text(),
        method: message.method,
        target: message.target,
    };
    seen.lock().unwrap().push(request);
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
        .await;
}
