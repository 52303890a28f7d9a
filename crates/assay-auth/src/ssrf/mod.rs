//! The address policy for outbound fetches the server makes on a client's say-so
//! (Client ID Metadata Documents today).
//!
//! The URL is parsed by the `url` crate, which applies the WHATWG host rules, so every
//! spelling of an address (`0177.0.0.1`, `0x7f.1`, `2130706433`, `%31%32%37.0.0.1`)
//! arrives here as the one address it means. A domain is resolved exactly once; every
//! address it resolves to must pass, and [`pinned_client`] makes the fetch connect only
//! to those addresses, so a second DNS answer (rebinding) never reaches a socket.

mod ranges;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use ranges::{AddressClass, classify};
use url::{Host, Url};

/// What outbound fetches may reach. The default is strict: `https` to public addresses.
///
/// The two relaxations are named for when they are right, so that neither is turned on
/// by accident: a test server on 127.0.0.1, or an air-gapped deployment whose clients
/// publish metadata on private addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SsrfPolicy {
    allow_private_networks: bool,
    allow_plain_http_to_loopback: bool,
}

impl SsrfPolicy {
    /// `https` to public addresses only.
    pub const fn strict() -> Self {
        Self {
            allow_private_networks: false,
            allow_plain_http_to_loopback: false,
        }
    }

    /// Also allow loopback, RFC 1918, CGNAT, unique-local and site-local addresses.
    /// Link-local (cloud metadata), multicast, documentation and reserved ranges stay
    /// refused.
    #[must_use]
    pub const fn allow_private_for_tests_and_airgapped(mut self) -> Self {
        self.allow_private_networks = true;
        self
    }

    /// Also allow plain `http`, but only when every address the host resolves to is
    /// loopback (a test server without TLS). Loopback itself still needs
    /// [`Self::allow_private_for_tests_and_airgapped`].
    #[must_use]
    pub const fn allow_plain_http_to_loopback_for_tests(mut self) -> Self {
        self.allow_plain_http_to_loopback = true;
        self
    }

    pub fn allows_private_networks(&self) -> bool {
        self.allow_private_networks
    }

    pub fn allows_plain_http_to_loopback(&self) -> bool {
        self.allow_plain_http_to_loopback
    }

    /// Whether one address may be connected to.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), SsrfError> {
        let class = classify(ip);
        if class == AddressClass::Public
            || (self.allow_private_networks && class.is_private_network())
        {
            Ok(())
        } else {
            Err(SsrfError::SpecialUseAddress { addr: ip, class })
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsrfError {
    #[error("the scheme {0:?} is not allowed for outbound fetches; use https")]
    SchemeNotAllowed(String),
    #[error("the URL has no host")]
    MissingHost,
    #[error("{addr} is a {class} address, which outbound fetches may not reach")]
    SpecialUseAddress { addr: IpAddr, class: AddressClass },
    #[error("plain http is allowed only to loopback addresses; {0} is not one")]
    PlainHttpNotLoopback(IpAddr),
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("{0} resolves to no address")]
    NoAddresses(String),
}

/// A URL whose destination passed the policy, with the addresses to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedTarget {
    pub url: Url,
    /// The domain to pin to `addrs`; `None` when the URL host is an IP literal.
    pub domain: Option<String>,
    pub addrs: Vec<SocketAddr>,
}

