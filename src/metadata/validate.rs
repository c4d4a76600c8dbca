//! Every registration rule of the digest that needs more than a JSON type: supported values
//! (§7.6, O6), response/grant type consistency (§2), redirect URIs (§3), keys, URIs and
//! cross-field rules (§6), subject types and sectors (§5).

use std::collections::BTreeSet;

use serde_json::Value;

use super::redirect::{self, RedirectRules};
use super::{icm, quoted, AuthMethod, ClientMetadata, Encryption, MetadataError};
use crate::config::{Config, Policy};
use crate::keys::PRIVATE_JWK_MEMBERS;

/// What the validator enforces; the same lists are what discovery advertises.
#[derive(Debug, Clone)]
pub struct Rules {
    pub policy: Policy,
    pub allow_native_https_redirects: bool,
}

impl Rules {
    pub fn from_config(config: &Config) -> Self {
        Rules {
            policy: config.policy.clone(),
            allow_native_https_redirects: config.allow_native_https_redirects,
        }
    }
}

/// What validation learns that the client_id must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The sector of a pairwise client: the host of `sector_identifier_uri`, or the single
    /// redirect URI host (OIDC Core §8.1; digest D12).
    pub sector_host: Option<String>,
}

/// Most keys a registered `jwks` may hold: enough for rotation of signing and encryption keys,
/// few enough to keep the client_id within its size (digest D5).
const MAX_JWKS_KEYS: usize = 10;

