//! A forward HTTP proxy on 127.0.0.1 that records what passes through it:
//! the stand-in for the proxy an operator sets in `AIMHARDER_PROXY`. Each
//! request (absolute-form, `GET http://host:port/path HTTP/1.1`) is sent on
//! to its host with `Connection: close`, its answer passed back, and the
//! client's connection closed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::aimharder::wire::{read_body, read_head};
use crate::listen::serve_each;

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
        let Some(head) = read_head(&mut client, &mut buf).await else {
            return;
        };
        let Some(body) = read_body(&mut client, &mut buf, &head).await else {
            return;
        };
        let mut lines = head.lines();
        let first = lines.next().unwrap_or_default().to_string();
        let mut words = first.split_whitespace();
        let method = words.next().unwrap_or("GET").to_string();
        let target = words.next().unwrap_or("/");
        let Some(rest) = target.strip_prefix("http://") else {
            let _ = client
                .write_all(b"HTTP/1.1 400 X\r\nContent-Length: 0\r\n\r\n")
                .await;
            return;
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let mut headers = String::new();
        let mut proxy_authorization = None;
        for line in lines {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match name.as_str() {
                "proxy-authorization" => {
                    proxy_authorization = line.split_once(':').map(|(_, v)| v.trim().to_string())
                }
                "proxy-connection" | "connection" => {}
                _ => {
                    headers.push_str(line);
                    headers.push_str("\r\n");
                }
            }
        }
        self.passed.lock().unwrap().push(Passed {
            method: method.clone(),
            authority: authority.to_string(),
            path: path.to_string(),
            proxy_authorization,
        });
        let Ok(mut upstream) = TcpStream::connect(authority).await else {
            let _ = client
                .write_all(b"HTTP/1.1 502 X\r\nContent-Length: 0\r\n\r\n")
                .await;
            return;
        };
        let mut request =
            format!("{method} {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n").into_bytes();
        request.extend_from_slice(&body);
        if upstream.write_all(&request).await.is_err() {
            return;
        }
        // The simulated AimHarder keeps its connections open: read the one
        // answer by its length rather than to the end.
        let mut buf = Vec::new();
        let Some(head) = read_head(&mut upstream, &mut buf).await else {
            return;
        };
        let Some(body) = read_body(&mut upstream, &mut buf, &head).await else {
            return;
        };
        let mut answer = format!("{head}\r\nConnection: close\r\n\r\n").into_bytes();
        answer.extend_from_slice(&body);
        let _ = client.write_all(&answer).await;
    }
}
