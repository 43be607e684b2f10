//! A simulated AimHarder on 127.0.0.1: answers `/setrefresh` and
//! `/api/tokenUpdate` per token from a script, `/api/whoami` per session
//! cookie, optionally under a liveness model (sessions die a while after
//! their last keep-alive); records what it received and counts requests in
//! flight.

mod liveness;
mod reply;
mod seen;
mod wire;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::listen::serve_each;
use crate::wire::read_message;
use liveness::Liveness;
use reply::{logs_out, rotates};
pub use reply::{rotated, Hook, Reply};
pub use seen::Seen;
pub use wire::refresh_page;
use wire::{parse_request, response, LOGIN_PAGE};

/// The path of AimHarder's page keep-alive (`POST`, a form).
pub const TOKEN_UPDATE: &str = "/api/tokenUpdate";
/// The path that tells whether a session is logged in (`GET`, cookies only).
pub const WHOAMI: &str = "/api/whoami";
/// The cookie whose value names a session here (scripts of `/api/whoami`
/// and the liveness model are keyed by it).
pub const SESSION_COOKIE: &str = "PHPSESSID";

/// What happened, in order: a request for a token arrived, or was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Arrived(String),
    Answered(String),
}

#[derive(Default)]
struct State {
    /// Tokens `tokenUpdate` has replaced: as at AimHarder, they are dead.
    replaced: HashSet<String>,
    /// Requests that came with a replaced token.
    stale_calls: usize,
    /// API calls answered logout because they did not look like a browser's.
    not_browser_calls: usize,
    /// Sessions (cookie values) a scripted answer logged out.
    logged_out: HashSet<String>,
    scripts: HashMap<String, Vec<Reply>>,
    seen: Vec<Seen>,
    arrivals: Vec<Instant>,
    events: Vec<Event>,
    liveness: Option<Liveness>,
    /// The answer for tokens without a script (`None`: `Reply::ok()`).
    default: Option<Reply>,
}

#[derive(Clone)]
pub struct FakeAimHarder {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    arrived: Arc<tokio::sync::Notify>,
    latency: Duration,
    /// One request in `tail_every` takes `tail` instead of `latency` (0: none).
    tail_every: usize,
    tail: Duration,
    /// Requests received so far, to pick the ones in the tail.
    received: Arc<AtomicUsize>,
}

impl FakeAimHarder {
    pub async fn start() -> Self {
        Self::with_latency(Duration::ZERO).await
    }

    pub async fn with_latency(latency: Duration) -> Self {
        Self::with_latency_and_tail(latency, 0, Duration::ZERO).await
    }

