//! The registry's log: the one parser of docker-registry's access-log lines, the marker
//! repository [`Registry::requests`](super::Registry::requests) asks for to know the log has
//! caught up, and the log tail quoted in errors.

use std::fs;
use std::path::Path;

/// How many of the log's last lines an error quotes.
const LOG_TAIL_LINES: usize = 40;

/// The path prefix of the requests [`Registry::requests`](super::Registry::requests) makes
/// only so that their access-log line marks "everything before it has been logged". They are
/// not the test's requests: leave them out when counting (see [`LoggedRequest::is_marker`]).
pub const ACCESS_LOG_MARKER: &str = "/v2/tank-testkit-sync/";

/// One request in the registry's access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    /// The HTTP method, e.g. `GET`.
    pub method: String,
    /// The path with its query, e.g. `/v2/app/blobs/sha256:…`.
    pub path: String,
    /// The status code of the answer.
    pub status: u16,
    /// The body bytes sent (`0` when the log says `-`).
    pub bytes: u64,
    /// The client's `User-Agent` (empty when none was sent).
    pub user_agent: String,
}

impl LoggedRequest {
    /// Whether this is one of the marker requests (its path starts with
    /// [`ACCESS_LOG_MARKER`]).
    pub fn is_marker(&self) -> bool {
        self.path.starts_with(ACCESS_LOG_MARKER)
    }
}

/// The `/v2/` requests of docker-registry's access log, in order, marker requests included:
/// lines like `127.0.0.1 - - [date] "GET /v2/… HTTP/1.1" 200 1234 "referer" "user agent"`.
/// A line without a status after the request (any other log line, or one cut short) is not a
/// request.
pub fn parse_access_log(log: &str) -> Vec<LoggedRequest> {
    log.lines().filter_map(parse_line).collect()
}

/// One access-log line, when it is a `/v2/` request.
fn parse_line(line: &str) -> Option<LoggedRequest> {
    let (_, rest) = line.split_once("] \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut words = request.split(' ');
    let method = words.next()?;
    let path = words.next()?;
    if !path.starts_with("/v2/") {
        return None;
    }
    let mut numbers = rest.split(' ');
    let status = numbers.next()?.parse().ok()?;
    let bytes = numbers.next()?.parse().unwrap_or(0);
    // The user agent is the last quoted field.
    let user_agent = rest
        .trim_end()
        .strip_suffix('"')
        .and_then(|rest| rest.rsplit_once('"'))
        .map(|(_, agent)| agent.to_owned())
        .unwrap_or_default();
    Some(LoggedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        status,
        bytes,
        user_agent,
    })
}

/// The last lines of the log at `path`, for an error message.
pub(super) fn log_tail(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            lines[start..].join("\n")
        }
        Err(error) => format!("(log {} unreadable: {error})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, status: u16, bytes: u64, agent: &str) -> LoggedRequest {
        LoggedRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            bytes,
            user_agent: agent.to_owned(),
        }
    }

    #[test]
    fn requests_are_read_with_status_bytes_and_user_agent() {
        let log = "\
time=\"x\" level=info msg=\"response completed\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/ HTTP/1.1\" 200 2 \"\" \"tank/0.1.0\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"HEAD /v2/a/blobs/sha256:ab HTTP/1.1\" 200 - \"\" \"Go-http-client/1.1\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/a/manifests/x?n=1 HTTP/1.1\" 404 70 \"-\" \"skopeo/1.13 (linux)\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /other HTTP/1.1\" 200 5 \"\" \"tank/0.1.0\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/tank-testkit-sync/0/manifests/latest HTTP/1.0\" 404 9 \"\" \"\"\n";
        let requests = parse_access_log(log);
        assert_eq!(
            requests,
            [
                request("GET", "/v2/", 200, 2, "tank/0.1.0"),
                request(
                    "HEAD",
                    "/v2/a/blobs/sha256:ab",
                    200,
                    0,
                    "Go-http-client/1.1"
                ),
                request(
                    "GET",
                    "/v2/a/manifests/x?n=1",
                    404,
                    70,
                    "skopeo/1.13 (linux)"
                ),
                request(
                    "GET",
                    "/v2/tank-testkit-sync/0/manifests/latest",
                    404,
                    9,
                    ""
                ),
            ]
        );
        let markers: Vec<bool> = requests.iter().map(LoggedRequest::is_marker).collect();
        assert_eq!(markers, [false, false, false, true]);
    }

    /// The three parsers this one replaced disagreed on a line without a status: the lenient
    /// one kept it, the two others dropped it. A request whose answer is not logged yet is not
    /// a request to count, so it is dropped.
    #[test]
    fn a_line_without_status_is_not_a_request() {
        let log = "\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/a/blobs/sha256:ab HTTP/1.1\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/a/blobs/sha256:ab HTTP/1.1\" \n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/a/blobs/sha256:ab HTTP/1.1\" 200\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/a/blobs/sha256:ab HTTP/1.1\" 200 1\n";
        assert_eq!(
            parse_access_log(log),
            [request("GET", "/v2/a/blobs/sha256:ab", 200, 1, "")]
        );
    }
}
