//! How long a fetched document may be reused, from its response headers (RFC 9111 §5.2.2).

use reqwest::header::{HeaderMap, CACHE_CONTROL};

/// `max-age` of a `Cache-Control` header; `no-store` and `no-cache` count as 0.
pub(crate) fn cache_control_max_age(headers: &HeaderMap) -> Option<u64> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((name, arg)) => (name.trim(), Some(arg.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Some(0);
            }
            if name.eq_ignore_ascii_case("max-age") {
                // RFC 9111 §1.2.2: a delta-seconds too large to represent is "infinity".
                max_age = arg.and_then(|a| {
                    if !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) {
                        Some(a.parse::<u64>().unwrap_or(u64::MAX))
                    } else {
                        None
                    }
                });
            }
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn cache_control_parsing() {
        let parse = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
            }
            cache_control_max_age(&headers)
        };
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&["public, max-age=600"]), Some(600));
        assert_eq!(parse(&["Max-Age=\"120\""]), Some(120));
        assert_eq!(parse(&["max-age=600, no-cache"]), Some(0));
        assert_eq!(parse(&["no-store"]), Some(0));
        assert_eq!(parse(&["max-age=-1"]), None);
        assert_eq!(parse(&["max-age=abc"]), None);
        assert_eq!(parse(&["max-age=99999999999999999999999"]), Some(u64::MAX));
        assert_eq!(parse(&["public", "max-age=30"]), Some(30));
    }
}
