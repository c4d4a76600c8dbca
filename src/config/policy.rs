//! The `[policy]` section: what discovery advertises and the metadata validator enforces
//! (RFC 8414 §2, OIDC Discovery §3). Refusing what is not listed, rather than silently
//! replacing it, is a project decision (OIDC DCR §3.2 allows either): a client learns at once
//! that its request cannot be honoured.

use serde::{Deserialize, Deserializer};

use crate::metadata::{AuthMethod, GrantType, ResponseType, SubjectType};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    #[serde(deserialize_with = "response_types")]
    pub response_types: Vec<ResponseType>,
    #[serde(deserialize_with = "grant_types")]
    pub grant_types: Vec<GrantType>,
    #[serde(deserialize_with = "auth_methods")]
    pub token_endpoint_auth_methods: Vec<AuthMethod>,
    pub token_endpoint_auth_signing_algs: Vec<String>,
    pub id_token_signing_algs: Vec<String>,
    pub id_token_encryption_algs: Vec<String>,
    pub id_token_encryption_encs: Vec<String>,
    pub userinfo_signing_algs: Vec<String>,
    pub userinfo_encryption_algs: Vec<String>,
    pub userinfo_encryption_encs: Vec<String>,
    pub request_object_signing_algs: Vec<String>,
    pub request_object_encryption_algs: Vec<String>,
    pub request_object_encryption_encs: Vec<String>,
    #[serde(deserialize_with = "subject_types")]
    pub subject_types: Vec<SubjectType>,
    /// Subject type of a client that does not ask for one.
    pub default_subject_type: SubjectType,
    /// When set, the only scope values a client may register.
    pub scopes: Option<Vec<String>>,
    /// When set, the only `default_acr_values` a client may register.
    pub acr_values: Option<Vec<String>>,
    pub code_challenge_methods: Vec<String>,
}

/// A list of enumerated values whose error names the option and the value, as every
/// configuration error does (the TOML parser alone would show only the line).
fn named_list<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    option: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|value| {
            parse(value).ok_or_else(|| {
                serde::de::Error::custom(format!("policy.{option}: unknown value {value:?}"))
            })
        })
        .collect()
}

fn response_types<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ResponseType>, D::Error> {
    named_list(d, "response_types", ResponseType::parse)
}

fn grant_types<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<GrantType>, D::Error> {
    named_list(d, "grant_types", GrantType::parse)
}

fn auth_methods<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AuthMethod>, D::Error> {
    named_list(d, "token_endpoint_auth_methods", AuthMethod::parse)
}

fn subject_types<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SubjectType>, D::Error> {
    named_list(d, "subject_types", SubjectType::parse)
}

/// JWS algorithms an algorithm list may name (RFC 7518 §3.1, RFC 8037 §3.1), so that a typo
/// fails at start-up instead of refusing every registration that names the intended value.
pub const KNOWN_JWS_ALGS: [&str; 14] = [
    "none", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA",
];

/// JWE key management algorithms (RFC 7518 §4.1).
pub const KNOWN_JWE_ALGS: [&str; 17] = [
    "RSA1_5",
    "RSA-OAEP",
    "RSA-OAEP-256",
    "A128KW",
    "A192KW",
    "A256KW",
    "dir",
    "ECDH-ES",
    "ECDH-ES+A128KW",
    "ECDH-ES+A192KW",
    "ECDH-ES+A256KW",
    "A128GCMKW",
    "A192GCMKW",
    "A256GCMKW",
    "PBES2-HS256+A128KW",
    "PBES2-HS384+A192KW",
    "PBES2-HS512+A256KW",
];

/// JWE content encryption algorithms (RFC 7518 §5.1).
pub const KNOWN_JWE_ENCS: [&str; 6] = [
    "A128CBC-HS256",
    "A192CBC-HS384",
    "A256CBC-HS512",
    "A128GCM",
    "A192GCM",
    "A256GCM",
];

/// Signature algorithms offered by default: asymmetric ones the registrar's JOSE library
/// verifies, plus HS256 for clients that hold a secret.
const DEFAULT_SIGNING_ALGS: [&str; 10] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
];

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for Policy {
    fn default() -> Self {
        let signing = || strings(&DEFAULT_SIGNING_ALGS);
        let with_none = || {
            let mut algs = signing();
            algs.push("none".into());
            algs
        };
        let encryption_algs = strings(&[
            "RSA-OAEP",
            "RSA-OAEP-256",
            "ECDH-ES",
            "ECDH-ES+A128KW",
            "ECDH-ES+A256KW",
            "A128KW",
            "A256KW",
            "dir",
        ]);
        let encs = strings(&["A128CBC-HS256", "A256CBC-HS512", "A128GCM", "A256GCM"]);
        let response_types = [
            "code",
            "id_token",
            "id_token token",
            "code id_token",
            "code token",
            "code id_token token",
        ]
        .iter()
        .filter_map(|r| ResponseType::parse(r))
        .collect();
        Policy {
            response_types,
            grant_types: vec![
                GrantType::AuthorizationCode,
                GrantType::Implicit,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
            ],
            token_endpoint_auth_methods: vec![
                AuthMethod::ClientSecretBasic,
                AuthMethod::ClientSecretPost,
                AuthMethod::ClientSecretJwt,
                AuthMethod::PrivateKeyJwt,
                AuthMethod::TlsClientAuth,
                AuthMethod::SelfSignedTlsClientAuth,
                AuthMethod::None,
            ],
            token_endpoint_auth_signing_algs: signing(),
            id_token_signing_algs: with_none(),
            id_token_encryption_algs: encryption_algs.clone(),
            id_token_encryption_encs: encs.clone(),
            userinfo_signing_algs: signing(),
            userinfo_encryption_algs: encryption_algs.clone(),
            userinfo_encryption_encs: encs.clone(),
            request_object_signing_algs: with_none(),
            request_object_encryption_algs: encryption_algs,
            request_object_encryption_encs: encs,
            subject_types: vec![SubjectType::Public, SubjectType::Pairwise],
            default_subject_type: SubjectType::Public,
            scopes: None,
            acr_values: None,
            code_challenge_methods: strings(&["S256"]),
        }
    }
}
