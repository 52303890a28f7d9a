//! Request URLs: every caller-supplied part is one percent-encoded path segment, so a name
//! can never change which route is addressed.

use assay_core::{EnvRef, Error, Result};
use url::Url;

/// `<base>/v1/organizations/{org}/environments/{env}/<segments…>`.
pub(crate) fn env_url(base: &Url, env: &EnvRef, segments: &[&str]) -> Result<Url> {
    let mut all = vec!["v1", "organizations", &env.org, "environments", &env.env];
    all.extend_from_slice(segments);
    for (what, value) in [("org", &env.org), ("env", &env.env)] {
        check_segment(what, value)?;
    }
    build(base, &all)
}

/// `<base>/v1/organizations/{org}/<segments…>` (members, API tokens, audit).
pub(crate) fn org_url(base: &Url, org: &str, segments: &[&str]) -> Result<Url> {
    check_segment("org", org)?;
    let mut all = vec!["v1", "organizations", org];
    all.extend_from_slice(segments);
    build(base, &all)
}

/// `<base>/<segments…>` for routes outside an environment (health).
pub(crate) fn root_url(base: &Url, segments: &[&str]) -> Result<Url> {
    build(base, segments)
}

fn build(base: &Url, segments: &[&str]) -> Result<Url> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| Error::invalid("url", format!("{base} cannot be a base URL")))?;
        path.pop_if_empty();
        // `extend` percent-encodes each segment, `/` included.
        path.extend(segments);
    }
    Ok(url)
}

/// A name used as one path segment. `.` and `..` would be dropped by URL normalisation
/// and address another route, so they are refused here.
pub(crate) fn check_segment(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value == "." || value == ".." {
        return Err(Error::invalid(
            what,
            format!("{value:?} is not a valid {what}"),
        ));
    }
    Ok(())
}

/// An artifact path as segments: each one encoded, `/` kept as the separator.
pub(crate) fn artifact_segments(path: &str) -> Result<Vec<&str>> {
    let segments: Vec<&str> = path.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return Err(Error::invalid(
            "path",
            format!(
                "{path:?} is not an artifact path: use a relative path like reports/junit.xml \
                 (no empty, `.` or `..` parts)"
            ),
        ));
    }
    Ok(segments)
}

/// Appends `name=value` for every value that is set.
pub(crate) fn with_query(mut url: Url, pairs: &[(&str, Option<String>)]) -> Url {
    if pairs.iter().any(|(_, v)| v.is_some()) {
        let mut q = url.query_pairs_mut();
        for (name, value) in pairs {
            if let Some(value) = value {
                q.append_pair(name, value);
            }
        }
    }
    url
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn env() -> EnvRef {
        EnvRef::new("acme", "dev")
    }

    #[test]
    fn names_are_encoded_as_single_segments() {
        let base = Url::parse("http://127.0.0.1:7357").unwrap();
        let url = env_url(&base, &env(), &["workflows", "a/b?c#d e%"]).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:7357/v1/organizations/acme/environments/dev/workflows/a%2Fb%3Fc%23d%20e%25"
        );
    }

    #[test]
    fn organization_urls_encode_emails_and_refuse_dot_orgs() {
        let base = Url::parse("http://h:1/prefix").unwrap();
        let url = org_url(&base, "acme", &["members", "bob+qa@example.com"]).unwrap();
        assert_eq!(
            url.as_str(),
            "http://h:1/prefix/v1/organizations/acme/members/bob+qa@example.com"
        );
        let url = org_url(&base, "acme", &["members", "a/b@x"]).unwrap();
        assert_eq!(url.path(), "/prefix/v1/organizations/acme/members/a%2Fb@x");
        assert!(org_url(&base, "..", &["members"]).is_err());
        assert!(org_url(&base, "", &["members"]).is_err());
    }

    #[test]
    fn a_base_path_prefix_is_kept() {
        let base = Url::parse("https://example.test/assay/?x=1").unwrap();
        let url = env_url(&base, &env(), &["executions"]).unwrap();
        assert_eq!(
            url.as_str(),
            "https://example.test/assay/v1/organizations/acme/environments/dev/executions"
        );
        let base = Url::parse("https://example.test/assay").unwrap();
        assert_eq!(
            root_url(&base, &["healthz"]).unwrap().as_str(),
            "https://example.test/assay/healthz"
        );
    }

    #[test]
    fn artifact_paths_keep_their_slashes() {
        let base = Url::parse("http://h").unwrap();
        let mut segments = vec!["executions", "run-1", "artifacts"];
        segments.extend(artifact_segments("reports/junit 1.xml").unwrap());
        let url = env_url(&base, &env(), &segments).unwrap();
        assert_eq!(
            url.path(),
            "/v1/organizations/acme/environments/dev/executions/run-1/artifacts/reports/junit%201.xml"
        );
    }

    #[test]
    fn dot_segments_and_empty_names_are_refused() {
        for bad in ["../etc/passwd", "a/./b", "/abs", "a//b", "a/"] {
            assert!(artifact_segments(bad).is_err(), "{bad}");
        }
        assert!(check_segment("workflow", "..").is_err());
        assert!(check_segment("workflow", "").is_err());
        let base = Url::parse("http://h").unwrap();
        assert!(env_url(&base, &EnvRef::new("..", "dev"), &[]).is_err());
    }

    #[test]
    fn only_set_query_values_are_sent() {
        let url = with_query(
            Url::parse("http://h/x").unwrap(),
            &[
                ("selector", Some("team=qa,tier!=1".into())),
                ("search", None),
                ("limit", Some("5".into())),
            ],
        );
        assert_eq!(
            url.as_str(),
            "http://h/x?selector=team%3Dqa%2Ctier%21%3D1&limit=5"
        );
        let url = with_query(Url::parse("http://h/x").unwrap(), &[("a", None)]);
        assert_eq!(url.as_str(), "http://h/x");
    }
}
