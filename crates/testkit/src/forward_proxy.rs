//! A forward HTTP proxy on 127.0.0.1 that records what passes through it:
//! the stand-in for the proxy an operator sets in `AIMHARDER_PROXY`. Each
//! request (absolute-form, `GET http://host:port/path HTTP/1.1`) is sent on
//! to its host, its answer passed back, both with `Connection: close`, and
//! the client's connection closed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::listen::serve_each;
use crate::wire::read_message;

/// One request that went through.
#[derive(Clone, Debug)]
pub struct Passed {
    pub method: String,
    /// `host:port` it was sent on to.
    pub authority: String,
    pub path: String,
    pub proxy_authorization: Option<String>,
}

#[derive(Clone)]
pub struct ForwardProxy {
    addr: SocketAddr,
    passed: Arc<Mutex<Vec<Passed>>>,
}

impl ForwardProxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind forward proxy");
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            passed: Arc::default(),
        };
        serve_each(listener, proxy.clone(), |server, stream| async move {
            server.serve(stream).await
        });
        proxy
    }

    /// `http://127.0.0.1:PORT`, optionally with `user:password@`.
    pub fn url(&self, credentials: Option<&str>) -> String {
        match credentials {
            Some(c) => format!("http://{c}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    pub fn passed(&self) -> Vec<Passed> {
        self.passed.lock().unwrap().clone()
    }

    async fn serve(&self, mut client: TcpStream) {
        let mut buf = Vec::new();
        let Some(request) = read_message(&mut client, &mut buf, false).await else {
            return;
        };
        let Some(rest) = request.target.strip_prefix("http://") else {
            let _ = client
                .write_all(b"HTTP/1.1 400 X\r\nContent-Length: 0\r\n\r\n")
                .await;
            return;
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        self.passed.lock().unwrap().push(Passed {
            method: request.method.clone(),
            authority: authority.to_string(),
            path: path.to_string(),
            proxy_authorization: request.header("proxy-authorization").map(str::to_string),
        });
        let Ok(mut upstream) = TcpStream::connect(authority).await else {
            let _ = client
                .write_all(b"HTTP/1.1 502 X\r\nContent-Length: 0\r\n\r\n")
                .await;
            return;
        };
        let first = format!("{} {path} HTTP/1.1", request.method);
        if upstream
            .write_all(&onward(&first, &request.headers, &request.body))
            .await
            .is_err()
        {
            return;
        }
        // The simulated AimHarder keeps its connections open: the answer is
        // read by its framing, not to the end.
        let mut buf = Vec::new();
        let head_only = request.method == "HEAD";
        let Some(answer) = read_message(&mut upstream, &mut buf, head_only).await else {
            return;
        };
        let first = format!(
            "HTTP/1.1 {} {}",
            answer.status.unwrap_or(502),
            answer.reason
        );
        let _ = client
            .write_all(&onward(&first, &answer.headers, &answer.body))
            .await;
    }
}

/// A message sent on with `Connection: close` and its own length: the
/// proxy's own headers (and the framing it read by) stay behind.
fn onward(first: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    const HOP: [&str; 5] = [
        "proxy-authorization",
        "proxy-connection",
        "connection",
        "content-length",
        "transfer-encoding",
    ];
    let mut head = format!("{first}\r\n");
    for (name, value) in headers.iter().filter(|(n, _)| !HOP.contains(&n.as_str())) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
