//! Initial access tokens (RFC 7591 §3): bearer tokens the registrar signs itself, presented on
//! `POST /register` to be allowed to register, and carrying the policy that registration must
//! satisfy. Like client_ids they are verified offline with the registrar's keys; only a token
//! of limited uses writes (one status-store record per use, docs/design.md "Initial access
//! tokens").
//!
//! They are signed with the registrar's signing key under a `typ` of their own (RFC 8725
//! §3.11), so a client_id, a status record or a withdrawal can never pass for one, nor one for
//! them.

use serde::{Deserialize, Serialize};

use crate::jose::{self, CompactJws};
use crate::keys::{SigningKey, VerifierSet};
use crate::metadata::{
    invalid_metadata, invalid_redirect_uri, AuthMethod, ClientMetadata, GrantType, MetadataError,
};

/// `typ` of initial access tokens.
pub const IAT_TYP: &str = "initial-access-token+jwt";

/// `typ` of the record counting the uses of a limited token.
pub const USE_RECORD_TYP: &str = "initial-access-token-use+jwt";

/// What a registration presenting the token must satisfy. Every rule is optional; an absent
/// rule allows what the server's own policy allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPolicy {
    /// Every redirect URI must start with one of these strings (`https://app.example.com/`,
    /// `http://127.0.0.1:`), compared exactly as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri_prefixes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<GrantType>>,
    /// Every scope value the client registers must be one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods: Option<Vec<AuthMethod>>,
    /// The client_id expires at most this many seconds after registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_client_lifetime_secs: Option<u64>,
    /// The client's `software_id` is this value (set when the request omits it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
}

/// The claims of an initial access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The registrar's issuer.
    pub iss: String,
    pub jti: String,
    pub iat: u64,
    /// Always set: a token that never expires is not issued.
    pub exp: u64,
    /// Shown in audit events of registrations made with the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// How many registrations the token allows; unset: any number until it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u64>,
    #[serde(default, skip_serializing_if = "is_default_policy")]
    pub policy: TokenPolicy,
}

fn is_default_policy(policy: &TokenPolicy) -> bool {
    *policy == TokenPolicy::default()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the initial access token is not a token of this registrar")]
    Invalid,
    #[error("the initial access token has expired")]
    Expired,
    #[error("the initial access token has been used as many times as it allows")]
    Exhausted,
    #[error("the initial access token was withdrawn")]
    Withdrawn,
    #[error("cannot sign the initial access token: {0}")]
    Signing(String),
}

/// Sign a token with the registrar's active signing key.
pub fn issue(key: &SigningKey, claims: &TokenClaims) -> Result<String, TokenError> {
    let payload = serde_json::to_vec(claims).map_err(|e| TokenError::Signing(e.to_string()))?;
    jose::sign_typed(key, IAT_TYP, &payload).map_err(|e| TokenError::Signing(e.to_string()))
}

/// Verify a presented token: compact form, `typ`, a listed `kid` whose algorithm the header
/// names (the key fixes the algorithm, so `none` and HS256-with-the-public-key never verify),
/// the registrar's issuer and `exp`. Every failure but expiry is the same [`TokenError::Invalid`].
pub fn verify(
    verifiers: &VerifierSet,
    issuer: &str,
    token: &str,
    now: u64,
) -> Result<TokenClaims, TokenError> {
    let jws = CompactJws::parse(token).map_err(|_| TokenError::Invalid)?;
    if jws.typ() != Some(IAT_TYP) {
        return Err(TokenError::Invalid);
    }
    let verifier = verifiers
        .select(jws.kid(), jws.alg().unwrap_or_default())
        .ok_or(TokenError::Invalid)?;
    let payload = jws.verify(verifier).map_err(|_| TokenError::Invalid)?;
    let claims: TokenClaims = serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)?;
    if claims.iss != issuer {
        return Err(TokenError::Invalid);
    }
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

impl TokenPolicy {
    /// Check the metadata a registration would register: `invalid_redirect_uri` or
    /// `invalid_client_metadata` naming the rule that failed (RFC 7591 §3.2.2).
    pub fn check(&self, md: &ClientMetadata) -> Result<(), MetadataError> {
        if let Some(prefixes) = &self.redirect_uri_prefixes {
            if let Some(uri) = md
                .redirect_uris
                .iter()
                .find(|uri| !prefixes.iter().any(|p| uri.starts_with(p.as_str())))
            {
                return Err(invalid_redirect_uri(format!(
                    "redirect URI {uri:?} is not allowed by the initial access token"
                )));
            }
        }
        if let Some(grants) = &self.grant_types {
            if let Some(grant) = md.grant_types.iter().find(|g| !grants.contains(g)) {
                return Err(invalid_metadata(format!(
                    "grant type {:?} is not allowed by the initial access token",
                    grant.as_str()
                )));
            }
        }
        if let (Some(scopes), Some(scope)) = (&self.scopes, &md.scope) {
            if let Some(value) = scope
                .split(' ')
                .find(|v| !scopes.iter().any(|s| s.as_str() == *v))
            {
                return Err(invalid_metadata(format!(
                    "scope {value:?} is not allowed by the initial access token"
                )));
            }
        }
        if let Some(methods) = &self.token_endpoint_auth_methods {
            if !methods.contains(&md.token_endpoint_auth_method) {
                return Err(invalid_metadata(format!(
                    "token_endpoint_auth_method {:?} is not allowed by the initial access token",
                    md.token_endpoint_auth_method.as_str()
                )));
            }
        }
        if let Some(software_id) = &self.software_id {
            if md.software_id.as_deref() != Some(software_id.as_str()) {
                return Err(invalid_metadata(
                    "software_id must be the one the initial access token fixes",
                ));
            }
        }
        Ok(())
    }
}

