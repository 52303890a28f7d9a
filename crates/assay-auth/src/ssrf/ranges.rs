//! Which kind of address an IP is (RFC 6890 and the IANA special-purpose registries).
//!
//! IPv6 works as an allow-list: only global unicast (2000::/3) is public, minus the
//! special blocks inside it; addresses that embed an IPv4 address (mapped, compatible,
//! NAT64, 6to4) are judged by the embedded address, so `::ffff:127.0.0.1` is loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an address is, for the outbound-fetch policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Globally routable; the only class a strict policy allows.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918: 10/8, 172.16/12, 192.168/16.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// fc00::/7 (RFC 4193).
    UniqueLocal,
    /// fec0::/10, deprecated site-local.
    SiteLocal,
    /// 64:ff9b:1::/48, local-use NAT64 (RFC 8215).
    LocalNat64,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// 169.254/16 (cloud metadata lives here), fe80::/10.
    LinkLocal,
    /// 255.255.255.255.
    Broadcast,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 198.18/15, 2001:2::/48.
    Benchmarking,
    /// 224/4, ff00::/8.
    Multicast,
    /// 240/4 (except broadcast), 192.0.0/24, 192.88.99/24, 2001::/23 (except Teredo,
    /// benchmarking, documentation), 5f00::/16, and IPv6 outside 2000::/3.
    Reserved,
    /// 100::/64, discard-only (RFC 6666).
    DiscardOnly,
    /// 2001::/32: a tunnel whose endpoint the policy cannot judge.
    Teredo,
}

impl AddressClass {
    /// Classes that a deployment on a private network may reach when it explicitly
    /// relaxes the policy. Link-local stays refused (cloud metadata endpoints), and so
    /// do the classes that are never a web server.
    pub fn is_private_network(self) -> bool {
        matches!(
            self,
            Self::Loopback
                | Self::Private
                | Self::SharedAddressSpace
                | Self::UniqueLocal
                | Self::SiteLocal
                | Self::LocalNat64
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedAddressSpace => "shared address space (CGNAT)",
            Self::UniqueLocal => "unique local",
            Self::SiteLocal => "site-local",
            Self::LocalNat64 => "local-use NAT64",
            Self::Unspecified => "unspecified",
            Self::LinkLocal => "link-local",
            Self::Broadcast => "broadcast",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Multicast => "multicast",
            Self::Reserved => "reserved",
            Self::DiscardOnly => "discard-only",
            Self::Teredo => "Teredo",
        }
    }
}

impl std::fmt::Display for AddressClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    let [a, b, c, d, e, f, g, h] = net;
    (u128::from(ip) & mask) == (u128::from(Ipv6Addr::new(a, b, c, d, e, f, g, h)) & mask)
}

pub fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass as C;
    // Most specific first: broadcast sits inside 240/4.
    const TABLE: &[([u8; 4], u32, AddressClass)] = &[
        ([255, 255, 255, 255], 32, C::Broadcast),
        ([0, 0, 0, 0], 8, C::Unspecified),
        ([10, 0, 0, 0], 8, C::Private),
        ([100, 64, 0, 0], 10, C::SharedAddressSpace),
        ([127, 0, 0, 0], 8, C::Loopback),
        ([169, 254, 0, 0], 16, C::LinkLocal),
        ([172, 16, 0, 0], 12, C::Private),
        ([192, 0, 0, 0], 24, C::Reserved),
        ([192, 0, 2, 0], 24, C::Documentation),
        ([192, 88, 99, 0], 24, C::Reserved),
        ([192, 168, 0, 0], 16, C::Private),
        ([198, 18, 0, 0], 15, C::Benchmarking),
        ([198, 51, 100, 0], 24, C::Documentation),
        ([203, 0, 113, 0], 24, C::Documentation),
        ([224, 0, 0, 0], 4, C::Multicast),
        ([240, 0, 0, 0], 4, C::Reserved),
    ];
    TABLE
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map_or(C::Public, |(_, _, class)| *class)
}

pub fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass as C;
    let bits = u128::from(ip);
    if bits == 0 {
        return C::Unspecified;
    }
    if bits == 1 {
        return C::Loopback;
    }
    // IPv4-mapped ::ffff:0:0/96 and IPv4-compatible ::/96 (deprecated but still routed
    // to the IPv4 address by some stacks).
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96) || in_v6(ip, [0; 8], 96) {
        return classify_v4(low_v4(bits));
    }
    // NAT64 well-known prefix: the gateway connects to the embedded IPv4 address.
    if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return classify_v4(low_v4(bits));
    }
    // 6to4: 2002:AABB:CCDD::/48 reaches AA.BB.CC.DD.
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        let v4 = ((bits >> 80) & 0xffff_ffff) as u32;
        return classify_v4(Ipv4Addr::from(v4));
    }
    const TABLE: &[([u16; 8], u32, AddressClass)] = &[
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, C::LocalNat64),
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, C::DiscardOnly),
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, C::Teredo),
        ([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, C::Benchmarking),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, C::Documentation),
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, C::Reserved),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, C::Documentation),
        ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, C::Reserved),
        ([0x2000, 0, 0, 0, 0, 0, 0, 0], 3, C::Public),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, C::UniqueLocal),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, C::LinkLocal),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, C::SiteLocal),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, C::Multicast),
    ];
    TABLE
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map_or(C::Reserved, |(_, _, class)| *class)
}

