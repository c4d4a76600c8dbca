//! Every registration rule that needs more than a JSON type: values the policy supports
//! (RFC 8414 §2, OIDC Discovery §3), response/grant type consistency (OIDC DCR §2, RFC 7591
//! §2.1), redirect URIs (OIDC DCR §2, RFC 8252), keys, URLs and cross-field rules, subject types
//! and sectors (OIDC Core §8).

use std::collections::BTreeSet;

use super::redirect::{self, RedirectRules};
use super::{
    invalid_metadata, invalid_redirect_uri, quoted, AuthMethod, ClientMetadata, Encryption,
    GrantType, MetadataError, ResponseToken, SubjectType,
};
use crate::config::Policy;
use crate::jwks::PublicJwkSet;

/// What validation learns that the client_id must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The sector of a pairwise client: the host of `sector_identifier_uri`, or the single
    /// redirect URI host (OIDC Core §8.1).
    pub sector_host: Option<String>,
}

/// Most keys a registered `jwks` may hold: enough to rotate signing and encryption keys, few
/// enough to keep the client_id within its size limit.
pub const MAX_JWKS_KEYS: usize = 10;

/// Check validated-shape metadata against `policy` (what discovery advertises).
/// `allow_native_https` accepts claimed https redirect URIs for native clients (RFC 8252 §7.2).
pub fn validate(
    md: &ClientMetadata,
    policy: &Policy,
    allow_native_https: bool,
    private_use_schemes: &[String],
) -> Result<Validated, MetadataError> {
    // grant types and response types (OIDC DCR §2, RFC 7591 §2.1)
    within_policy("grant type", &md.grant_types, &policy.grant_types)?;
    within_policy("response type", &md.response_types, &policy.response_types)?;
    check_consistency(md)?;

    // redirect URIs (OIDC DCR §2; RFC 7591 §2 makes them required for redirect-based grants)
    let redirect_based = md.grant_types.iter().any(|g| g.is_redirect_based());
    if redirect_based && md.redirect_uris.is_empty() {
        return Err(invalid_redirect_uri(
            "redirect_uris is required for the authorization_code and implicit grants",
        ));
    }
    let redirect_rules = RedirectRules {
        application_type: md.application_type,
        uses_implicit: md.uses_implicit(),
        allow_native_https,
        private_use_schemes,
    };
    for uri in &md.redirect_uris {
        redirect::check(uri, redirect_rules)?;
    }

    // token endpoint authentication (RFC 7591 §2, OIDC Core §9)
    let method = md.token_endpoint_auth_method;
    if !policy.token_endpoint_auth_methods.contains(&method) {
        return Err(invalid_metadata(format!(
            "token_endpoint_auth_method {} is not supported",
            quoted(method.as_str())
        )));
    }
    if let Some(alg) = &md.token_endpoint_auth_signing_alg {
        if alg == "none" {
            // OIDC DCR §2: "none" must not be used
            return Err(invalid_metadata(
                "token_endpoint_auth_signing_alg must not be \"none\"",
            ));
        }
        supported(
            "token_endpoint_auth_signing_alg",
            alg,
            &policy.token_endpoint_auth_signing_algs,
        )?;
        match method {
            AuthMethod::ClientSecretJwt if !super::is_mac_alg(alg) => {
                return Err(invalid_metadata(
                    "client_secret_jwt needs an HS* token_endpoint_auth_signing_alg",
                ))
            }
            AuthMethod::PrivateKeyJwt if super::is_mac_alg(alg) => {
                return Err(invalid_metadata(
                    "private_key_jwt needs an asymmetric token_endpoint_auth_signing_alg",
                ))
            }
            _ => {}
        }
    }

    // algorithms against what discovery advertises (OIDC Discovery §3)
    supported(
        "id_token_signed_response_alg",
        &md.id_token_signed_response_alg,
        &policy.id_token_signing_algs,
    )?;
    if md.id_token_signed_response_alg == "none"
        && md
            .response_types
            .iter()
            .any(|r| r.contains(ResponseToken::IdToken))
    {
        // OIDC DCR §2: "none" only when no ID Token comes from the authorization endpoint
        return Err(invalid_metadata(
            "id_token_signed_response_alg \"none\" is not allowed with a response type that returns an ID Token",
        ));
    }
    if let Some(alg) = &md.userinfo_signed_response_alg {
        supported(
            "userinfo_signed_response_alg",
            alg,
            &policy.userinfo_signing_algs,
        )?;
    }
    if let Some(alg) = &md.request_object_signing_alg {
        supported(
            "request_object_signing_alg",
            alg,
            &policy.request_object_signing_algs,
        )?;
    }
    encryption(
        "id_token_encrypted_response",
        &md.id_token_encryption,
        &policy.id_token_encryption_algs,
        &policy.id_token_encryption_encs,
    )?;
    encryption(
        "userinfo_encrypted_response",
        &md.userinfo_encryption,
        &policy.userinfo_encryption_algs,
        &policy.userinfo_encryption_encs,
    )?;
    encryption(
        "request_object_encryption",
        &md.request_object_encryption,
        &policy.request_object_encryption_algs,
        &policy.request_object_encryption_encs,
    )?;

    // keys (OIDC DCR §2: jwks_uri or jwks, never both; public keys only)
    if md.jwks.is_some() && md.jwks_uri.is_some() {
        return Err(invalid_metadata(
            "jwks and jwks_uri must not both be present",
        ));
    }
    if let Some(uri) = &md.jwks_uri {
        https_url("jwks_uri", uri)?;
    }
    if let Some(jwks) = &md.jwks {
        PublicJwkSet::parse_map(jwks)
            .and_then(|set| set.check_registrable(MAX_JWKS_KEYS))
            .map_err(|e| invalid_metadata(format!("jwks: {e}")))?;
    }
    let has_keys = md.jwks.is_some() || md.jwks_uri.is_some();
    if method == AuthMethod::PrivateKeyJwt && !has_keys {
        return Err(invalid_metadata(
            "private_key_jwt requires jwks or jwks_uri",
        ));
    }
    if method == AuthMethod::SelfSignedTlsClientAuth && !has_keys {
        // RFC 8705 §2.2: the self-signed certificates are registered as keys
        return Err(invalid_metadata(
            "self_signed_tls_client_auth requires jwks or jwks_uri (RFC 8705 section 2.2)",
        ));
    }
    check_tls_subject(md)?;
    if md.uses_asymmetric_encryption() && !has_keys {
        // Responses are encrypted to the client's public key (OIDC Core §10.2).
        return Err(invalid_metadata(
            "encrypted responses with an asymmetric alg require jwks or jwks_uri",
        ));
    }
    if method == AuthMethod::None && md.uses_symmetric_algorithm() {
        // A public client has no secret to key a MAC or symmetric encryption with
        // (OIDC Core §10.1, §10.2).
        return Err(invalid_metadata(
            "a public client (token_endpoint_auth_method \"none\") cannot use HS* or symmetric encryption algorithms",
        ));
    }

    // human-readable URLs, tagged or not (OIDC DCR §2, RFC 7591 §2)
    for (name, value) in &md.localized {
        if name.starts_with("client_name") {
            continue;
        }
        let Some(url) = redirect::parse_strict(value) else {
            return Err(invalid_metadata(format!(
                "{} must be an absolute URL",
                quoted(name)
            )));
        };
        if !matches!(url.scheme(), "https" | "http") {
            return Err(invalid_metadata(format!(
                "{} must be an http or https URL",
                quoted(name)
            )));
        }
    }
    if let Some(uri) = &md.initiate_login_uri {
        https_url("initiate_login_uri", uri)?; // OIDC DCR §2: https
    }
    if let Some(uris) = &md.request_uris {
        for uri in uris {
            // https, as the OP cannot be assumed to verify the request object (OIDC DCR §2);
            // a fragment is allowed here
            https_url("request_uris", uri)?;
        }
    }

    // scope (RFC 6749 §3.3), acr values (OIDC DCR §2)
    if let Some(scope) = &md.scope {
        let tokens: Vec<&str> = scope.split(' ').collect();
        if tokens.iter().any(|t| !super::is_scope_token(t)) {
            return Err(invalid_metadata(
                "scope must be space-separated scope tokens (RFC 6749 section 3.3)",
            ));
        }
        if let Some(allowed) = &policy.scopes {
            if let Some(bad) = tokens.iter().find(|t| !allowed.iter().any(|a| a == *t)) {
                return Err(invalid_metadata(format!(
                    "scope {} is not supported",
                    quoted(bad)
                )));
            }
        }
    }
    if let (Some(values), Some(allowed)) = (&md.default_acr_values, &policy.acr_values) {
        if let Some(bad) = values.iter().find(|v| !allowed.contains(v)) {
            return Err(invalid_metadata(format!(
                "acr value {} is not supported",
                quoted(bad)
            )));
        }
    }

    // subject type and sector (OIDC Core §8, §8.1)
    if !policy.subject_types.contains(&md.subject_type) {
        return Err(invalid_metadata(format!(
            "subject_type {} is not supported",
            quoted(md.subject_type.as_str())
        )));
    }
    let sector_uri_host = match &md.sector_identifier_uri {
        Some(uri) => Some(
            https_url("sector_identifier_uri", uri)?
                .host_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        None => None,
    };
    let sector_host = match (md.subject_type, sector_uri_host) {
        (SubjectType::Public, _) => None,
        (SubjectType::Pairwise, Some(host)) => Some(host),
        (SubjectType::Pairwise, None) => {
            let hosts: BTreeSet<String> = md
                .redirect_uris
                .iter()
                .filter_map(|u| redirect::host_of(u))
                .collect();
            if hosts.len() > 1 {
                // OIDC Core §8.1
                return Err(invalid_metadata(
                    "a pairwise client with redirect URIs on several hosts must register a sector_identifier_uri",
                ));
            }
            hosts.into_iter().next()
        }
    };
    Ok(Validated { sector_host })
}

/// OIDC DCR §2 and RFC 7591 §2.1: every response type needs the grant types it implies, and
/// every redirect-based grant needs a response type that uses it. Membership of a token
/// counts, so `code id_token` satisfies `authorization_code` (a project decision: an exact
/// match would refuse OIDC hybrid clients).
fn check_consistency(md: &ClientMetadata) -> Result<(), MetadataError> {
    for entry in &md.response_types {
        if entry.contains(ResponseToken::Code) && !md.has_grant(GrantType::AuthorizationCode) {
            return Err(invalid_metadata(format!(
                "response type {} needs the authorization_code grant type",
                quoted(entry.as_str())
            )));
        }
        if entry.is_implicit() && !md.has_grant(GrantType::Implicit) {
            return Err(invalid_metadata(format!(
                "response type {} needs the implicit grant type",
                quoted(entry.as_str())
            )));
        }
    }
    if md.has_grant(GrantType::AuthorizationCode)
        && !md
            .response_types
            .iter()
            .any(|r| r.contains(ResponseToken::Code))
    {
        return Err(invalid_metadata(
            "grant type authorization_code needs a response type containing code",
        ));
    }
    if md.has_grant(GrantType::Implicit) && !md.response_types.iter().any(|r| r.is_implicit()) {
        return Err(invalid_metadata(
            "grant type implicit needs a response type containing token or id_token",
        ));
    }
    Ok(())
}

/// Every value is one the policy lists (what discovery advertises).
fn within_policy<T: PartialEq + std::fmt::Display>(
    what: &str,
    values: &[T],
    allowed: &[T],
) -> Result<(), MetadataError> {
    match values.iter().find(|v| !allowed.contains(v)) {
        Some(value) => Err(invalid_metadata(format!(
            "{what} {} is not supported",
            quoted(&value.to_string())
        ))),
        None => Ok(()),
    }
}

fn supported(name: &str, value: &str, allowed: &[String]) -> Result<(), MetadataError> {
    if allowed.iter().any(|a| a == value) {
        Ok(())
    } else {
        Err(invalid_metadata(format!(
            "{name} {} is not supported",
            quoted(value)
        )))
    }
}

fn encryption(
    prefix: &str,
    value: &Option<Encryption>,
    algs: &[String],
    encs: &[String],
) -> Result<(), MetadataError> {
    if let Some(e) = value {
        supported(&format!("{prefix}_alg"), &e.alg, algs)?;
        supported(&format!("{prefix}_enc"), &e.enc, encs)?;
    }
    Ok(())
}

fn https_url(name: &str, value: &str) -> Result<url::Url, MetadataError> {
    match redirect::parse_strict(value) {
        Some(url) if url.scheme() == "https" && url.host().is_some() => Ok(url),
        _ => Err(invalid_metadata(format!(
            "{name} must be an absolute https URL"
        ))),
    }
}

/// RFC 8705 §2.1.2: a `tls_client_auth` client names exactly one certificate field, in its
/// form; no other method names one.
fn check_tls_subject(md: &ClientMetadata) -> Result<(), MetadataError> {
    use super::TlsSubject;
    let subject = match (&md.tls_client_auth_subject, md.token_endpoint_auth_method) {
        (None, AuthMethod::TlsClientAuth) => {
            return Err(invalid_metadata(
                "tls_client_auth requires exactly one of tls_client_auth_subject_dn, tls_client_auth_san_dns, tls_client_auth_san_uri, tls_client_auth_san_ip and tls_client_auth_san_email (RFC 8705 section 2.1.2)",
            ))
        }
        (None, _) => return Ok(()),
        (Some(subject), AuthMethod::TlsClientAuth) => subject,
        (Some(subject), _) => {
            return Err(invalid_metadata(format!(
                "{} is used only with token_endpoint_auth_method tls_client_auth",
                subject.member().0
            )))
        }
    };
    let name = subject.member().0;
    let bad = |why: &str| invalid_metadata(format!("{name}: {why}"));
    match subject {
        TlsSubject::SubjectDn(dn) => {
            let parsed = super::dn::DistinguishedName::parse(dn)
                .map_err(|e| bad(&format!("not a distinguished name (RFC 4514): {e}")))?;
            if parsed.0.is_empty() {
                return Err(bad("the distinguished name is empty"));
            }
        }
        TlsSubject::SanDns(name) => {
            // a DNS name, matched exactly: no wildcard
            let ok = name.len() <= 253
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                });
            if !ok {
                return Err(bad("not a DNS name"));
            }
        }
        TlsSubject::SanUri(uri) => {
            if url::Url::parse(uri).is_err() || super::uri::redirect_syntax_error(uri).is_some() {
                return Err(bad("not an absolute URI"));
            }
        }
        TlsSubject::SanIp(ip) => {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(bad("not an IPv4 or IPv6 address"));
            }
        }
        TlsSubject::SanEmail(email) => {
            let ok = email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            });
            if !ok {
                return Err(bad("not an email address"));
            }
        }
    }
    Ok(())
}
