//! What the gateway keeps of each request, and how it answered.

use std::time::Instant;

use crate::wire::header_values;

/// How the gateway answered one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Forwarded to postrust, which answered with this status.
    Forwarded(u16),
    /// postrust could not be reached: 502.
    UpstreamDown,
    /// 503 from [`super::Gateway::outage_after`].
    Outage,
    /// 503 from [`super::Gateway::fail_method`].
    MethodFault,
    /// 307 from [`super::Gateway::redirect_to`].
    Redirected,
    /// 401 from the key check; the JSON `message` given.
    Refused(String),
    /// 404: not under `/rest/v1`.
    NotFound,
}

impl Answer {
    /// The gateway's own answer as bytes on the wire, in Supabase's JSON
    /// shape: `redirect_to` for a redirect, `retry_after` for an outage.
    pub fn render(
        &self,
        target: &str,
        redirect_to: Option<&str>,
        retry_after: Option<u64>,
    ) -> Vec<u8> {
        let mut extra = String::new();
        let body = match self {
            Answer::Redirected => {
                let to = redirect_to.expect("a redirect answer needs redirect_to");
                extra.push_str(&format!("Location: {to}{target}\r\n"));
                String::new()
            }
            Answer::Outage => {
                if let Some(secs) = retry_after {
                    extra.push_str(&format!("Retry-After: {secs}\r\n"));
                }
                r#"{"message":"Service Unavailable (injected outage)"}"#.to_string()
            }
            Answer::MethodFault => {
                r#"{"message":"Service Unavailable (injected method fault)"}"#.to_string()
            }
            Answer::UpstreamDown => {
                r#"{"message":"An invalid response was received from the upstream server"}"#
                    .to_string()
            }
            Answer::NotFound => r#"{"message":"no Route matched with those values"}"#.to_string(),
            Answer::Refused(message) => {
                // A machine-readable reason in a header, as Supabase's
                // gateway sends one (the kit's own names: the tool only
                // quotes it).
                let code = match message.as_str() {
                    "No API key found in request" => "no_api_key",
                    "Invalid API key" => "invalid_api_key",
                    m if m.contains("browser") => "secret_key_in_browser",
                    _ => "forbidden_secret_key_use",
                };
                extra.push_str(&format!("sb-error-code: {code}\r\n"));
                let hint = match message.as_str() {
                    "No API key found in request" => {
                        "No `apikey` request header or url param was found."
                    }
                    "Invalid API key" => "Double check your Supabase `anon` or `service_role` API key.",
                    m if m.contains("browser") => {
                        "Secret API keys can only be used in a protected environment and should never be used in a browser. Use the publishable key instead."
                    }
                    _ => "Send the secret key in the apikey header only.",
                };
                serde_json::json!({ "message": message, "hint": hint }).to_string()
            }
            Answer::Forwarded(_) => unreachable!("forwarded answers come from postrust"),
        };
        let status = self.status();
        let reason = match status {
            307 => "Temporary Redirect",
            401 => "Unauthorized",
            404 => "Not Found",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let content_type = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/json\r\n".to_string()
        };
        format!(
            "HTTP/1.1 {status} {reason}\r\n{content_type}{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    pub fn status(&self) -> u16 {
        match self {
            Answer::Forwarded(status) => *status,
            Answer::UpstreamDown => 502,
            Answer::Outage | Answer::MethodFault => 503,
            Answer::Redirected => 307,
            Answer::Refused(_) => 401,
            Answer::NotFound => 404,
        }
    }
}

/// One request as the gateway received it.
#[derive(Clone, Debug)]
pub struct GatewayRequest {
    pub method: String,
    /// Path and query as sent (`/rest/v1/auth_sessions?select=…`).
    pub target: String,
    /// Every header, names lowercased, values as sent, in order.
    pub headers: Vec<(String, String)>,
    pub answer: Answer,
    /// When it arrived.
    pub at: Instant,
}

impl GatewayRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_values(&self.headers, name).next()
    }

    /// Every value of header `name` (any case).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        header_values(&self.headers, name).collect()
    }
}
