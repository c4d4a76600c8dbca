//! The SSRF address guard: which IP addresses an outbound fetch may connect to, and the DNS
//! resolver that enforces it.
//!
//! Only globally reachable unicast addresses are allowed. The ranges come from the IANA
//! special-purpose address registries (RFC 6890 and its updates). Addresses that embed an IPv4
//! address (IPv4-mapped, NAT64, 6to4) are judged by the embedded address, since that is where
//! the packets end up.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::FetchError;

/// The reason given when every address a name resolves to is refused. The address itself is
/// not shown: it may describe the internal network.
pub(crate) const RESOLVES_NON_PUBLIC: &str = "resolves to a non-public address";

/// Why `ip` must not be fetched from, or `None` for a public unicast address.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// IPv4 special-purpose ranges (RFC 6890 §2.2.2 and the IANA registry), first match wins.
const V4_RANGES: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 32, "unspecified address"),
    ([255, 255, 255, 255], 32, "broadcast address"),
    ([0, 0, 0, 0], 8, "\"this network\" address (0.0.0.0/8)"),
    ([10, 0, 0, 0], 8, "private address (RFC 1918)"),
    (
        [100, 64, 0, 0],
        10,
        "shared address (carrier-grade NAT, 100.64.0.0/10)",
    ),
    ([127, 0, 0, 0], 8, "loopback address"),
    ([169, 254, 0, 0], 16, "link-local address"),
    ([172, 16, 0, 0], 12, "private address (RFC 1918)"),
    (
        [192, 0, 0, 0],
        24,
        "IETF protocol assignment (192.0.0.0/24)",
    ),
    ([192, 0, 2, 0], 24, "documentation address"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast address"),
    ([192, 168, 0, 0], 16, "private address (RFC 1918)"),
    ([198, 18, 0, 0], 15, "benchmarking address"),
    ([198, 51, 100, 0], 24, "documentation address"),
    ([203, 0, 113, 0], 24, "documentation address"),
    ([224, 0, 0, 0], 4, "multicast address"),
    ([240, 0, 0, 0], 4, "reserved address (240.0.0.0/4)"),
];

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let n = u32::from(ip);
    V4_RANGES
        .iter()
        .find(|(net, prefix, _)| prefix_matches_v4(n, u32::from_be_bytes(*net), *prefix))
        .map(|(_, _, reason)| *reason)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let n = u128::from(ip);
    // Every network below is fixed by its first three 16-bit groups.
    let in_net = |groups: [u16; 3], prefix: u8| {
        let net = (u128::from(groups[0]) << 112)
            | (u128::from(groups[1]) << 96)
            | (u128::from(groups[2]) << 80);
        prefix_matches_v6(n, net, prefix)
    };
    // The low 32 bits, for prefixes that carry an IPv4 address there.
    let low_v4 = Ipv4Addr::from((n & 0xffff_ffff) as u32);
    if ip.is_unspecified() {
        return Some("unspecified address");
    }
    if ip.is_loopback() {
        return Some("loopback address");
    }
    // ::ffff:0:0/96, IPv4-mapped (RFC 4291 §2.5.5.2): the socket connects to the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    if in_net([0, 0, 0], 96) {
        return Some("IPv4-compatible address (deprecated, RFC 4291)");
    }
    // 64:ff9b::/96, the NAT64 well-known prefix (RFC 6052): a public IPv4 host seen from an
    // IPv6-only network; judged by the embedded address.
    if in_net([0x64, 0xff9b, 0], 96) {
        return v4_reason(low_v4);
    }
    if in_net([0x64, 0xff9b, 0x1], 48) {
        return Some("local-use NAT64 address (RFC 8215)");
    }
    // 2002::/16, 6to4 (RFC 3056): the IPv4 address is in bits 16..48.
    if in_net([0x2002, 0, 0], 16) {
        return v4_reason(Ipv4Addr::from(((n >> 80) & 0xffff_ffff) as u32));
    }
    if in_net([0x2001, 0, 0], 32) {
        return Some("Teredo address (2001::/32)");
    }
    if in_net([0x2001, 0x2, 0], 48) {
        return Some("benchmarking address");
    }
    if in_net([0x2001, 0, 0], 23) {
        return Some("IETF protocol assignment (2001::/23)");
    }
    if in_net([0x2001, 0xdb8, 0], 32) || in_net([0x3fff, 0, 0], 20) {
        return Some("documentation address");
    }
    if in_net([0xfc00, 0, 0], 7) {
        return Some("unique local address (fc00::/7)");
    }
    if in_net([0xfe80, 0, 0], 10) {
        return Some("link-local address");
    }
    if in_net([0xfec0, 0, 0], 10) {
        return Some("site-local address (deprecated)");
    }
    if in_net([0xff00, 0, 0], 8) {
        return Some("multicast address");
    }
    // Everything else outside 2000::/3 (global unicast, RFC 4291 §2.4) is unassigned or
    // special-purpose (discard-only 100::/64, SRv6 SIDs 5f00::/16, ...).
    if !in_net([0x2000, 0, 0], 3) {
        return Some("reserved address (outside 2000::/3)");
    }
    None
}

