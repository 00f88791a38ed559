//! A minimal HTTP/1.0 client for asking the registry directly (no redirects, no TLS), and the
//! `Authorization: Basic` value.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::Error;

/// `Basic <base64(user:password)>`, the value of an `Authorization` header.
pub fn basic_auth_header(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

/// A response from [`Registry::get`](super::Registry::get).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

pub(super) fn http_get(
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, Error> {
    let url = format!("http://{host}{path}");
    let failed = |source: std::io::Error| Error::Http {
        url: url.clone(),
        source,
    };
    let address: SocketAddr = host.parse().map_err(|_| Error::MalformedResponse {
        url: url.clone(),
        head: format!("{host} is not an ip:port address"),
    })?;
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(failed)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(failed)?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).map_err(failed)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(failed)?;

    let malformed = || Error::MalformedResponse {
        url: url.clone(),
        head: String::from_utf8_lossy(&response[..response.len().min(200)]).into_owned(),
    };
    let head_end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(malformed)?;
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(malformed)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/"))
        .ok_or_else(malformed)?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: response[head_end + 4..].to_vec(),
    })
}
