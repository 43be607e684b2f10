//! A Supabase-like API gateway in front of the test's postrust, started per
//! test like [`crate::proxy::FaultProxy`]: what a hosted project's
//! `https://<ref>.supabase.co` does in front of PostgREST, as far as this tool
//! can tell.
//!
//! - Serves `{supabase_url}/rest/v1/...` by forwarding to postrust's
//!   `/api/...` (same method, query string and body); any other path is 404.
//! - Translates the `apikey` header into the role PostgREST sees:
//!   - the gateway's secret key ([`Gateway::secret_key`], `sb_secret_…`)
//!     becomes `Authorization: Bearer <service_role JWT>`;
//!   - its publishable key ([`Gateway::publishable_key`], `sb_publishable_…`)
//!     becomes `Authorization: Bearer <anon JWT>` (row-level security then
//!     hides every session, as on Supabase), unless the client sent a user
//!     JWT of its own, which passes through;
//!   - a legacy JWT key (`eyJ…`: `SERVICE_KEY`, `ANON_KEY`, `WRONG_KEY`)
//!     is forwarded as it is, with the client's own `Authorization` (postrust
//!     validates both); without one, the gateway supplies
//!     `Authorization: Bearer <the apikey>`;
//!   - a missing or unknown key is 401, with Supabase's JSON messages.
//! - Refuses (401) a secret key that arrives with a browser `User-Agent`
//!   (containing `Mozilla/`), or with an `Authorization` header other than
//!   `Bearer <that same secret key>`. Supabase's client libraries send the
//!   key in both headers and the hosted gateway tolerates that exact copy;
//!   [`Gateway::strict_authorization`] refuses any `Authorization` at all
//!   next to a secret key.
//! - Records every request it receives ([`Gateway::requests`]): method,
//!   target, headers, and how it was answered.
//! - Counts them by kind ([`Gateway::counts_by_kind`]): pages, claims,
//!   writes, renewals, releases, other.
//! - Can hold every request before serving it ([`Gateway::hold_each`]), as
//!   if Supabase were that far away.
//! - Faults: a wall-clock outage ([`Gateway::outage_after`]), a method that
//!   fails ([`Gateway::fail_method`]), and redirects
//!   ([`Gateway::redirect_to`]).
//!
//! Plain HTTP/1.1 on 127.0.0.1. Client connections are kept alive; each
//! forwarded request goes to postrust on a connection of its own
//! (`Connection: close`), and its answer is passed back re-framed with a
//! `Content-Length`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::listen::serve_each;
use crate::stack::{ANON_KEY, SERVICE_KEY};

mod kinds;
mod records;

use crate::wire::{read_message, Message};
pub use kinds::RequestKinds;
pub use records::{Answer, GatewayRequest};

/// The path prefix Supabase serves PostgREST under.
pub const REST_PREFIX: &str = "/rest/v1";

struct Outage {
    /// Requests (of any method) to let through before the outage starts.
    skip: usize,
    duration: Duration,
    retry_after: Option<u64>,
    /// Set when the first request after `skip` arrives.
    window: Option<(Instant, Instant)>,
}

#[derive(Default)]
struct State {
    requests: Vec<GatewayRequest>,
    counts: HashMap<String, usize>,
    /// Requests received so far, of any method.
    received: usize,
    outage: Option<Outage>,
    /// Remaining 503s per method (usize::MAX: for ever).
    method_faults: HashMap<String, usize>,
    redirect: Option<String>,
    strict_authorization: bool,
    /// How long each request waits before it is seen ([`Gateway::hold_each`]).
    hold: Duration,
}

/// What to do with one request, decided when it arrives.
enum Decision {
    Answer(Answer),
    Forward {
        target: String,
        authorization: String,
    },
}

#[derive(Clone)]
pub struct Gateway {
    addr: SocketAddr,
    /// postrust's `host:port`.
    upstream: String,
    /// postrust's path prefix (`/api`).
    upstream_prefix: String,
    secret_key: String,
    publishable_key: String,
    state: Arc<Mutex<State>>,
}

impl Gateway {
    /// A gateway in front of `rest_url` (`http://127.0.0.1:PORT/api`, what
    /// [`crate::stack::TestDb::rest_url`] gives), on a port of its own.
    pub async fn start(rest_url: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let rest = rest_url
            .strip_prefix("http://")
            .expect("the gateway forwards to plain http");
        let (upstream, prefix) = match rest.find('/') {
            Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Shaped like Supabase's keys, and different for every gateway, so a
        // key from another test's gateway is unknown here.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let gateway = Self {
            addr,
            upstream: upstream.to_string(),
            upstream_prefix: prefix.to_string(),
            secret_key: format!("sb_secret_GwT3st{n:04}P{:05}x8Kq2LmZ7vRb9Yc1", addr.port()),
            publishable_key: format!("sb_publishable_GwT3st{n:04}P{:05}_Hn4Jd6Wf3Ts", addr.port()),
            state: Arc::default(),
        };
        serve_each(listener, gateway.clone(), |server, client| async move {
            server.serve(client).await
        });
        gateway
    }

