//! What a registry served during a scenario, from its access log (testkit's parser): blob
//! and manifest requests, bytes, cut-short GETs, tank's share, logged errors.

use super::*;

/// What a registry's access log recorded during one scenario.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Traffic {
    pub(super) requests: usize,
    pub(super) blob_gets: usize,
    pub(super) blob_heads: usize,
    pub(super) blob_bytes: u64,
    /// Successful blob GETs whose response was shorter than the blob.
    pub(super) short_blob_gets: usize,
    pub(super) manifest_gets: usize,
    pub(super) manifest_heads: usize,
    /// Requests whose User-Agent is tank's (not the mirror's).
    pub(super) from_tank: usize,
    /// `level=error` lines the registry logged meanwhile.
    pub(super) errors: usize,
}

/// One access-log line (testkit's parser).
pub(super) type LogLine = LoggedRequest;

/// The `/v2/` requests of docker-registry's access log, except testkit's markers.
pub(super) fn parse_log(log: &str) -> Vec<LogLine> {
    let mut requests = parse_access_log(log);
    requests.retain(|request| !request.is_marker());
    requests
}

/// Every request `registry` has logged (after waiting until its log is complete).
/// Also the messages of its `level=error` lines (but the markers').
pub(super) fn logged(registry: &Registry) -> anyhow::Result<(Vec<LogLine>, Vec<String>)> {
    // Returns once every earlier request's line is in the log.
    registry.requests()?;
    let log = fs::read_to_string(registry.log_path())
        .with_context(|| format!("reading {}", registry.log_path().display()))?;
    let errors = log
        .lines()
        .filter(|line| line.contains("level=error") && !line.contains(ACCESS_LOG_MARKER))
        .map(|line| {
            line.split_once("msg=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map_or(line, |(message, _)| message)
                .to_owned()
        })
        .collect();
    Ok((parse_log(&log), errors))
}

/// The requests logged since `before` (lines, errors), counted; `sizes` are the image's
/// blob sizes by digest.
pub(super) fn traffic_since(
    now: &(Vec<LogLine>, Vec<String>),
    before: (usize, usize),
    sizes: &BTreeMap<String, u64>,
) -> Traffic {
    Traffic {
        errors: now.1.len().saturating_sub(before.1),
        ..traffic(now.0.get(before.0..).unwrap_or(&[]), sizes)
    }
}

pub(super) fn traffic(lines: &[LogLine], sizes: &BTreeMap<String, u64>) -> Traffic {
    let mut traffic = Traffic {
        requests: lines.len(),
        ..Traffic::default()
    };
    for line in lines {
        let blob = line.path.contains("/blobs/sha256:");
        let manifest = line.path.contains("/manifests/");
        match (line.method.as_str(), blob, manifest) {
            ("GET", true, _) => {
                traffic.blob_gets += 1;
                if (200..300).contains(&line.status) {
                    traffic.blob_bytes += line.bytes;
                    let digest = line
                        .path
                        .rsplit_once("/blobs/")
                        .map_or("", |(_, digest)| digest);
                    if sizes.get(digest).is_some_and(|&size| line.bytes < size) {
                        traffic.short_blob_gets += 1;
                    }
                }
            }
            ("HEAD", true, _) => traffic.blob_heads += 1,
            ("GET", _, true) => traffic.manifest_gets += 1,
            ("HEAD", _, true) => traffic.manifest_heads += 1,
            _ => {}
        }
        if line.user_agent.starts_with("tank/") {
            traffic.from_tank += 1;
        }
    }
    traffic
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_lines_are_parsed_and_counted() {
        let log = "\
time=\"x\" level=info msg=\"response completed\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/ HTTP/1.1\" 200 2 \"\" \"tank/0.1.0\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"HEAD /v2/a/manifests/latest HTTP/1.1\" 200 1 \"\" \"Go-http-client/1.1\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/a/manifests/latest HTTP/1.1\" 200 500 \"\" \"tank/0.1.0\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/a/blobs/sha256:ab HTTP/1.1\" 200 1000 \"\" \"Go-http-client/1.1\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/a/blobs/sha256:cd HTTP/1.1\" 404 70 \"\" \"tank/0.1.0\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"HEAD /v2/a/blobs/sha256:cd HTTP/1.1\" 200 0 \"\" \"tank/0.1.0\"\n\
127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET /v2/tank-testkit-sync/0/manifests/latest HTTP/1.0\" 404 9 \"\" \"\"\n";
        let lines = parse_log(log);
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[1].user_agent, "Go-http-client/1.1");
        assert_eq!((lines[3].status, lines[3].bytes), (200, 1000));
        // sha256:ab is 2000 bytes: the GET that sent 1000 was cut short.
        let sizes = BTreeMap::from([("sha256:ab".to_owned(), 2000), ("sha256:cd".to_owned(), 70)]);
        let counted = traffic(&lines, &sizes);
        assert_eq!(
            counted,
            Traffic {
                requests: 6,
                blob_gets: 2,
                blob_heads: 1,
                blob_bytes: 1000,
                short_blob_gets: 1,
                manifest_gets: 1,
                manifest_heads: 1,
                from_tank: 4,
                errors: 0,
            }
        );
    }
}