/// The record of `uses` uses of the token `jti`, signed so that the store cannot be handed a
/// count the registrar did not write.
pub fn sign_use_record(key: &SigningKey, jti: &str, uses: u64) -> Result<String, TokenError> {
    let payload = serde_json::to_vec(&UseRecord {
        jti: jti.to_owned(),
        uses,
    })
    .map_err(|e| TokenError::Signing(e.to_string()))?;
    jose::sign_typed(key, USE_RECORD_TYP, &payload).map_err(|e| TokenError::Signing(e.to_string()))
}

/// The number of uses a stored record holds, if it is one the registrar signed for `jti`.
pub fn verify_use_record(verifiers: &VerifierSet, jti: &str, signed: &str) -> Option<u64> {
    let jws = CompactJws::parse(signed).ok()?;
    if jws.typ() != Some(USE_RECORD_TYP) {
        return None;
    }
    let verifier = verifiers.select(jws.kid(), jws.alg().unwrap_or_default())?;
    let record: UseRecord = serde_json::from_slice(&jws.verify(verifier).ok()?).ok()?;
    (record.jti == jti).then_some(record.uses)
}

#[derive(Serialize, Deserialize)]
struct UseRecord {
    jti: String,
    uses: u64,
}

/// The status-store key of a token's use record; `:` never occurs in a client's jti
/// (base64url), so the two cannot meet.
pub fn use_record_key(jti: &str) -> String {
    format!("iat:{jti}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{RegistrarKeys, SigningAlg};
    use serde_json::json;

    fn keys() -> RegistrarKeys {
        let json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
        RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap()
    }

    fn claims() -> TokenClaims {
        TokenClaims {
            iss: "https://registrar.example.com".into(),
            jti: "token-1".into(),
            iat: 1_000,
            exp: 2_000,
            label: Some("team A".into()),
            max_uses: Some(3),
            policy: TokenPolicy {
                redirect_uri_prefixes: Some(vec!["http://127.0.0.1:".into()]),
                grant_types: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
                scopes: Some(vec!["mcp".into()]),
                token_endpoint_auth_methods: Some(vec![AuthMethod::None]),
                max_client_lifetime_secs: Some(3600),
                software_id: None,
            },
        }
    }

    #[test]
    fn tokens_verify_only_as_themselves() {
        let keys = keys();
        let verifiers = &keys.verification().verifiers;
        let token = issue(keys.signing_key(), &claims()).unwrap();
        let iss = "https://registrar.example.com";
        assert_eq!(verify(verifiers, iss, &token, 1_500).unwrap(), claims());
        assert_eq!(
            verify(verifiers, iss, &token, 2_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(verifiers, "https://other.example.com", &token, 1_500),
            Err(TokenError::Invalid)
        );
        // another registrar's token
        let other = super::tests::keys();
        let forged = issue(other.signing_key(), &claims()).unwrap();
        assert_eq!(
            verify(verifiers, iss, &forged, 1_500),
            Err(TokenError::Invalid)
        );
        // a client_id-typed token signed by the same key is not a token
        let wrong_typ = jose::sign_typed(
            keys.signing_key(),
            "client-id+jwt",
            &serde_json::to_vec(&claims()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            verify(verifiers, iss, &wrong_typ, 1_500),
            Err(TokenError::Invalid)
        );
        for garbage in ["", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", &"x".repeat(5000)] {
            assert_eq!(
                verify(verifiers, iss, garbage, 1_500),
                Err(TokenError::Invalid)
            );
        }
    }

    #[test]
    fn the_policy_is_checked_rule_by_rule() {
        let policy = claims().policy;
        let md = |extra: serde_json::Value| {
            let mut body = json!({
                "redirect_uris": ["http://127.0.0.1:3000/cb"],
                "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "none",
                "scope": "mcp",
            });
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            ClientMetadata::parse(
                body.as_object().unwrap(),
                crate::metadata::SubjectType::Public,
            )
            .unwrap()
        };
        policy.check(&md(json!({}))).unwrap();
        for (bad, rule) in [
            (
                json!({"redirect_uris": ["https://evil.example/cb"]}),
                "redirect URI",
            ),
            (json!({"grant_types": ["client_credentials"]}), "grant type"),
            (json!({"scope": "mcp admin"}), "scope"),
            (
                json!({"token_endpoint_auth_method": "client_secret_basic"}),
                "token_endpoint_auth_method",
            ),
        ] {
            let err = policy.check(&md(bad.clone())).unwrap_err().description;
            assert!(err.contains(rule), "{bad}: {err}");
        }
        let fixed = TokenPolicy {
            software_id: Some("app-1".into()),
            ..TokenPolicy::default()
        };
        assert!(fixed.check(&md(json!({}))).is_err());
        fixed.check(&md(json!({"software_id": "app-1"}))).unwrap();
    }

    #[test]
    fn use_records_verify_for_their_token_only() {
        let keys = keys();
        let verifiers = &keys.verification().verifiers;
        let signed = sign_use_record(keys.signing_key(), "iat:t1", 2).unwrap();
        assert_eq!(verify_use_record(verifiers, "iat:t1", &signed), Some(2));
        assert_eq!(verify_use_record(verifiers, "iat:t2", &signed), None);
        assert_eq!(verify_use_record(verifiers, "iat:t1", "garbage"), None);
    }
}