    /// Like [`FakeAimHarder::with_latency`], with a heavy tail: one request in
    /// `tail_every` (the `tail_every`-th, `2 × tail_every`-th, ... to arrive)
    /// takes `tail` instead of `latency`. `tail_every == 0` means no tail.
    pub async fn with_latency_and_tail(
        latency: Duration,
        tail_every: usize,
        tail: Duration,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake AimHarder");
        let fake = Self {
            addr: listener.local_addr().unwrap(),
            state: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            arrived: Arc::default(),
            latency,
            tail_every,
            tail,
            received: Arc::default(),
        };
        serve_each(listener, fake.clone(), |server, stream| async move {
            server.serve(stream).await
        });
        fake
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers for `token` (for `/api/whoami`: for the session cookie's
    /// value), in order; the last one repeats.
    pub fn script(&self, token: &str, replies: Vec<Reply>) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .insert(token.to_string(), replies);
    }

    /// Answers every token without a script of its own with `reply` (say,
    /// 403 for a network AimHarder refuses).
    pub fn answer_everyone(&self, reply: Reply) {
        self.state.lock().unwrap().default = Some(reply);
    }

    /// From now on a session dies `lifetime` after its last successful
    /// keep-alive (every session counts as logged in now): a dead session's
    /// keep-alive answers `{"logout":1}` and its whoami `{"data":[]}`. Time
    /// here is the model's own, moved on by [`FakeAimHarder::advance`].
    pub fn sessions_die_after(&self, lifetime: Duration) {
        self.state.lock().unwrap().liveness = Some(Liveness::new(lifetime));
    }

    /// Moves the liveness model's clock on.
    pub fn advance(&self, by: Duration) {
        if let Some(model) = self.state.lock().unwrap().liveness.as_mut() {
            model.advance(by);
        }
    }

    /// Makes `session`'s last keep-alive `ago` before the model's clock
    /// (moved on by at least that much first), as if a refresh had run then.
    pub fn kept_alive_ago(&self, session: &str, ago: Duration) {
        if let Some(model) = self.state.lock().unwrap().liveness.as_mut() {
            model.kept_alive_ago(session, ago);
        }
    }

    /// Whether the model holds `session` (a session cookie value) alive.
    pub fn is_alive(&self, session: &str) -> bool {
        let state = self.state.lock().unwrap();
        state.liveness.as_ref().is_none_or(|m| m.is_alive(session))
    }

    /// Requests that came with a token `tokenUpdate` had already replaced:
    /// each one is a rotated token the tool lost.
    pub fn stale_token_calls(&self) -> usize {
        self.state.lock().unwrap().stale_calls
    }

    /// API calls answered `{"logout":1}` because they lacked what a
    /// browser sends.
    pub fn not_browser_calls(&self) -> usize {
        self.state.lock().unwrap().not_browser_calls
    }

    /// Whether `token` was replaced by a `tokenUpdate` (and is dead).
    pub fn is_replaced(&self, token: &str) -> bool {
        self.state.lock().unwrap().replaced.contains(token)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn calls_for(&self, token: &str) -> usize {
        self.seen().iter().filter(|s| s.token == token).count()
    }

    pub fn events(&self) -> Vec<Event> {
        self.state.lock().unwrap().events.clone()
    }

    /// Returns once at least `n` requests have arrived.
    pub async fn wait_for_requests(&self, n: usize) {
        loop {
            let notified = self.arrived.notified();
            if self.seen().len() >= n {
                return;
            }
            notified.await;
        }
    }

    /// When each request arrived, in order.
    pub fn arrival_times(&self) -> Vec<Instant> {
        self.state.lock().unwrap().arrivals.clone()
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    async fn serve(&self, mut stream: TcpStream) {
        let mut buf = Vec::new();
        loop {
            let Some(request) = read_message(&mut stream, &mut buf, false).await else {
                return;
            };
            let seen = parse_request(&request);
            let reply = {
                let mut state = self.state.lock().unwrap();
                state.seen.push(seen.clone());
                state.arrivals.push(Instant::now());
                state.events.push(Event::Arrived(seen.token.clone()));
                let key = if seen.path == WHOAMI {
                    seen.session.clone().unwrap_or_default()
                } else {
                    seen.token.clone()
                };
                let default = state.default.clone().unwrap_or_else(Reply::ok);
                let scripted = match state.scripts.get_mut(&key) {
                    Some(replies) if replies.len() > 1 => replies.remove(0),
                    Some(replies) => replies.first().cloned().unwrap_or(default),
                    None => default,
                };
                // As AimHarder has done: an API call that does not look
                // like the page's own is answered as if logged out (the
                // session itself is untouched).
                let api = seen.path == TOKEN_UPDATE || seen.path == WHOAMI;
                let session = seen.session.clone().unwrap_or_default();
                let reply = if api && !seen.is_browser_call(&self.url()) {
                    state.not_browser_calls += 1;
                    Reply::FalseLogout
                } else if seen.path == WHOAMI
                    && (seen.session.is_none() || state.logged_out.contains(&session))
                {
                    // No session cookie, or one logged out: nobody is logged in.
                    Reply::Dead
                } else {
                    match state.liveness.as_mut() {
                        Some(model) => model.reply(&seen, scripted),
                        None => scripted,
                    }
                };
                if seen.path != WHOAMI && logs_out(&reply) {
                    state.logged_out.insert(session);
                }
                // The token rotates: once replaced, it is dead, whatever
                // the script says. Decided as the request arrives, so of
                // two calls with one token only the first rotates it.
                if seen.path == TOKEN_UPDATE {
                    if state.replaced.contains(&seen.token) {
                        // The session lives on (its cookies); only this
                        // token is dead.
                        state.stale_calls += 1;
                        Reply::FalseLogout
                    } else {
                        if rotates(&reply, &seen.token) {
                            state.replaced.insert(seen.token.clone());
                        }
                        reply
                    }
                } else {
                    reply
                }
            };
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            // On arrival, not after the latency: a test may act on requests
            // that are still in flight.
            self.arrived.notify_waiters();
            let latency = self.next_latency();
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let keep = self.answer(&mut stream, &seen, reply).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.state
                .lock()
                .unwrap()
                .events
                .push(Event::Answered(seen.token.clone()));
            if !keep {
                return;
            }
        }
    }

    /// How long the request that just arrived takes: `latency`, or `tail`
    /// for every `tail_every`-th one.
    fn next_latency(&self) -> Duration {
        let n = self.received.fetch_add(1, Ordering::SeqCst) + 1;
        if self.tail_every > 0 && n % self.tail_every == 0 {
            self.tail
        } else {
            self.latency
        }
    }

    /// Writes the answer; false when the connection must close.
    async fn answer(&self, stream: &mut TcpStream, seen: &Seen, mut reply: Reply) -> bool {
        let reply = loop {
            reply = match reply {
                Reply::Then(hook, next) => {
                    hook();
                    *next
                }
                Reply::Delay(wait, next) => {
                    tokio::time::sleep(wait).await;
                    *next
                }
                other => break other,
            };
        };
        let html = |body: &str| {
            response(
                200,
                &[("Content-Type", "text/html; charset=utf-8")],
                body.as_bytes(),
            )
        };
        let json = |body: &str| {
            response(
                200,
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
        };
        let bytes = match reply {
            Reply::Then(..) | Reply::Delay(..) => unreachable!("unwrapped above"),
            Reply::Refresh { .. } if seen.path == WHOAMI => {
                json(r#"{"data":[{"id":69232,"name":"Socio","box":"Simulated Box"}]}"#)
            }
            Reply::Dead => json(r#"{"data":[]}"#),
            Reply::Refresh {
                token,
                fingerprint: _,
                set_cookies,
            } if seen.path == TOKEN_UPDATE => {
                // AimHarder's page keep-alive: the token rotates on every call.
                let token = token.unwrap_or_else(|| rotated(&seen.token));
                let body = serde_json::json!({ "newToken": token }).to_string();
                let mut headers = vec![("Content-Type", "application/json")];
                headers.extend(set_cookies.iter().map(|c| ("Set-Cookie", c.as_str())));
                response(200, &headers, body.as_bytes())
            }
            Reply::Refresh {
                token,
                fingerprint,
                set_cookies,
            } => {
                let token = token.unwrap_or_else(|| seen.token.clone());
                let fp = fingerprint.unwrap_or_else(|| seen.fingerprint.clone());
                let body = refresh_page(&token, &fp);
                let mut headers = vec![("Content-Type", "text/html; charset=utf-8")];
                headers.extend(set_cookies.iter().map(|c| ("Set-Cookie", c.as_str())));
                response(200, &headers, body.as_bytes())
            }
            Reply::Status(code) => response(code, &[], b"nope"),
            Reply::RetryAfter(code, secs) => {
                response(code, &[("Retry-After", &secs.to_string())], b"slow down")
            }
            Reply::Redirect(code, location) => response(code, &[("Location", location)], b""),
            Reply::LoginPage => html(LOGIN_PAGE),
            Reply::Logout | Reply::FalseLogout => json(r#"{"logout":1}"#),
            Reply::NoScript => html("<html><body><p>Hola</p></body></html>"),
            Reply::Huge => {
                let mut body = refresh_page(&seen.token, &seen.fingerprint).into_bytes();
                body.resize(1024 * 1024 + 10, b' ');
                response(200, &[], &body)
            }
            Reply::InvalidUtf8 => {
                let mut body = b"\xff\xfe\xfd<html>".to_vec();
                body.extend_from_slice(refresh_page(&seen.token, &seen.fingerprint).as_bytes());
                body.extend_from_slice(b"\xc3\x28</html>");
                response(200, &[], &body)
            }
            Reply::Truncated => {
                let body = refresh_page(&seen.token, &seen.fingerprint);
                let mut bytes = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    body.len() + 100
                )
                .into_bytes();
                bytes.extend_from_slice(&body.as_bytes()[..body.len() / 2]);
                let _ = stream.write_all(&bytes).await;
                return false;
            }
            Reply::Hang => {
                std::future::pending::<()>().await;
                return false;
            }
            Reply::Reset => return false,
            Reply::SlowBody => {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<html>")
                    .await;
                std::future::pending::<()>().await;
                return false;
            }
        };
        stream.write_all(&bytes).await.is_ok()
    }
}
