//! URIs as written: the RFC 3986 syntax a redirect URI must have character for character, and
//! what a host name or address means (the local machine or not).
//!
//! The `url` crate parses the WHATWG way, which repairs what it reads: `https:///cb` becomes the
//! host `cb`, `https://0/` becomes `0.0.0.0`, `localhost.` and `LocalHost` are names like any
//! other. A redirect URI is stored and later matched as the exact string received (OIDC DCR §6),
//! so it must already be what it seems: these checks read the raw string.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::Host;

/// Where a host is, for the rules that depend on the local machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locality {
    /// A loopback name or address: `localhost` and every name under it (RFC 6761 §6.3), in any
    /// case and with or without a trailing dot; 127.0.0.0/8, ::1, and IPv4-mapped loopback.
    Loopback,
    /// The unspecified address (0.0.0.0, ::, `0`): the local machine, but not a loopback
    /// interface.
    Unspecified,
    /// Anything else.
    Remote,
}

impl Locality {
    /// The local machine, loopback or not.
    pub fn is_local(self) -> bool {
        self != Locality::Remote
    }
}

/// The one classification of hosts that the redirect rules, the matching of native loopback
/// URIs and the configuration share.
pub fn locality(host: &Host<&str>) -> Locality {
    match host {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                Locality::Loopback
            } else {
                Locality::Remote
            }
        }
        Host::Ipv4(ip) => ip_locality(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => ip_locality(IpAddr::V6(*ip)),
    }
}

fn ip_locality(ip: IpAddr) -> Locality {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Locality::Loopback,
        IpAddr::V4(v4) if v4 == Ipv4Addr::UNSPECIFIED => Locality::Unspecified,
        IpAddr::V4(_) => Locality::Remote,
        IpAddr::V6(v6) if v6.is_loopback() => Locality::Loopback,
        IpAddr::V6(v6) if v6 == Ipv6Addr::UNSPECIFIED => Locality::Unspecified,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => ip_locality(IpAddr::V4(v4)),
            None => Locality::Remote,
        },
    }
}

/// Whether a character is a bidirectional control (Unicode's Bidi_Control property): it can
/// make a string display as something else than it is.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Why a redirect URI is not a URI as RFC 3986 §3 writes one, or `None` when it is. Only ASCII
/// is allowed (other characters are percent-encoded, RFC 3986 §2.1, RFC 3987 §3.1), an `http` or
/// `https` URI has an authority with a non-empty host and no user information, and a host name
/// is a DNS name (RFC 1123 §2.1).
pub fn redirect_syntax_error(uri: &str) -> Option<&'static str> {
    if !uri.is_ascii() {
        return Some("contains characters outside ASCII; percent-encode them");
    }
    let (scheme, rest) = uri.split_once(':')?;
    let hierarchical = rest.strip_prefix("//");
    if matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") && hierarchical.is_none() {
        return Some("must have an authority (//host)");
    }
    let (authority, path_and_query) = match hierarchical {
        Some(after) => {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            (Some(&after[..end]), &after[end..])
        }
        None => (None, rest),
    };
    if let Some(authority) = authority {
        if let Some(why) = authority_error(authority) {
            return Some(why);
        }
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    // a fragment is refused by the caller with its own message
    let query = query.map(|q| q.split('#').next().unwrap_or(q));
    let path = path.split('#').next().unwrap_or(path);
    if !path.split('/').all(|segment| all_allowed(segment, b"")) {
        return Some("has a path with characters RFC 3986 does not allow");
    }
    if query.is_some_and(|q| !all_allowed(q, b"/?")) {
        return Some("has a query with characters RFC 3986 does not allow");
    }
    None
}

fn authority_error(authority: &str) -> Option<&'static str> {
    if authority.contains('@') {
        return Some("must not carry user information (an @ in the authority)");
    }
    let (host, port) = if let Some(literal) = authority.strip_prefix('[') {
        let Some((inside, after)) = literal.split_once(']') else {
            return Some("has an IPv6 literal without its closing bracket");
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Some("has a host that is not a valid IPv6 literal");
        }
        if !(after.is_empty() || after.starts_with(':')) {
            return Some("has characters after its IPv6 literal");
        }
        (None, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(authority), None),
        }
    };
    if let Some(port) = port {
        if !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err() {
            return Some("has a port that is not a number from 0 to 65535");
        }
    }
    match host {
        None => None,
        Some("") => Some("has an empty host"),
        Some(name) => {
            let labels_ok = name.trim_end_matches('.').split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
            (!labels_ok).then_some("has a host that is not a DNS name or an IP address")
        }
    }
}

/// RFC 3986 §3.3 `pchar` (unreserved, pct-encoded, sub-delims, `:` and `@`) plus `extra`.
fn all_allowed(text: &str, extra: &[u8]) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let ok = b.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,;=:@".contains(&b)
            || extra.contains(&b)
            || (b == b'%'
                && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit));
        if !ok {
            return false;
        }
        i += if b == b'%' { 3 } else { 1 };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(uri: &str) -> Locality {
        let url = url::Url::parse(uri).unwrap();
        locality(&url.host().unwrap())
    }

    #[test]
    fn what_a_host_means_not_how_it_is_written() {
        for loopback in [
            "https://localhost/cb",
            "https://localhost./cb",
            "https://LocalHost./cb",
            "https://sub.localhost/cb",
            "https://127.0.0.1/cb",
            "https://127.1.2.3/cb",
            "https://[::1]/cb",
            "https://[::ffff:127.0.0.1]/cb",
        ] {
            assert_eq!(host_of(loopback), Locality::Loopback, "{loopback}");
        }
        for unspecified in ["https://0.0.0.0/cb", "https://0/cb", "https://[::]/cb"] {
            assert_eq!(host_of(unspecified), Locality::Unspecified, "{unspecified}");
        }
        for remote in [
            "https://localhost.example/cb",
            "https://notlocalhost/cb",
            "https://10.0.0.1/cb",
            "https://[::ffff:10.0.0.1]/cb",
        ] {
            assert_eq!(host_of(remote), Locality::Remote, "{remote}");
        }
    }

    #[test]
    fn redirect_uris_must_be_what_they_seem() {
        for bad in [
            "https:///cb",
            "https://@rp.example.com/cb",
            "https://:@rp.example.com/cb",
            "https://user@rp.example.com/cb",
            "https://*.rp.example.com/cb",
            "https://*/cb",
            "https://rp.example.com/\u{202E}bc",
            "https://rp.example.com/caf\u{e9}",
            "https://rp.example.com:99999/cb",
            "https://rp.example.com:/cb",
            "https://rp.example.com/c%zz",
            "https://rp.example.com/cb?x=<script>",
            "https://rp.example.com/a b",
            "https:rp.example.com/cb",
            "https://rp..example.com/cb",
            "https://[::1/cb",
            "https://[nothex]/cb",
        ] {
            assert!(redirect_syntax_error(bad).is_some(), "{bad:?}");
        }
        for good in [
            "https://rp.example.com/cb",
            "https://rp.example.com:8443/cb?x=1&y=%2F",
            "http://127.0.0.1:51004/cb",
            "http://[::1]:8080/cb",
            "https://rp.example.com/caf%C3%A9",
            "https://rp.example.com.",
            "com.example.app:/oauth2redirect/example-provider",
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "https://rp.example.com/cb#fragment",
        ] {
            assert_eq!(redirect_syntax_error(good), None, "{good:?}");
        }
        assert!(is_bidi_control('\u{202E}'));
        assert!(!is_bidi_control('e'));
    }
}