fn low_v4(bits: u128) -> Ipv4Addr {
    Ipv4Addr::from((bits & 0xffff_ffff) as u32)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use AddressClass as C;

    #[test]
    fn ipv4_table() {
        let cases: &[(&str, AddressClass)] = &[
            ("0.0.0.0", C::Unspecified),
            ("0.255.255.255", C::Unspecified),
            ("10.0.0.1", C::Private),
            ("10.255.255.255", C::Private),
            ("100.63.255.255", C::Public),
            ("100.64.0.1", C::SharedAddressSpace),
            ("100.127.255.255", C::SharedAddressSpace),
            ("100.128.0.0", C::Public),
            ("127.0.0.1", C::Loopback),
            ("127.255.255.254", C::Loopback),
            ("169.254.169.254", C::LinkLocal),
            ("172.15.255.255", C::Public),
            ("172.16.0.1", C::Private),
            ("172.31.255.255", C::Private),
            ("172.32.0.0", C::Public),
            ("192.0.0.8", C::Reserved),
            ("192.0.2.1", C::Documentation),
            ("192.88.99.1", C::Reserved),
            ("192.168.1.1", C::Private),
            ("198.17.255.255", C::Public),
            ("198.18.0.1", C::Benchmarking),
            ("198.19.255.255", C::Benchmarking),
            ("198.20.0.0", C::Public),
            ("198.51.100.7", C::Documentation),
            ("203.0.113.9", C::Documentation),
            ("224.0.0.1", C::Multicast),
            ("239.255.255.255", C::Multicast),
            ("240.0.0.1", C::Reserved),
            ("255.255.255.254", C::Reserved),
            ("255.255.255.255", C::Broadcast),
            ("1.1.1.1", C::Public),
            ("8.8.8.8", C::Public),
            ("93.184.215.14", C::Public),
        ];
        for (ip, class) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(classify(ip), *class, "{ip}");
        }
    }

    #[test]
    fn ipv6_table() {
        let cases: &[(&str, AddressClass)] = &[
            ("::", C::Unspecified),
            ("::1", C::Loopback),
            ("::ffff:127.0.0.1", C::Loopback),
            ("::ffff:7f00:1", C::Loopback),
            ("::ffff:10.1.2.3", C::Private),
            ("::ffff:169.254.169.254", C::LinkLocal),
            ("::ffff:8.8.8.8", C::Public),
            ("::127.0.0.1", C::Loopback),
            ("::192.168.0.1", C::Private),
            ("::0.0.0.2", C::Unspecified),
            ("64:ff9b::127.0.0.1", C::Loopback),
            ("64:ff9b::a9fe:a9fe", C::LinkLocal),
            ("64:ff9b::8.8.8.8", C::Public),
            ("64:ff9b:1::1", C::LocalNat64),
            ("2002:7f00:1::", C::Loopback),
            ("2002:a00:1::1", C::Private),
            ("2002:a9fe:a9fe::1", C::LinkLocal),
            ("2002:808:808::1", C::Public),
            ("100::1", C::DiscardOnly),
            ("100:0:0:1::1", C::Reserved),
            ("2001::1", C::Teredo),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", C::Teredo),
            ("2001:2::1", C::Benchmarking),
            ("2001:db8::1", C::Documentation),
            ("2001:10::1", C::Reserved),
            ("2001:20::1", C::Reserved),
            ("2001:1ff::1", C::Reserved),
            ("2001:200::1", C::Public),
            ("2001:4860:4860::8888", C::Public),
            ("2606:4700:4700::1111", C::Public),
            ("3fff::1", C::Documentation),
            ("3fff:fff::1", C::Documentation),
            ("3fff:1000::1", C::Public),
            ("5f00::1", C::Reserved),
            ("fc00::1", C::UniqueLocal),
            ("fd12:3456:789a::1", C::UniqueLocal),
            ("fe80::1", C::LinkLocal),
            ("febf::1", C::LinkLocal),
            ("fec0::1", C::SiteLocal),
            ("ff02::1", C::Multicast),
            ("4000::1", C::Reserved),
            ("::2:0:0:1", C::Reserved),
            ("1::", C::Reserved),
        ];
        for (ip, class) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(classify(ip), *class, "{ip}");
        }
    }

    #[test]
    fn private_network_classes() {
        for c in [
            C::Loopback,
            C::Private,
            C::SharedAddressSpace,
            C::UniqueLocal,
            C::SiteLocal,
            C::LocalNat64,
        ] {
            assert!(c.is_private_network(), "{c}");
        }
        for c in [
            C::Public,
            C::Unspecified,
            C::LinkLocal,
            C::Broadcast,
            C::Documentation,
            C::Benchmarking,
            C::Multicast,
            C::Reserved,
            C::DiscardOnly,
            C::Teredo,
        ] {
            assert!(!c.is_private_network(), "{c}");
        }
    }
}