    /// `http://127.0.0.1:PORT`, with no path: what `SUPABASE_URL` holds.
    pub fn supabase_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The project's secret key, `sb_secret_…`: the service role.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The project's publishable key, `sb_publishable_…`: the anon role.
    pub fn publishable_key(&self) -> &str {
        &self.publishable_key
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<GatewayRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests received so far, of any method.
    pub fn total(&self) -> usize {
        self.state.lock().unwrap().received
    }

    /// Requests of `method` received so far, however they were answered
    /// (`method` may be `rpc/<function>`: calls of one database function).
    pub fn count(&self, method: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .counts
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// Requests answered so far, by kind (from each one's method and path).
    pub fn counts_by_kind(&self) -> RequestKinds {
        RequestKinds::of(&self.state.lock().unwrap().requests)
    }

    /// Hold every request that arrives from now on for `delay` before it is
    /// counted, checked and forwarded, as if Supabase were `delay` away.
    /// Each connection is served on its own, so concurrent requests are held
    /// concurrently. `Duration::ZERO` (the default) holds nothing.
    pub fn hold_each(&self, delay: Duration) {
        self.state.lock().unwrap().hold = delay;
    }

    /// Requests answered `answer` so far.
    pub fn answered(&self, answer: &Answer) -> usize {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.answer == *answer)
            .count()
    }

    /// Once `skip_requests` requests (of any method) have arrived, answer
    /// 503 to every request for `duration` of wall-clock time from the
    /// arrival of the next one; afterwards forward normally again.
    pub fn outage_after(&self, skip_requests: usize, duration: Duration) {
        self.set_outage(skip_requests, duration, None);
    }

    /// [`Self::outage_after`], with `Retry-After: <retry_after_secs>` on
    /// each 503.
    pub fn outage_after_with_retry_after(
        &self,
        skip_requests: usize,
        duration: Duration,
        retry_after_secs: u64,
    ) {
        self.set_outage(skip_requests, duration, Some(retry_after_secs));
    }

    fn set_outage(&self, skip: usize, duration: Duration, retry_after: Option<u64>) {
        self.state.lock().unwrap().outage = Some(Outage {
            skip,
            duration,
            retry_after,
            window: None,
        });
    }

    /// When the outage began and ended (or will end), once it has begun.
    pub fn outage_window(&self) -> Option<(Instant, Instant)> {
        self.state
            .lock()
            .unwrap()
            .outage
            .as_ref()
            .and_then(|o| o.window)
    }

    /// The next `times` requests of `method` (`"PATCH"`, …, or
    /// `"rpc/refresh_write"` for the calls of one database function) get
    /// 503 without being forwarded; `usize::MAX` makes it permanent. Adds
    /// to what is left of an earlier call for the same method.
    pub fn fail_method(&self, method: &str, times: usize) {
        let mut state = self.state.lock().unwrap();
        let left = state.method_faults.entry(method.to_string()).or_insert(0);
        *left = left.saturating_add(times);
    }

    /// Ends the faults of `method`: its requests are forwarded again.
    pub fn heal_method(&self, method: &str) {
        self.state.lock().unwrap().method_faults.remove(method);
    }

    /// Answer every request `307 Temporary Redirect` with
    /// `Location: <url><the request's path and query>` (`url` without a
    /// trailing slash, e.g. `http://127.0.0.1:PORT`).
    pub fn redirect_to(&self, url: &str) {
        self.state.lock().unwrap().redirect = Some(url.trim_end_matches('/').to_string());
    }

    /// Refuse any `Authorization` header next to a secret key, even
    /// `Bearer <the same key>`.
    pub fn strict_authorization(&self) {
        self.state.lock().unwrap().strict_authorization = true;
    }

    /// Decide the fate of a request as it arrives: counters, faults, routing
    /// and the key check, in that order.
    fn decide(
        &self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        now: Instant,
    ) -> Decision {
        let mut state = self.state.lock().unwrap();
        state.received += 1;
        let received = state.received;
        let keys = crate::proxy::request_keys(method, target);
        for key in &keys {
            *state.counts.entry(key.clone()).or_insert(0) += 1;
        }

        if state.redirect.is_some() {
            return Decision::Answer(Answer::Redirected);
        }
        if let Some(outage) = state.outage.as_mut() {
            if outage.window.is_none() && received > outage.skip {
                outage.window = Some((now, now + outage.duration));
            }
            if let Some((start, end)) = outage.window {
                if now >= start && now < end {
                    return Decision::Answer(Answer::Outage);
                }
            }
        }

        let rest = match target.strip_prefix(REST_PREFIX) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') => rest,
            _ => return Decision::Answer(Answer::NotFound),
        };

        let authorization = match self.authorize(headers, state.strict_authorization) {
            Ok(authorization) => authorization,
            Err(message) => return Decision::Answer(Answer::Refused(message)),
        };

        for key in &keys {
            if let Some(left) = state.method_faults.get_mut(key) {
                if *left > 0 {
                    if *left != usize::MAX {
                        *left -= 1;
                    }
                    return Decision::Answer(Answer::MethodFault);
                }
            }
        }

        let rest = if rest.is_empty() || rest.starts_with('?') {
            format!("/{rest}")
        } else {
            rest.to_string()
        };
        Decision::Forward {
            target: format!("{}{rest}", self.upstream_prefix),
            authorization,
        }
    }

