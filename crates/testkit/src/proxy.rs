//! A fault-injecting HTTP proxy in front of the test's postrust: forwards
//! requests as they are, except those a rule picks, which get a status of
//! the proxy's choosing or a dropped connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::listen::serve_each;

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    Status(u16),
    /// Close the connection without forwarding the request.
    Drop,
    /// Forward the request, let it be applied, then close the connection
    /// without passing the answer on: a write whose answer was lost.
    Lost,
}

struct Rule {
    /// A method (`"PATCH"`), or a database function (`"rpc/refresh_write"`).
    method: &'static str,
    /// Requests of that kind to let through before the fault starts.
    skip: usize,
    /// How many requests get the fault (usize::MAX: all of them).
    times: usize,
    fault: Fault,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    counts: std::collections::HashMap<String, usize>,
    injected: usize,
}

#[derive(Clone)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Proxies to `rest_url` (`http://127.0.0.1:PORT/api`); use [`Self::rest_url`].
    pub async fn start(rest_url: &str) -> Self {
        let upstream = rest_url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            upstream,
            state: Arc::default(),
        };
        serve_each(listener, proxy.clone(), |server, client| async move {
            server.serve(client).await
        });
        proxy
    }

    pub fn rest_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// After `skip` requests of `method`, the next `times` get `fault`.
    /// `method` is an HTTP method, or `rpc/<function>` for the calls of one
    /// database function.
    pub fn fail(&self, method: &'static str, skip: usize, times: usize, fault: Fault) {
        self.state.lock().unwrap().rules.push(Rule {
            method,
            skip,
            times,
            fault,
        });
    }

    /// Drops every rule: requests are forwarded again.
    pub fn heal(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    pub fn injected(&self) -> usize {
        self.state.lock().unwrap().injected
    }

    pub fn count(&self, method: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .counts
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    fn decide(&self, method: &str, target: &str) -> Option<Fault> {
        let mut state = self.state.lock().unwrap();
        let keys = request_keys(method, target);
        for key in &keys {
            *state.counts.entry(key.clone()).or_insert(0) += 1;
        }
        let counts = &state.counts;
        let fault = state
            .rules
            .iter()
            .find(|r| {
                let n = counts.get(r.method).copied().unwrap_or(0);
                keys.iter().any(|k| k == r.method) && n > r.skip && n - r.skip <= r.times
            })
            .map(|r| r.fault);
        if fault.is_some() {
            state.injected += 1;
        }
        fault
    }

    async fn serve(&self, mut client: TcpStream) {
        let Ok(upstream) = TcpStream::connect(&self.upstream).await else {
            return;
        };
        let (mut up_read, mut up_write) = upstream.into_split();
        let (mut client_read, client_write) = client.split();
        let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
        let swallow = std::sync::atomic::AtomicBool::new(false);
        let swallowed = tokio::sync::Notify::new();
        // Responses flow back untouched; requests are read one at a time
        // (clients here do not pipeline), so an injected answer never
        // interleaves with a forwarded one.
        let relay = {
            let client_write = client_write.clone();
            let (swallow, swallowed) = (&swallow, &swallowed);
            async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match up_read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if swallow.load(std::sync::atomic::Ordering::SeqCst) {
                        swallowed.notify_one();
                        std::future::pending::<()>().await;
                    }
                    if client_write
                        .lock()
                        .await
                        .write_all(&buf[..n])
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        };
        let requests = async {
            let mut pending = Vec::new();
            while let Some(request) = read_request(&mut client_read, &mut pending).await {
                let mut line = request.split(|b| *b == b' ');
                let method = String::from_utf8_lossy(line.next().unwrap_or_default()).into_owned();
                let target = String::from_utf8_lossy(line.next().unwrap_or_default()).into_owned();
                match self.decide(&method, &target) {
                    None => {
                        if up_write.write_all(&request).await.is_err() {
                            return;
                        }
                    }
                    Some(Fault::Drop) => return,
                    Some(Fault::Lost) => {
                        swallow.store(true, std::sync::atomic::Ordering::SeqCst);
                        if up_write.write_all(&request).await.is_ok() {
                            swallowed.notified().await;
                        }
                        return;
                    }
                    Some(Fault::Status(code)) => {
                        let body = r#"{"code":"PGRST000","message":"injected fault"}"#;
                        let answer = format!(
                            "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if client_write
                            .lock()
                            .await
                            .write_all(answer.as_bytes())
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = relay => {}
            _ = requests => {}
        }
    }
}

/// What a request counts as: its method, and `rpc/<function>` for a call
/// of a database function.
pub fn request_keys(method: &str, target: &str) -> Vec<String> {
    let mut keys = vec![method.to_string()];
    if let Some(rest) = target
        .split('?')
        .next()
        .and_then(|p| p.split("/rpc/").nth(1))
    {
        keys.push(format!("rpc/{rest}"));
    }
    keys
}

/// One whole request (head and Content-Length body), as bytes.
async fn read_request(
    stream: &mut (impl AsyncReadExt + Unpin),
    pending: &mut Vec<u8>,
) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let body_len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let total = end + 4 + body_len;
            if pending.len() >= total {
                return Some(pending.drain(..total).collect());
            }
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
}
