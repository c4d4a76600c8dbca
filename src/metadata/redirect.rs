//! Redirect URIs: the registration rules (OIDC DCR §2, RFC 6749 §3.1.2, RFC 8252 §7 for native
//! clients) and the matching rule used at the authorization endpoint (OIDC Core §3.1.2.1,
//! RFC 8252 §7.3). docs/conformance.md lists them under "Redirect URIs at registration" and
//! "Redirect URI matching at use".
//!
//! Values are checked on the exact string received and stored unchanged (OIDC DCR §6); the `url`
//! crate is used only to read the parts, never to rewrite a value.

use url::{Host, Url};

use super::uri::{is_bidi_control, locality, redirect_syntax_error, Locality};
use super::{invalid_redirect_uri, quoted, ApplicationType, MetadataError};

/// What the rules for one redirect URI depend on.
#[derive(Debug, Clone, Copy)]
pub struct RedirectRules<'a> {
    pub application_type: ApplicationType,
    /// The client uses the implicit flow: `implicit` is registered, or a response type returns a
    /// token or ID Token from the authorization endpoint (OIDC DCR §2; conformance:
    /// web-implicit-https-not-loopback).
    pub uses_implicit: bool,
    /// Claimed https redirect URIs for native clients (RFC 8252 §7.2; a project decision, see
    /// docs/conformance.md `native-claimed-https`).
    pub allow_native_https: bool,
    /// Private-use schemes accepted for native clients although they are not reverse domain
    /// names (RFC 8252 §7.1 makes that form a SHOULD; configuration
    /// `allowed_private_use_schemes`, docs/conformance.md `private-use-scheme-allow-list`).
    pub private_use_schemes: &'a [String],
}

/// Schemes never acceptable as a redirect target (RFC 6749 §10.15; a project decision, see
/// docs/conformance.md `redirect-uri-forbidden-schemes`).
const FORBIDDEN_SCHEMES: [&str; 6] = ["javascript", "data", "vbscript", "file", "about", "blob"];

/// Check one registered redirect URI (OIDC DCR §2, RFC 6749 §3.1.2, RFC 8252 §7); every failure
/// is `invalid_redirect_uri`.
pub fn check(uri: &str, rules: RedirectRules) -> Result<(), MetadataError> {
    let refuse = |why: &str| {
        Err(invalid_redirect_uri(format!(
            "redirect URI {} {why}",
            quoted(uri)
        )))
    };
    let Some(url) = parse_strict(uri) else {
        return refuse("is not an absolute URI");
    };
    // RFC 6749 §3.1.2: no fragment component (an empty one counts too).
    if uri.contains('#') {
        return refuse("must not contain a fragment");
    }
    // RFC 3986 §3, as written: what is stored is what is matched later (OIDC DCR §6)
    if let Some(why) = redirect_syntax_error(uri) {
        return refuse(why);
    }
    let scheme = url.scheme();
    if FORBIDDEN_SCHEMES.contains(&scheme) {
        return refuse("uses a scheme that is never accepted");
    }
    let is_http = scheme == "http";
    let is_https = scheme == "https";
    if (is_http || is_https) && (!url.username().is_empty() || url.password().is_some()) {
        return refuse("must not carry user information");
    }
    let place = url.host().map_or(Locality::Remote, |h| locality(&h));
    let loopback = place == Locality::Loopback;
    match rules.application_type {
        ApplicationType::Web => {
            if rules.uses_implicit {
                // OIDC DCR §2: web clients using implicit must use https and not localhost
                // (conformance: web-implicit-https-not-loopback).
                if !is_https {
                    return refuse("must use https: the client uses the implicit flow");
                }
                if place.is_local() {
                    return refuse(
                        "must not be on the local machine: the client uses the implicit flow",
                    );
                }
            } else if is_http && !loopback {
                // RFC 7591 §5: plain http only on the local machine (accepting it for web
                // clients is a project decision, see docs/conformance.md
                // `web-loopback-http-allowed`).
                return refuse("uses http on a host that is not the local machine");
            } else if !is_http && !is_https {
                return refuse("must use https (private-use schemes are for native clients)");
            }
        }
        ApplicationType::Native => {
            if is_http {
                // RFC 8252 §7.3: loopback interface redirection only.
                if !loopback {
                    return refuse("uses http on a host that is not a loopback address");
                }
            } else if is_https {
                if !rules.allow_native_https {
                    return refuse(
                        "is https, which this server does not accept for native clients",
                    );
                }
            } else if !scheme.contains('.')
                && !rules
                    .private_use_schemes
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(scheme))
            {
                // RFC 8252 §7.1, §8.4: private-use schemes are reverse domain names, unless the
                // operator allowed this one by name.
                return refuse("uses a private-use scheme that is not a reverse domain name");
            }
        }
    }
    Ok(())
}

