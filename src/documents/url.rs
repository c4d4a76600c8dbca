//! The client identifier URL of a client ID metadata document
//! (draft-ietf-oauth-client-id-metadata-document §3), checked before anything is fetched.

use url::Url;

/// Longest client identifier URL looked at, in bytes. The draft sets no limit (§3 recommends a
/// short URL); this one only keeps made-up identifiers from costing memory and log space.
pub const MAX_URL_BYTES: usize = 2048;

/// Whether `client_id` is meant as a client identifier URL. A client_id this registrar issues
/// is a compact JWS, which can never start with `https:`.
pub fn is_document_url(client_id: &str) -> bool {
    client_id
        .get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https:"))
}

/// Parse and check a client identifier URL (§3). Returns why it is not one.
///
/// The URL must already be in the normal form URL parsing gives it (lower-case scheme and host,
/// no default port, no dot segments): §3 compares client identifiers as plain strings and the
/// document's `client_id` must equal the URL it was fetched from, so a client_id that is not
/// exactly the URL fetched would name a document that cannot match it.
pub fn parse(client_id: &str) -> Result<Url, String> {
    if client_id.len() > MAX_URL_BYTES {
        return Err(format!("is longer than {MAX_URL_BYTES} bytes"));
    }
    let url = Url::parse(client_id).map_err(|_| "is not a valid absolute URL".to_owned())?;
    if url.scheme() != "https" {
        return Err("must use the https scheme".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if client_id.contains('#') {
        return Err("must not contain a fragment".into());
    }
    if url.host().is_none() {
        return Err("must have a host".into());
    }
    if has_dot_segment(client_id) {
        return Err("must not contain . or .. path segments".into());
    }
    if url.as_str() != client_id {
        return Err(format!(
            "is not in normal form: the document would be fetched from {}, which is not the \
             client_id (clients must use the URL exactly as it is fetched)",
            url.as_str()
        ));
    }
    if url.path().is_empty() {
        return Err("must contain a path".into());
    }
    Ok(url)
}

/// Whether the path of `raw` (before any query) has a `.` or `..` segment, percent-encoded
/// dots included (`%2e`, as URL parsing also treats them).
fn has_dot_segment(raw: &str) -> bool {
    let after_scheme = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let path = match after_scheme.find('/') {
        Some(start) => &after_scheme[start..],
        None => return false,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

/// Whether `host` is allowed by `allowed_hosts`: an exact host name, or `*.example.com` for
/// any host below example.com (not example.com itself). Host names compare case-insensitively;
/// the parsed URL's host is already lower-case.
pub fn host_allowed(host: &str, allowed_hosts: &[String]) -> bool {
    allowed_hosts
        .iter()
        .any(|allowed| match allowed.strip_prefix("*.") {
            Some(parent) => host
                .strip_suffix(parent)
                .is_some_and(|below| below.len() > 1 && below.ends_with('.')),
            None => host.eq_ignore_ascii_case(allowed),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_identifier_urls() {
        for good in [
            "https://app.example.com/oauth/client.json",
            "https://app.example.com:8443/client",
            "https://app.example.com/client?v=1",
            "https://app.example.com/",
            "https://[2001:db8::1]/client",
        ] {
            assert_eq!(parse(good).map(|u| u.to_string()), Ok(good.to_owned()));
        }
        for (bad, why) in [
            ("http://app.example.com/client", "https"),
            ("https://user:pw@app.example.com/client", "user name"),
            ("https://app.example.com/client#x", "fragment"),
            ("https://app.example.com/client#", "fragment"),
            ("https://app.example.com/a/../client", ". or .."),
            ("https://app.example.com/./client", ". or .."),
            ("https://app.example.com/%2E%2e/client", ". or .."),
            ("https://app.example.com/a/.%2e", ". or .."),
            ("https://App.Example.com/client", "normal form"),
            ("https://app.example.com:443/client", "normal form"),
            ("https://app.example.com", "normal form"),
            ("https://app.example.com/a b", "normal form"),
            ("https:app.example.com/client", "normal form"),
            ("https://", "valid absolute URL"),
            ("not a url", "valid absolute URL"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let long = format!("https://app.example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(parse(&long).unwrap_err().contains("longer"));
    }

    #[test]
    fn document_urls_are_told_from_issued_client_ids() {
        assert!(is_document_url("https://app.example.com/client"));
        assert!(is_document_url("HTTPS://app.example.com/client"));
        assert!(!is_document_url("eyJhbGciOiJFUzI1NiJ9.e30.sig"));
        assert!(!is_document_url("http://app.example.com/client"));
        assert!(!is_document_url("https"));
        assert!(!is_document_url("é"));
    }

    #[test]
    fn allowed_hosts() {
        let allowed = vec!["app.example.com".to_owned(), "*.clients.example".to_owned()];
        assert!(host_allowed("app.example.com", &allowed));
        assert!(host_allowed("vscode.clients.example", &allowed));
        assert!(host_allowed("a.b.clients.example", &allowed));
        assert!(!host_allowed("clients.example", &allowed));
        assert!(!host_allowed("evilclients.example", &allowed));
        assert!(!host_allowed("other.example.com", &allowed));
        assert!(!host_allowed("app.example.com.evil", &allowed));
    }
}
