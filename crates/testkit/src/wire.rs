//! Just enough HTTP/1.1 for the kit's servers and the tests that talk to
//! them: one message read off a stream (Content-Length, chunked, or up to
//! the end), and a one-shot client.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 message, request or response, body de-chunked.
#[derive(Debug)]
pub struct Message {
    /// Requests: the method; responses: empty.
    pub method: String,
    /// Requests: path and query; responses: empty.
    pub target: String,
    /// Responses: the status code.
    pub status: Option<u16>,
    /// Responses: the reason phrase.
    pub reason: String,
    /// Names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Every value of header `name` (any case) in lowercased-name pairs.
pub fn header_values<'a>(
    headers: &'a [(String, String)],
    name: &str,
) -> impl Iterator<Item = &'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .filter(move |(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_values(&self.headers, name).next()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Read one whole message from `stream` (bytes already read but not used are
/// kept in `pending`). The body is framed by `Transfer-Encoding: chunked`, by
/// `Content-Length`, or, for a response with neither, by the end of the
/// stream. `no_body`: a response to HEAD. `None` at end of stream or on a
/// malformed message.
pub async fn read_message(
    stream: &mut (impl AsyncRead + Unpin),
    pending: &mut Vec<u8>,
    no_body: bool,
) -> Option<Message> {
    let head_end = loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if !fill(stream, pending).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
    pending.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut message = Message {
        method: String::new(),
        target: String::new(),
        status: None,
        reason: String::new(),
        headers,
        body: Vec::new(),
    };
    let mut parts = first.splitn(3, ' ');
    let (a, b, c) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
    let is_response = a.starts_with("HTTP/");
    if is_response {
        message.status = Some(b.parse().ok()?);
        message.reason = c.to_string();
    } else {
        message.method = a.to_string();
        message.target = b.to_string();
    }
    let bodiless_status = message
        .status
        .is_some_and(|s| s < 200 || s == 204 || s == 304);
    if no_body || bodiless_status {
        return Some(message);
    }
    let chunked = message
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let line_end = loop {
                if let Some(end) = pending.windows(2).position(|w| w == b"\r\n") {
                    break end;
                }
                if !fill(stream, pending).await {
                    return None;
                }
            };
            let size_line = String::from_utf8_lossy(&pending[..line_end]).into_owned();
            let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
            pending.drain(..line_end + 2);
            if size == 0 {
                // Trailers, if any, up to the empty line.
                loop {
                    if let Some(end) = pending.windows(2).position(|w| w == b"\r\n") {
                        let empty = end == 0;
                        pending.drain(..end + 2);
                        if empty {
                            return Some(message);
                        }
                        continue;
                    }
                    if !fill(stream, pending).await {
                        return Some(message);
                    }
                }
            }
            while pending.len() < size + 2 {
                if !fill(stream, pending).await {
                    return None;
                }
            }
            message.body.extend_from_slice(&pending[..size]);
            pending.drain(..size + 2);
        }
    }
    match message.header("content-length") {
        Some(length) => {
            let length: usize = length.parse().ok()?;
            while pending.len() < length {
                if !fill(stream, pending).await {
                    return None;
                }
            }
            message.body = pending.drain(..length).collect();
        }
        None if is_response => {
            while fill(stream, pending).await {}
            message.body = std::mem::take(pending);
        }
        None => {}
    }
    Some(message)
}

/// Read more bytes into `pending`; false at end of stream or on error.
async fn fill(stream: &mut (impl AsyncRead + Unpin), pending: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            pending.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// One request to `addr` on a connection of its own, for tests that talk to
/// the gateway (or any local server) directly: `headers` as `(name, value)`.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Message {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut pending = Vec::new();
    read_message(&mut stream, &mut pending, method == "HEAD")
        .await
        .expect("a whole HTTP answer")
}