/// Whether a redirect URI is one only a native app uses (RFC 8252 §7): http on a loopback
/// host, or a scheme other than http and https. A client that omits `application_type` and
/// registers only such URIs is registered as native (docs/conformance.md
/// `application-type-inferred`).
pub fn is_native_only(uri: &str) -> bool {
    let Some(url) = parse_strict(uri) else {
        return false;
    };
    match url.scheme() {
        "https" => false,
        "http" => url
            .host()
            .is_some_and(|h| locality(&h) == Locality::Loopback),
        _ => true,
    }
}

/// Parse an absolute URL, refusing strings the `url` crate would silently repair (whitespace,
/// control characters and backslashes are stripped or rewritten by WHATWG parsing, and a stored
/// value must match itself exactly later) and strings that display as something else
/// (bidirectional controls).
pub fn parse_strict(value: &str) -> Option<Url> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || is_bidi_control(c))
    {
        return None;
    }
    let scheme_end = value.find(':')?;
    let scheme = &value[..scheme_end];
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    Url::parse(value).ok()
}

/// A loopback host (RFC 8252 §7.3, §8.3; counting `localhost` is a project decision, see
/// docs/conformance.md `native-localhost-accepted`): see [`locality`].
pub fn is_loopback(host: &Host<&str>) -> bool {
    locality(host) == Locality::Loopback
}

/// The host a redirect URI names, if any (private-use schemes usually have none).
pub fn host_of(uri: &str) -> Option<String> {
    Url::parse(uri).ok()?.host_str().map(str::to_owned)
}

