//! Talking to servers on loopback: a free port to start one on, HTTP requests (with
//! [`ureq`], plain http only), raw bytes for requests no client would send, and reading the
//! JSON answers (with [`serde_json`]).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::LazyLock;
use std::time::Duration;

use crate::shell::Result;

/// How long a request may take, from connecting to the last byte of the answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Every status is an answer (a 4xx or 5xx is no error), no proxy (loopback only), and a
/// new connection for each request, closed after it.
static AGENT: LazyLock<ureq::Agent> = LazyLock::new(|| {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into()
});

/// A port on 127.0.0.1 that nothing listens on (now).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// One request over a new connection; returns the status and the body, whatever the status.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String)> {
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Connection", "close");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body).map_err(|e| format!("{url}: {e}"))?;
    let mut response = AGENT.run(request).map_err(|e| format!("{url}: {e}"))?;
    let body = response
        .body_mut()
        .read_to_vec()
        .map_err(|e| format!("{url}: {e}"))?;
    Ok((
        response.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

/// `GET url`: its status and body.
pub fn get(url: &str) -> Result<(u16, String)> {
    request("GET", url, &[], "")
}

/// `GET url`, which must answer 200: its body.
pub fn get_ok(url: &str) -> Result<String> {
    match get(url)? {
        (200, body) => Ok(body),
        (status, body) => Err(format!("GET {url} answered {status}: {body}")),
    }
}

/// The string value of `"name"` at the top of the JSON object `json`; `None` if `json` is no
/// object, or `name` no string in it.
pub fn json_string(json: &str, name: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(value.get(name)?.as_str()?.to_owned())
}

/// Sends `request`, raw bytes, to `address` (`host:port`) and reads the status of the
/// answer; a server may answer before it has read everything, so a failed write is not yet
/// a failure.
pub fn raw_status(address: &str, request: &[u8]) -> Result<u16> {
    let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let _ = stream.write_all(request);
    let mut head = Vec::new();
    let mut buffer = [0; 4096];
    while !head.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
            Err(error) if head.is_empty() => return Err(error.to_string()),
            Err(_) => break,
        }
    }
    let head = String::from_utf8_lossy(&head);
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("the connection closed without an answer ({head:?})"))
}