/// Checks the scheme, resolves the host once and checks every address.
pub async fn check_url(url: &Url, policy: &SsrfPolicy) -> Result<CheckedTarget, SsrfError> {
    let plain_http = match url.scheme() {
        "https" => false,
        "http" if policy.allow_plain_http_to_loopback => true,
        other => return Err(SsrfError::SchemeNotAllowed(other.to_owned())),
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let host = url.host().ok_or(SsrfError::MissingHost)?;
    let (domain, addrs) = match host {
        Host::Ipv4(ip) => (None, vec![SocketAddr::new(IpAddr::V4(ip), port)]),
        Host::Ipv6(ip) => (None, vec![SocketAddr::new(IpAddr::V6(ip), port)]),
        Host::Domain(name) => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| SsrfError::Resolve {
                    host: name.to_owned(),
                    reason: e.to_string(),
                })?
                .collect();
            if addrs.is_empty() {
                return Err(SsrfError::NoAddresses(name.to_owned()));
            }
            (Some(name.to_owned()), addrs)
        }
    };
    for addr in &addrs {
        policy.check_ip(addr.ip())?;
        if plain_http && classify(addr.ip()) != AddressClass::Loopback {
            return Err(SsrfError::PlainHttpNotLoopback(addr.ip()));
        }
    }
    Ok(CheckedTarget {
        url: url.clone(),
        domain,
        addrs,
    })
}

/// Timeouts for a pinned client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchTimeouts {
    pub connect: Duration,
    pub total: Duration,
}

/// A reqwest client for one fetch of `target`: it connects only to the checked
/// addresses, resolves no other name, follows no redirect and uses no proxy (a proxy
/// would resolve the host itself, after our check).
pub fn pinned_client(
    target: &CheckedTarget,
    timeouts: FetchTimeouts,
    user_agent: &str,
) -> Result<reqwest::Client, reqwest::Error> {
    crate::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .user_agent(user_agent)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .retry(reqwest::retry::never())
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.total)
        .https_only(target.url.scheme() == "https")
        .dns_resolver(RefuseResolver);
    if let Some(domain) = &target.domain {
        builder = builder.resolve_to_addrs(domain, &target.addrs);
    }
    builder.build()
}

/// The fallback resolver of a pinned client: every name it is asked about was not
/// checked, so it is refused.
struct RefuseResolver;

