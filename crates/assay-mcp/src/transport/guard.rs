//! `Host` and `Origin` checks (DNS rebinding, cross-site calls) for the legacy HTTP+SSE
//! requests, which never reach rmcp's own checks. Same lists, same meaning: a `Host` must
//! name an allowed host (an entry with a port needs that port); an `Origin`, when present,
//! must be an allowed origin (scheme, host and port; the scheme's default port when the
//! entry names none). The server crate checks both before authentication as well; this is
//! the defence in depth for any other mounting.

use super::McpHttpResponse;
use super::responses::plain;
use http::StatusCode;

#[derive(Debug, Clone)]
pub(super) struct HostGuard {
    hosts: Vec<(String, Option<u16>)>,
    origins: Vec<Origin>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Null,
    Tuple {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
}

impl HostGuard {
    pub(super) fn new(allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        Self {
            hosts: allowed_hosts
                .iter()
                .filter_map(|h| parse_authority(h.trim()))
                .collect(),
            origins: allowed_origins
                .iter()
                .filter_map(|o| parse_origin(o))
                .collect(),
        }
    }

    /// The 403 for a request from a foreign host or origin; `None` when it may proceed.
    pub(super) fn refusal<B>(&self, req: &http::Request<B>) -> Option<McpHttpResponse> {
        // HTTP/2 carries the host in `:authority` instead of a header.
        let host = match req.headers().get(http::header::HOST) {
            Some(v) => v.to_str().ok().and_then(parse_authority),
            None => req
                .uri()
                .authority()
                .and_then(|a| parse_authority(a.as_str())),
        };
        let host_ok = host.is_some_and(|(name, port)| {
            self.hosts.is_empty()
                || self
                    .hosts
                    .iter()
                    .any(|(h, p)| *h == name && (p.is_none() || *p == port))
        });
        if !host_ok {
            return Some(plain(
                StatusCode::FORBIDDEN,
                "Forbidden: Host header is not allowed",
            ));
        }
        if let Some(origin) = req.headers().get(http::header::ORIGIN) {
            let allowed = origin
                .to_str()
                .ok()
                .and_then(parse_origin)
                .is_some_and(|o| self.origins.contains(&o));
            if !allowed {
                return Some(plain(
                    StatusCode::FORBIDDEN,
                    "Forbidden: Origin header is not allowed",
                ));
            }
        }
        None
    }
}

fn parse_authority(raw: &str) -> Option<(String, Option<u16>)> {
    let authority = raw.parse::<http::uri::Authority>().ok()?;
    Some((normalize_host(authority.host()), authority.port_u16()))
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn parse_origin(raw: &str) -> Option<Origin> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("null") {
        return Some(Origin::Null);
    }
    let uri = raw.parse::<http::Uri>().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let port = authority.port_u16().or(match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    });
    Some(Origin::Tuple {
        scheme,
        host: normalize_host(authority.host()),
        port,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn req(host: &str, origin: Option<&str>) -> http::Request<()> {
        let mut b = http::Request::builder().uri("/mcp").header("host", host);
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn hosts_and_origins_are_checked_like_rmcp_does() {
        let g = HostGuard::new(
            &["localhost".into(), "assay.example.com:8443".into()],
            &[
                "http://localhost:7357".into(),
                "https://assay.example.com".into(),
            ],
        );
        assert!(g.refusal(&req("localhost:7357", None)).is_none());
        assert!(g.refusal(&req("LOCALHOST", None)).is_none());
        assert!(g.refusal(&req("assay.example.com:8443", None)).is_none());
        assert!(g.refusal(&req("assay.example.com", None)).is_some());
        assert!(g.refusal(&req("evil.example", None)).is_some());
        assert!(
            g.refusal(&req("localhost:7357", Some("http://localhost:7357")))
                .is_none()
        );
        assert!(
            g.refusal(&req("localhost", Some("https://assay.example.com:443")))
                .is_none()
        );
        let refused = g
            .refusal(&req("localhost", Some("http://localhost:3000")))
            .unwrap();
        assert_eq!(refused.status(), 403);
        assert!(g.refusal(&req("localhost", Some("null"))).is_some());
        assert!(
            g.refusal(&req("localhost", Some("not an origin")))
                .is_some()
        );
    }
}
