//! What the simulated AimHarder reads out of a request, and the answers it
//! writes whole.

use std::collections::HashMap;

use super::{Seen, SESSION_COOKIE};
use crate::wire::Message;

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

/// What a request to the simulated AimHarder carried.
pub fn parse_request(request: &Message) -> Seen {
    let target = request.target.as_str();
    let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let mut params: HashMap<String, String> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    // The keep-alive of AimHarder's own page sends its fields as a form.
    params.extend(url::form_urlencoded::parse(&request.body).into_owned());
    let header = |name: &str| request.header(name).map(str::to_string);
    let cookie = header("cookie");
    let session = cookie.as_deref().and_then(|c| {
        c.split(';').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name.trim() == SESSION_COOKIE).then(|| value.trim().to_string())
        })
    });
    Seen {
        method: request.method.clone(),
        path: path.to_string(),
        raw_query: raw_query.to_string(),
        token: params.get("token").cloned().unwrap_or_default(),
        fingerprint: params.get("fingerprint").cloned().unwrap_or_default(),
        ciclo: params.get("ciclo").cloned(),
        cookie,
        session,
        user_agent: header("user-agent"),
        content_type: header("content-type"),
        x_requested_with: header("x-requested-with"),
        accept: header("accept"),
        origin: header("origin"),
        referer: header("referer"),
        sec_fetch_site: header("sec-fetch-site"),
        sec_fetch_mode: header("sec-fetch-mode"),
        sec_fetch_dest: header("sec-fetch-dest"),
    }
}