fn prefix_matches_v4(addr: u32, net: u32, prefix: u8) -> bool {
    let shift = 32 - u32::from(prefix.min(32));
    (addr ^ net).checked_shr(shift).unwrap_or(0) == 0
}

fn prefix_matches_v6(addr: u128, net: u128, prefix: u8) -> bool {
    let shift = 128 - u32::from(prefix.min(128));
    (addr ^ net).checked_shr(shift).unwrap_or(0) == 0
}

/// Why the resolver failed; found again in reqwest's error chain by [`find_guard_error`].
#[derive(Debug, thiserror::Error)]
enum GuardError {
    #[error("refused: {RESOLVES_NON_PUBLIC}")]
    NonPublic,
    #[error("the host name could not be resolved")]
    Unresolvable,
}

/// Resolves with the system resolver and keeps only public addresses. reqwest connects to
/// exactly the addresses returned here, so the check and the connection see the same address.
pub(crate) struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    pub(crate) fn new(allow_private: bool) -> Self {
        GuardedResolver { allow_private }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: hyper replaces it with the URL's port.
            let resolved = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| {
                    Box::new(GuardError::Unresolvable) as Box<dyn StdError + Send + Sync>
                })?;
            let mut any = false;
            let allowed: Vec<SocketAddr> = resolved
                .inspect(|_| any = true)
                .filter(|addr| allow_private || non_public_reason(addr.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let err = if any {
                    tracing::info!(host = %host, "outbound fetch refused: the host resolves only to non-public addresses");
                    GuardError::NonPublic
                } else {
                    GuardError::Unresolvable
                };
                return Err(Box::new(err) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The guard's verdict, if the request failed in the resolver.
pub(crate) fn find_guard_error(err: &reqwest::Error) -> Option<FetchError> {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(guard) = current.downcast_ref::<GuardError>() {
            return Some(match guard {
                GuardError::NonPublic => FetchError::Refused(RESOLVES_NON_PUBLIC),
                GuardError::Unresolvable => {
                    FetchError::Connect("the host name could not be resolved")
                }
            });
        }
        source = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(ip: &str) -> Option<&'static str> {
        non_public_reason(ip.parse().unwrap())
    }

    #[test]
    fn ipv4_table() {
        let refused = [
            ("0.0.0.0", "unspecified address"),
            ("0.1.2.3", "\"this network\" address (0.0.0.0/8)"),
            ("10.0.0.1", "private address (RFC 1918)"),
            ("10.255.255.255", "private address (RFC 1918)"),
            (
                "100.64.0.1",
                "shared address (carrier-grade NAT, 100.64.0.0/10)",
            ),
            (
                "100.127.255.255",
                "shared address (carrier-grade NAT, 100.64.0.0/10)",
            ),
            ("127.0.0.1", "loopback address"),
            ("127.255.0.9", "loopback address"),
            ("169.254.169.254", "link-local address"),
            ("172.16.0.1", "private address (RFC 1918)"),
            ("172.31.255.255", "private address (RFC 1918)"),
            ("192.0.0.170", "IETF protocol assignment (192.0.0.0/24)"),
            ("192.0.2.10", "documentation address"),
            ("192.88.99.1", "6to4 relay anycast address"),
            ("192.168.1.1", "private address (RFC 1918)"),
            ("198.18.0.1", "benchmarking address"),
            ("198.19.255.255", "benchmarking address"),
            ("198.51.100.7", "documentation address"),
            ("203.0.113.9", "documentation address"),
            ("224.0.0.1", "multicast address"),
            ("239.255.255.250", "multicast address"),
            ("240.0.0.1", "reserved address (240.0.0.0/4)"),
            ("255.255.255.254", "reserved address (240.0.0.0/4)"),
            ("255.255.255.255", "broadcast address"),
        ];
        for (ip, expected) in refused {
            assert_eq!(reason(ip), Some(expected), "{ip}");
            // Reasons reach clients in error messages.
            assert!(expected.is_ascii(), "{expected}");
        }
        // Public neighbours of the ranges above.
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.0.3.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "203.0.112.1",
            "223.255.255.255",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn ipv6_table() {
        let refused = [
            ("::", "unspecified address"),
            ("::1", "loopback address"),
            // IPv4-mapped: judged by the embedded address.
            ("::ffff:127.0.0.1", "loopback address"),
            ("::ffff:10.1.2.3", "private address (RFC 1918)"),
            ("::ffff:169.254.169.254", "link-local address"),
            (
                "::127.0.0.1",
                "IPv4-compatible address (deprecated, RFC 4291)",
            ),
            (
                "::8.8.8.8",
                "IPv4-compatible address (deprecated, RFC 4291)",
            ),
            ("64:ff9b::127.0.0.1", "loopback address"),
            ("64:ff9b::192.168.0.1", "private address (RFC 1918)"),
            ("64:ff9b:1::1", "local-use NAT64 address (RFC 8215)"),
            ("2002:7f00:1::", "loopback address"),
            ("2002:a9fe:a9fe::1", "link-local address"),
            ("2001::1", "Teredo address (2001::/32)"),
            (
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                "Teredo address (2001::/32)",
            ),
            ("2001:2::1", "benchmarking address"),
            ("2001:10::1", "IETF protocol assignment (2001::/23)"),
            ("2001:db8::1", "documentation address"),
            ("3fff::1", "documentation address"),
            ("fc00::1", "unique local address (fc00::/7)"),
            ("fd12:3456::1", "unique local address (fc00::/7)"),
            ("fe80::1", "link-local address"),
            ("febf::1", "link-local address"),
            ("fec0::1", "site-local address (deprecated)"),
            ("ff02::1", "multicast address"),
            ("ff0e::1", "multicast address"),
            ("100::1", "reserved address (outside 2000::/3)"),
            ("5f00::1", "reserved address (outside 2000::/3)"),
            ("4000::1", "reserved address (outside 2000::/3)"),
        ];
        for (ip, expected) in refused {
            assert_eq!(reason(ip), Some(expected), "{ip}");
            // Reasons reach clients in error messages.
            assert!(expected.is_ascii(), "{expected}");
        }
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:82b::200e",
            "2001:4860:4860::8888",
            "2001:200::1",
            // NAT64 and 6to4 of a public IPv4 address.
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
            "3fff:1000::1",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn prefix_edges() {
        assert!(prefix_matches_v4(0, 0, 0));
        assert!(prefix_matches_v4(u32::MAX, 0, 0));
        assert!(prefix_matches_v4(5, 5, 32));
        assert!(!prefix_matches_v4(5, 4, 32));
        assert!(prefix_matches_v6(u128::MAX, 0, 0));
        assert!(!prefix_matches_v6(1, 0, 128));
    }
}