pub fn validate(md: &ClientMetadata, rules: &Rules) -> Result<Validated, MetadataError> {
    let policy = &rules.policy;

    // grant types and response types (digest §2)
    for grant in &md.grant_types {
        if !policy.grant_types.contains(grant) {
            return Err(icm(format!(
                "grant type {} is not supported",
                quoted(grant)
            )));
        }
    }
    let response_sets = md
        .response_types
        .iter()
        .map(|entry| response_type_tokens(entry))
        .collect::<Result<Vec<_>, _>>()?;
    let supported_sets = policy
        .response_types
        .iter()
        .filter_map(|entry| response_type_tokens(entry).ok())
        .collect::<Vec<_>>();
    for (entry, set) in md.response_types.iter().zip(&response_sets) {
        if !supported_sets.contains(set) {
            return Err(icm(format!(
                "response type {} is not supported",
                quoted(entry)
            )));
        }
    }
    check_consistency(md, &response_sets)?;

    let has_grant = |g: &str| md.grant_types.iter().any(|x| x == g);
    let uses_implicit = has_grant("implicit")
        || response_sets
            .iter()
            .any(|s| s.contains("token") || s.contains("id_token"));

    // redirect URIs (digest §3.1, O2, R41)
    let redirect_based = has_grant("authorization_code") || has_grant("implicit");
    if redirect_based && md.redirect_uris.is_empty() {
        return Err(super::bad_redirect(
            "redirect_uris is required for the authorization_code and implicit grants",
        ));
    }
    let redirect_rules = RedirectRules {
        application_type: md.application_type,
        uses_implicit,
        allow_native_https: rules.allow_native_https_redirects,
    };
    for uri in &md.redirect_uris {
        redirect::check(uri, redirect_rules)?;
    }

    // token endpoint authentication (RFC 7591 §2, OIDC Core §9)
    let method = md.token_endpoint_auth_method;
    if !policy
        .token_endpoint_auth_methods
        .iter()
        .any(|m| m == method.as_str())
    {
        return Err(icm(format!(
            "token_endpoint_auth_method {} is not supported",
            quoted(method.as_str())
        )));
    }
    if let Some(alg) = &md.token_endpoint_auth_signing_alg {
        if alg == "none" {
            // OIDC DCR §2 (R31)
            return Err(icm("token_endpoint_auth_signing_alg must not be \"none\""));
        }
        supported(
            "token_endpoint_auth_signing_alg",
            alg,
            &policy.token_endpoint_auth_signing_algs,
        )?;
        match method {
            AuthMethod::ClientSecretJwt if !super::is_mac_alg(alg) => {
                return Err(icm(
                    "client_secret_jwt needs an HS* token_endpoint_auth_signing_alg",
                ))
            }
            AuthMethod::PrivateKeyJwt if super::is_mac_alg(alg) => {
                return Err(icm(
                    "private_key_jwt needs an asymmetric token_endpoint_auth_signing_alg",
                ))
            }
            _ => {}
        }
    }

    // algorithms against what discovery advertises (digest §7.6)
    supported(
        "id_token_signed_response_alg",
        &md.id_token_signed_response_alg,
        &policy.id_token_signing_algs,
    )?;
    if md.id_token_signed_response_alg == "none"
        && response_sets.iter().any(|s| s.contains("id_token"))
    {
        // OIDC DCR §2 (R30)
        return Err(icm(
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

    // keys (digest §1.1 rows 11–12, §6)
    if md.jwks.is_some() && md.jwks_uri.is_some() {
        return Err(icm("jwks and jwks_uri must not both be present"));
    }
    if let Some(uri) = &md.jwks_uri {
        https_url("jwks_uri", uri)?;
    }
    if let Some(jwks) = &md.jwks {
        check_jwks(jwks)?;
    }
    let has_keys = md.jwks.is_some() || md.jwks_uri.is_some();
    if method == AuthMethod::PrivateKeyJwt && !has_keys {
        return Err(icm("private_key_jwt requires jwks or jwks_uri"));
    }
    let asymmetric_encryption = [&md.id_token_encryption, &md.userinfo_encryption]
        .into_iter()
        .flatten()
        .any(|e| !super::is_symmetric_jwe_alg(&e.alg));
    if asymmetric_encryption && !has_keys {
        // Responses are encrypted to the client's public key (OIDC Core §10.2).
        return Err(icm(
            "encrypted responses with an asymmetric alg require jwks or jwks_uri",
        ));
    }
    if method == AuthMethod::None && md.uses_symmetric_algorithm() {
        // A public client has no secret to key a MAC or symmetric encryption with
        // (OIDC Core §10.1, §10.2; R106).
        return Err(icm(
            "a public client (token_endpoint_auth_method \"none\") cannot use HS* or symmetric encryption algorithms",
        ));
    }

    // human-readable URLs, tagged or not (digest §1.1 rows 7–10)
    for (name, value) in &md.localized {
        if name.starts_with("client_name") {
            continue;
        }
        let Some(url) = redirect::parse_strict(value) else {
            return Err(icm(format!("{} must be an absolute URL", quoted(name))));
        };
        if !matches!(url.scheme(), "https" | "http") {
            return Err(icm(format!(
                "{} must be an http or https URL",
                quoted(name)
            )));
        }
    }
    if let Some(uri) = &md.initiate_login_uri {
        https_url("initiate_login_uri", uri)?; // R34
    }
    if let Some(uris) = &md.request_uris {
        for uri in uris {
            // R35; a fragment is allowed here (OIDC DCR §2)
            https_url("request_uris", uri)?;
        }
    }

    // scope, acr values
    if let Some(scope) = &md.scope {
        let tokens: Vec<&str> = scope.split(' ').collect();
        if tokens.iter().any(|t| !super::is_scope_token(t)) {
            return Err(icm(
                "scope must be space-separated scope tokens (RFC 6749 section 3.3)",
            ));
        }
        if let Some(allowed) = &policy.scopes {
            if let Some(bad) = tokens.iter().find(|t| !allowed.iter().any(|a| a == *t)) {
                return Err(icm(format!("scope {} is not supported", quoted(bad))));
            }
        }
    }
    if let (Some(values), Some(allowed)) = (&md.default_acr_values, &policy.acr_values) {
        if let Some(bad) = values.iter().find(|v| !allowed.contains(v)) {
            return Err(icm(format!("acr value {} is not supported", quoted(bad))));
        }
    }

    // subject type and sector (digest §5)
    if !policy.subject_types.contains(&md.subject_type) {
        return Err(icm(format!(
            "subject_type {} is not supported",
            quoted(&md.subject_type)
        )));
    }
    let sector_host = match &md.sector_identifier_uri {
        Some(uri) => Some(
            https_url("sector_identifier_uri", uri)? // R32
                .host_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        None => None,
    };
    let sector_host = if md.subject_type == "pairwise" {
        match sector_host {
            Some(host) => Some(host),
            None => {
                let hosts: BTreeSet<String> = md
                    .redirect_uris
                    .iter()
                    .filter_map(|u| redirect::host_of(u))
                    .collect();
                if hosts.len() > 1 {
                    // OIDC Core §8.1 (R43)
                    return Err(icm(
                        "a pairwise client with redirect URIs on several hosts must register a sector_identifier_uri",
                    ));
                }
                hosts.into_iter().next()
            }
        }
    } else {
        None
    };
    Ok(Validated { sector_host })
}

/// The set of tokens of one response type entry (order does not matter, RFC 6749 §3.1.1).
fn response_type_tokens(entry: &str) -> Result<BTreeSet<&str>, MetadataError> {
    let mut set = BTreeSet::new();
    for token in entry.split(' ') {
        if !matches!(token, "code" | "id_token" | "token" | "none") || !set.insert(token) {
            return Err(icm(format!("response type {} is not valid", quoted(entry))));
        }
    }
    if set.contains("none") && set.len() > 1 {
        return Err(icm(format!("response type {} is not valid", quoted(entry))));
    }
    Ok(set)
}

/// Digest §2 steps 3–4: the forward table and the reverse direction under token membership (C13).
fn check_consistency(md: &ClientMetadata, sets: &[BTreeSet<&str>]) -> Result<(), MetadataError> {
    let has_grant = |g: &str| md.grant_types.iter().any(|x| x == g);
    for (entry, set) in md.response_types.iter().zip(sets) {
        if set.contains("code") && !has_grant("authorization_code") {
            return Err(icm(format!(
                "response type {} needs the authorization_code grant type",
                quoted(entry)
            )));
        }
        if (set.contains("token") || set.contains("id_token")) && !has_grant("implicit") {
            return Err(icm(format!(
                "response type {} needs the implicit grant type",
                quoted(entry)
            )));
        }
    }
    if has_grant("authorization_code") && !sets.iter().any(|s| s.contains("code")) {
        return Err(icm(
            "grant type authorization_code needs a response type containing code",
        ));
    }
    if has_grant("implicit")
        && !sets
            .iter()
            .any(|s| s.contains("token") || s.contains("id_token"))
    {
        return Err(icm(
            "grant type implicit needs a response type containing token or id_token",
        ));
    }
    Ok(())
}

fn supported(name: &str, value: &str, allowed: &[String]) -> Result<(), MetadataError> {
    if allowed.iter().any(|a| a == value) {
        Ok(())
    } else {
        Err(icm(format!("{name} {} is not supported", quoted(value))))
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
        _ => Err(icm(format!("{name} must be an absolute https URL"))),
    }
}

/// A registered JWK Set (digest §1.1 row 12, R28): public keys only, no symmetric keys, and a
/// `use` on every key when signing and encryption keys are mixed.
fn check_jwks(jwks: &serde_json::Map<String, Value>) -> Result<(), MetadataError> {
    let keys = match jwks.get("keys") {
        Some(Value::Array(keys)) if !keys.is_empty() => keys,
        _ => return Err(icm("jwks must be a JWK Set with a non-empty keys array")),
    };
    if keys.len() > MAX_JWKS_KEYS {
        return Err(icm(format!("jwks may hold at most {MAX_JWKS_KEYS} keys")));
    }
    let mut uses = BTreeSet::new();
    let mut without_use = false;
    for key in keys {
        let Value::Object(map) = key else {
            return Err(icm("every jwks key must be a JSON object"));
        };
        match map.get("kty").and_then(Value::as_str) {
            Some("oct") => return Err(icm("jwks must not hold symmetric (oct) keys")),
            Some(_) => {}
            None => return Err(icm("every jwks key needs a kty")),
        }
        if PRIVATE_JWK_MEMBERS.iter().any(|m| map.contains_key(*m)) {
            return Err(icm(
                "jwks must hold public keys only (no private key members)",
            ));
        }
        josekit::jwk::Jwk::from_map(map.clone())
            .map_err(|_| icm("jwks holds a key that is not a valid JWK"))?;
        match map.get("use").and_then(Value::as_str) {
            Some(u) => {
                uses.insert(u.to_owned());
            }
            None => without_use = true,
        }
    }
    if uses.len() > 1 && without_use {
        return Err(icm(
            "jwks mixes signing and encryption keys, so every key needs a use member",
        ));
    }
    Ok(())
}