/// Whether `presented` (from an authorization request) matches the registered
/// `registered`. Simple string comparison, code point by code point (OIDC Core §3.1.2.1), except
/// that for a native client's http loopback URI the port may differ or be absent (RFC 8252 §7.3).
pub fn matches(registered: &str, presented: &str, application_type: ApplicationType) -> bool {
    if registered == presented {
        return true;
    }
    if application_type != ApplicationType::Native {
        return false;
    }
    match (
        loopback_without_port(registered),
        loopback_without_port(presented),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `http://host[:port]rest` with the port removed, for an http URI on a loopback host; `None`
/// otherwise, and for a port that is not a number from 1 to 65535 (an empty one included).
/// Works on the raw string so that nothing else is normalised.
fn loopback_without_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => {
            let port = &authority[i + 1..];
            let valid = (1..=5).contains(&port.len())
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u16>().is_ok_and(|p| p != 0);
            if !valid {
                return None;
            }
            &authority[..i]
        }
        _ => authority,
    };
    let loopback = Host::parse(host).is_ok_and(|h| {
        let h: Host<&str> = match &h {
            Host::Domain(d) => Host::Domain(d.as_str()),
            Host::Ipv4(ip) => Host::Ipv4(*ip),
            Host::Ipv6(ip) => Host::Ipv6(*ip),
        };
        locality(&h) == Locality::Loopback
    });
    loopback.then(|| format!("http://{host}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: RedirectRules = RedirectRules {
        application_type: ApplicationType::Web,
        uses_implicit: false,
        allow_native_https: true,
        private_use_schemes: &[],
    };
    const WEB_IMPLICIT: RedirectRules = RedirectRules {
        uses_implicit: true,
        ..WEB
    };
    const NATIVE: RedirectRules = RedirectRules {
        application_type: ApplicationType::Native,
        ..WEB
    };

    #[test]
    fn web_rules() {
        for ok in [
            "https://rp.example/cb",
            "https://rp.example/cb?x=1",
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "https://rp.example/caf%C3%A9",
        ] {
            assert!(check(ok, WEB).is_ok(), "{ok}");
        }
        for bad in [
            "/cb",
            "rp.example/cb",
            "https://rp.example/cb#x",
            "https://rp.example/cb#",
            "http://rp.example/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "https://user@rp.example/cb",
            "com.example.app:/cb",
            "https://rp.example/c b",
            "https://rp.example/cb\n",
            " https://rp.example/cb",
            "https:\\\\rp.example\\cb",
            "",
        ] {
            assert!(check(bad, WEB).is_err(), "{bad:?}");
        }
        assert!(check("https://rp.example/cb", WEB_IMPLICIT).is_ok());
        for bad in [
            "http://127.0.0.1/cb",
            "https://localhost/cb",
            "https://127.0.0.1/cb",
            "http://rp.example/cb",
            // the local machine however it is written (OIDC DCR §2; RFC 6761 §6.3)
            "https://localhost./cb",
            "https://LocalHost./cb",
            "https://sub.localhost/cb",
            "https://[::ffff:127.0.0.1]/cb",
            "https://0.0.0.0/cb",
            "https://0/cb",
            "https://[::]/cb",
        ] {
            assert!(check(bad, WEB_IMPLICIT).is_err(), "{bad}");
        }
        for bad in [
            "https:///cb",
            "https://@rp.example/cb",
            "https://:@rp.example/cb",
            "https://*/cb",
            "https://rp.example/\u{202E}bc",
            "https://rp.example/caf\u{e9}",
        ] {
            assert!(check(bad, WEB).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn native_rules() {
        for ok in [
            "com.example.app:/oauth2redirect/example-provider",
            "http://127.0.0.1:51004/cb",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
            "https://app.example.com/oauth2redirect",
        ] {
            assert!(check(ok, NATIVE).is_ok(), "{ok}");
        }
        for bad in [
            "myapp:/cb",
            "http://app.example.com/cb",
            "com.example.app:/cb#frag",
        ] {
            assert!(check(bad, NATIVE).is_err(), "{bad}");
        }
        let no_https = RedirectRules {
            allow_native_https: false,
            ..NATIVE
        };
        assert!(check("https://app.example.com/cb", no_https).is_err());
    }

    #[test]
    fn private_use_schemes_the_operator_allows() {
        // Cursor's scheme is not a reverse domain name (RFC 8252 §7.1 SHOULD)
        let cursor = "cursor://anysphere.cursor-mcp/oauth/callback";
        assert!(check(cursor, NATIVE).is_err());
        let allowed = ["cursor".to_owned()];
        let with_cursor = RedirectRules {
            private_use_schemes: &allowed,
            ..NATIVE
        };
        assert!(check(cursor, with_cursor).is_ok());
        assert!(check("Cursor://anysphere.cursor-mcp/cb", with_cursor).is_ok());
        // only the schemes named, and never for web clients
        assert!(check("vscode://cb", with_cursor).is_err());
        let web_with_cursor = RedirectRules {
            private_use_schemes: &allowed,
            ..WEB
        };
        assert!(check(cursor, web_with_cursor).is_err());
        // the other rules still apply
        assert!(check("cursor://anysphere.cursor-mcp/cb#x", with_cursor).is_err());
    }

    #[test]
    fn native_only_uris() {
        for native in [
            "http://127.0.0.1:3334/callback",
            "http://localhost:8765/callback",
            "http://[::1]/cb",
            "com.example.app:/cb",
            "cursor://anysphere.cursor-mcp/oauth/callback",
        ] {
            assert!(is_native_only(native), "{native}");
        }
        for web in [
            "https://rp.example/cb",
            "https://localhost/cb",
            "http://rp.example/cb",
            "http://0.0.0.0/cb",
            "not a uri",
        ] {
            assert!(!is_native_only(web), "{web}");
        }
    }

    #[test]
    fn matching() {
        use ApplicationType::*;
        let reg = "https://rp.example/cb";
        assert!(matches(reg, reg, Web));
        for near in [
            "https://rp.example/cb/",
            "https://RP.example/cb",
            "https://rp.example/c%62",
            "https://rp.example/cb?x=1",
            "https://rp.example:443/cb",
        ] {
            assert!(!matches(reg, near, Web), "{near}");
        }
        // OIDC DCR §6: precomposed é vs e + combining acute
        assert!(!matches(
            "https://rp.example/caf%C3%A9",
            "https://rp.example/cafe%CC%81",
            Web
        ));
        // RFC 8252 §7.3: any port for native loopback only (conformance: native-loopback-any-port)
        assert!(matches(
            "http://127.0.0.1:8080/cb",
            "http://127.0.0.1:9090/cb",
            Native
        ));
        assert!(matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:9090/cb",
            Native
        ));
        assert!(matches("http://[::1]:1/cb", "http://[::1]:2/cb", Native));
        assert!(!matches(
            "http://127.0.0.1:8080/cb",
            "http://127.0.0.1:9090/cb",
            Web
        ));
        assert!(!matches(
            "http://127.0.0.1:8080/cb",
            "http://127.0.0.1:9090/cb2",
            Native
        ));
        assert!(!matches(
            "http://127.0.0.1:8080/cb",
            "http://[::1]:8080/cb",
            Native
        ));
        assert!(!matches(
            "http://127.0.0.1:8080/cb",
            "http://127.0.0.1:x/cb",
            Native
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example:1/cb",
            Native
        ));
        // a port is a number from 1 to 65535
        for port in [
            "99999",
            "12345678901234567890",
            "000080",
            "",
            "0",
            "-1",
            "65536",
        ] {
            let presented = format!("http://127.0.0.1:{port}/cb");
            assert!(
                !matches("http://127.0.0.1:8080/cb", &presented, Native),
                "{presented}"
            );
        }
        assert!(matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:65535/cb",
            Native
        ));
    }
}