impl reqwest::dns::Resolve for RefuseResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let message = format!("{} was not checked by the SSRF policy", name.as_str());
        Box::pin(std::future::ready(Err(message.into())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    async fn check(s: &str, policy: SsrfPolicy) -> Result<Vec<IpAddr>, SsrfError> {
        check_url(&url(s), &policy)
            .await
            .map(|t| t.addrs.iter().map(SocketAddr::ip).collect())
    }

    fn special(ip: &str, class: AddressClass) -> Result<Vec<IpAddr>, SsrfError> {
        Err(SsrfError::SpecialUseAddress {
            addr: ip.parse().unwrap(),
            class,
        })
    }

    #[tokio::test]
    async fn every_spelling_of_loopback_is_refused() {
        use AddressClass::Loopback;
        let cases = [
            "https://127.0.0.1/x",
            "https://0177.0.0.1/x",
            "https://0x7f.1/x",
            "https://0x7f000001/x",
            "https://2130706433/x",
            "https://017700000001/x",
            "https://127.1/x",
            "https://%31%32%37.0.0.1/x",
            "https://127.0.0.1./x",
        ];
        for s in cases {
            // The url crate turns each into the same address before we see it.
            assert_eq!(url(s).host_str(), Some("127.0.0.1"), "{s}");
            assert_eq!(
                check(s, SsrfPolicy::strict()).await,
                special("127.0.0.1", Loopback),
                "{s}"
            );
        }
        assert_eq!(
            check("https://[::1]/x", SsrfPolicy::strict()).await,
            special("::1", Loopback)
        );
        assert_eq!(
            check("https://[::ffff:127.0.0.1]/x", SsrfPolicy::strict()).await,
            special("::ffff:127.0.0.1", Loopback)
        );
        assert_eq!(
            check("https://[::ffff:7f00:1]/x", SsrfPolicy::strict()).await,
            special("::ffff:127.0.0.1", Loopback)
        );
        assert_eq!(
            check("https://[64:ff9b::7f00:1]/x", SsrfPolicy::strict()).await,
            special("64:ff9b::7f00:1", Loopback)
        );
        assert_eq!(
            check("https://[2002:7f00:1::1]/x", SsrfPolicy::strict()).await,
            special("2002:7f00:1::1", Loopback)
        );
    }

    #[tokio::test]
    async fn special_use_literals_are_refused() {
        use AddressClass as C;
        let cases: &[(&str, &str, AddressClass)] = &[
            ("https://0.0.0.0/", "0.0.0.0", C::Unspecified),
            ("https://0/", "0.0.0.0", C::Unspecified),
            ("https://10.0.0.1/", "10.0.0.1", C::Private),
            ("https://012.1/", "10.0.0.1", C::Private),
            ("https://172.16.5.4/", "172.16.5.4", C::Private),
            ("https://192.168.0.1/", "192.168.0.1", C::Private),
            ("https://0xc0a80001/", "192.168.0.1", C::Private),
            ("https://100.64.0.1/", "100.64.0.1", C::SharedAddressSpace),
            (
                "https://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
                C::LinkLocal,
            ),
            ("https://0xa9fea9fe/", "169.254.169.254", C::LinkLocal),
            ("https://2852039166/", "169.254.169.254", C::LinkLocal),
            ("https://255.255.255.255/", "255.255.255.255", C::Broadcast),
            ("https://192.0.2.1/", "192.0.2.1", C::Documentation),
            ("https://198.18.0.1/", "198.18.0.1", C::Benchmarking),
            ("https://224.0.0.1/", "224.0.0.1", C::Multicast),
            ("https://240.0.0.1/", "240.0.0.1", C::Reserved),
            ("https://[::]/", "::", C::Unspecified),
            ("https://[fd00::1]/", "fd00::1", C::UniqueLocal),
            ("https://[fe80::1]/", "fe80::1", C::LinkLocal),
            ("https://[fec0::1]/", "fec0::1", C::SiteLocal),
            ("https://[ff02::1]/", "ff02::1", C::Multicast),
            ("https://[100::1]/", "100::1", C::DiscardOnly),
            ("https://[2001::1]/", "2001::1", C::Teredo),
            ("https://[2001:db8::1]/", "2001:db8::1", C::Documentation),
            (
                "https://[::ffff:a9fe:a9fe]/",
                "::ffff:169.254.169.254",
                C::LinkLocal,
            ),
            ("https://[::10.0.0.1]/", "::10.0.0.1", C::Private),
            (
                "https://[64:ff9b::10.0.0.1]/",
                "64:ff9b::10.0.0.1",
                C::Private,
            ),
            ("https://[2002:c0a8:1::1]/", "2002:c0a8:1::1", C::Private),
        ];
        for (s, ip, class) in cases {
            assert_eq!(
                check(s, SsrfPolicy::strict()).await,
                special(ip, *class),
                "{s}"
            );
        }
    }

    #[tokio::test]
    async fn public_literals_pass_and_keep_the_port() {
        let t = check_url(&url("https://93.184.215.14:8443/x"), &SsrfPolicy::strict())
            .await
            .unwrap();
        assert_eq!(t.domain, None);
        assert_eq!(t.addrs, vec!["93.184.215.14:8443".parse().unwrap()]);
        let t = check_url(&url("https://[2606:4700::1]/x"), &SsrfPolicy::strict())
            .await
            .unwrap();
        assert_eq!(t.addrs, vec!["[2606:4700::1]:443".parse().unwrap()]);
        assert_eq!(
            check("https://[::ffff:8.8.8.8]/", SsrfPolicy::strict()).await,
            Ok(vec!["::ffff:8.8.8.8".parse().unwrap()])
        );
    }

    #[tokio::test]
    async fn names_are_resolved_and_every_address_checked() {
        // `localhost` resolves without a network; every answer is loopback.
        let got = check("https://localhost/x", SsrfPolicy::strict()).await;
        match got {
            Err(SsrfError::SpecialUseAddress {
                class: AddressClass::Loopback,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let relaxed = SsrfPolicy::strict().allow_private_for_tests_and_airgapped();
        let t = check_url(&url("https://localhost:8443/x"), &relaxed)
            .await
            .unwrap();
        assert_eq!(t.domain.as_deref(), Some("localhost"));
        assert!(!t.addrs.is_empty());
        assert!(
            t.addrs
                .iter()
                .all(|a| a.port() == 8443 && a.ip().is_loopback())
        );
    }

    #[tokio::test]
    async fn schemes() {
        let cases: &[(&str, SsrfError)] = &[
            (
                "http://93.184.215.14/",
                SsrfError::SchemeNotAllowed("http".into()),
            ),
            (
                "ftp://93.184.215.14/",
                SsrfError::SchemeNotAllowed("ftp".into()),
            ),
            (
                "file:///etc/passwd",
                SsrfError::SchemeNotAllowed("file".into()),
            ),
            (
                "gopher://93.184.215.14/",
                SsrfError::SchemeNotAllowed("gopher".into()),
            ),
        ];
        for (s, e) in cases {
            assert_eq!(check(s, SsrfPolicy::strict()).await, Err(e.clone()), "{s}");
        }
        // The http knob alone does not open loopback, and never opens other addresses.
        let http_only = SsrfPolicy::strict().allow_plain_http_to_loopback_for_tests();
        assert_eq!(
            check("http://127.0.0.1:1/", http_only).await,
            special("127.0.0.1", AddressClass::Loopback)
        );
        let both = http_only.allow_private_for_tests_and_airgapped();
        assert_eq!(
            check("http://127.0.0.1:1/", both).await,
            Ok(vec!["127.0.0.1".parse().unwrap()])
        );
        assert_eq!(
            check("http://10.0.0.1/", both).await,
            Err(SsrfError::PlainHttpNotLoopback("10.0.0.1".parse().unwrap()))
        );
        assert_eq!(
            check("http://93.184.215.14/", both).await,
            Err(SsrfError::PlainHttpNotLoopback(
                "93.184.215.14".parse().unwrap()
            ))
        );
    }

    #[tokio::test]
    async fn relaxation_keeps_never_reachable_ranges_refused() {
        let relaxed = SsrfPolicy::strict().allow_private_for_tests_and_airgapped();
        for ok in [
            "https://10.1.2.3/",
            "https://127.0.0.1/",
            "https://[fd00::1]/",
            "https://100.64.1.1/",
        ] {
            assert!(check(ok, relaxed).await.is_ok(), "{ok}");
        }
        assert_eq!(
            check("https://169.254.169.254/", relaxed).await,
            special("169.254.169.254", AddressClass::LinkLocal)
        );
        assert_eq!(
            check("https://0.0.0.0/", relaxed).await,
            special("0.0.0.0", AddressClass::Unspecified)
        );
        assert_eq!(
            check("https://[ff02::1]/", relaxed).await,
            special("ff02::1", AddressClass::Multicast)
        );
    }

    #[test]
    fn default_is_strict() {
        assert_eq!(SsrfPolicy::default(), SsrfPolicy::strict());
        assert!(!SsrfPolicy::default().allows_private_networks());
        assert!(!SsrfPolicy::default().allows_plain_http_to_loopback());
    }

    #[tokio::test]
    async fn pinned_client_refuses_unchecked_names() {
        // A target whose pinned domain differs from the URL's host: the request must
        // not fall back to DNS.
        let target = CheckedTarget {
            url: url("https://unchecked.invalid/x"),
            domain: Some("checked.invalid".into()),
            addrs: vec!["127.0.0.1:9".parse().unwrap()],
        };
        let client = pinned_client(
            &target,
            FetchTimeouts {
                connect: Duration::from_secs(5),
                total: Duration::from_secs(5),
            },
            "test",
        )
        .unwrap();
        let err = client.get(target.url.clone()).send().await.unwrap_err();
        assert!(err.is_connect() || err.is_request(), "{err:?}");
        let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" / ");
        assert!(
            chain.contains("was not checked by the SSRF policy"),
            "{chain}"
        );
    }
}