    /// The `Authorization` header to forward, or the 401 message.
    fn authorize(&self, headers: &[(String, String)], strict: bool) -> Result<String, String> {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.trim())
        };
        let Some(apikey) = get("apikey") else {
            return Err("No API key found in request".into());
        };
        let authorization = get("authorization");
        if apikey == self.secret_key {
            if get("user-agent").is_some_and(|ua| ua.contains("Mozilla/")) {
                return Err("Forbidden use of secret API key in browser".into());
            }
            match authorization {
                None => {}
                Some(a) if !strict && a == format!("Bearer {}", self.secret_key) => {}
                Some(_) => {
                    return Err(
                        "Secret API key used together with an Authorization header holding something else"
                            .into(),
                    )
                }
            }
            return Ok(format!("Bearer {SERVICE_KEY}"));
        }
        if apikey == self.publishable_key {
            return Ok(match authorization {
                Some(a) if a != format!("Bearer {}", self.publishable_key) => a.to_string(),
                _ => format!("Bearer {ANON_KEY}"),
            });
        }
        if looks_like_jwt(apikey) {
            return Ok(match authorization {
                Some(a) => a.to_string(),
                None => format!("Bearer {apikey}"),
            });
        }
        Err("Invalid API key".into())
    }

    async fn serve(&self, client: TcpStream) {
        let (mut read, mut write) = client.into_split();
        let mut pending = Vec::new();
        while let Some(request) = read_message(&mut read, &mut pending, false).await {
            let hold = self.state.lock().unwrap().hold;
            if !hold.is_zero() {
                tokio::time::sleep(hold).await;
            }
            let now = Instant::now();
            let close = request
                .header("connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("close"));
            let decision = self.decide(&request.method, &request.target, &request.headers, now);
            let (answer, bytes) = match decision {
                Decision::Answer(answer) => {
                    let bytes = self.canned(&answer, &request.target);
                    (answer, bytes)
                }
                Decision::Forward {
                    target,
                    authorization,
                } => match self.forward(&request, &target, &authorization).await {
                    Some(response) => (Answer::Forwarded(response.status), response.bytes),
                    None => {
                        let answer = Answer::UpstreamDown;
                        let bytes = self.canned(&answer, &request.target);
                        (answer, bytes)
                    }
                },
            };
            self.state.lock().unwrap().requests.push(GatewayRequest {
                method: request.method.clone(),
                target: request.target.clone(),
                headers: request.headers.clone(),
                answer,
                at: now,
            });
            if write.write_all(&bytes).await.is_err() || close {
                return;
            }
        }
    }

    /// The gateway's own answer, in Supabase's JSON shape.
    fn canned(&self, answer: &Answer, target: &str) -> Vec<u8> {
        let state = self.state.lock().unwrap();
        let retry_after = state.outage.as_ref().and_then(|o| o.retry_after);
        answer.render(target, state.redirect.as_deref(), retry_after)
    }

    /// Send the request to postrust on a fresh connection and bring back its
    /// answer re-framed for the client; `None` if postrust cannot be reached
    /// or answers nothing readable.
    async fn forward(
        &self,
        request: &Message,
        target: &str,
        authorization: &str,
    ) -> Option<Forwarded> {
        let mut head = format!(
            "{} {target} HTTP/1.1\r\nHost: {}\r\n",
            request.method, self.upstream
        );
        for (name, value) in &request.headers {
            if HOP_BY_HOP.contains(&name.as_str())
                || matches!(name.as_str(), "host" | "content-length" | "authorization")
            {
                continue;
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Authorization: {authorization}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            request.body.len()
        ));
        let mut upstream = TcpStream::connect(&self.upstream).await.ok()?;
        upstream.write_all(head.as_bytes()).await.ok()?;
        upstream.write_all(&request.body).await.ok()?;
        let mut pending = Vec::new();
        let response = read_message(&mut upstream, &mut pending, request.method == "HEAD").await?;
        let status = response.status?;

        let mut out = format!("HTTP/1.1 {status} {}\r\n", response.reason);
        for (name, value) in &response.headers {
            if HOP_BY_HOP.contains(&name.as_str()) || name == "content-length" {
                continue;
            }
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        let length = if request.method == "HEAD" {
            // No body; keep the length postrust announced, if any.
            response.header("content-length").unwrap_or("0").to_string()
        } else {
            response.body.len().to_string()
        };
        out.push_str(&format!("Content-Length: {length}\r\n\r\n"));
        let mut bytes = out.into_bytes();
        if request.method != "HEAD" {
            bytes.extend_from_slice(&response.body);
        }
        Some(Forwarded { status, bytes })
    }
}

struct Forwarded {
    status: u16,
    bytes: Vec<u8>,
}

/// Headers that belong to one connection, never forwarded as they are.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

fn looks_like_jwt(key: &str) -> bool {
    key.starts_with("eyJ") && key.split('.').count() == 3
}
