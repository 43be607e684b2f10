//! The HTTP/1.1 the simulated AimHarder speaks: requests read by hand
//! (head, then the body `Content-Length` announces), answers written whole.

use std::collections::HashMap;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::{Seen, SESSION_COOKIE};

pub fn refresh_page(token: &str, fingerprint: &str) -> String {
    format!(
        "<html><head><script>\n    localStorage.setItem(\"refreshToken\", \"{token}\");\n    \
         localStorage.setItem(\"fingerprint\", \"{fingerprint}\");\n</script></head></html>"
    )
}

pub const LOGIN_PAGE: &str = "<html><body><form action=\"/login\" method=\"post\">\
    <input name=\"mail\"><input type=\"password\" name=\"pw\"></form></body></html>";

pub fn response(code: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {code} X\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Reads one request head (requests here carry no body).
pub async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return Some(head);
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The body the head's `Content-Length` announces (empty without one).
pub async fn read_body(stream: &mut TcpStream, buf: &mut Vec<u8>, head: &str) -> Option<Vec<u8>> {
    let len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf.drain(..len).collect())
}

pub fn parse_request(head: &str, body: &[u8]) -> Seen {
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default();
    let mut words = first.split_whitespace();
    let method = words.next().unwrap_or("GET").to_string();
    let target = words.next().unwrap_or("/");
    let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let mut params: HashMap<String, String> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    // The keep-alive of AimHarder's own page sends its fields as a form.
    params.extend(url::form_urlencoded::parse(body).into_owned());
    let mut header = HashMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            header.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let cookie = header.remove("cookie");
    let session = cookie.as_deref().and_then(|c| {
        c.split(';').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name.trim() == SESSION_COOKIE).then(|| value.trim().to_string())
        })
    });
    Seen {
        method,
        path: path.to_string(),
        raw_query: raw_query.to_string(),
        token: params.get("token").cloned().unwrap_or_default(),
        fingerprint: params.get("fingerprint").cloned().unwrap_or_default(),
        ciclo: params.get("ciclo").cloned(),
        cookie,
        session,
        user_agent: header.remove("user-agent"),
        content_type: header.remove("content-type"),
        x_requested_with: header.remove("x-requested-with"),
    }
}
