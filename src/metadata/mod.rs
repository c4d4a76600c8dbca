//! Client metadata (RFC 7591 §2, OIDC DCR §2): typed values parsed once from JSON, the
//! defaults, and the JSON forms for responses and for embedding in a client_id.
//!
//! Parsing ([`ClientMetadata::parse`]) checks JSON types, turns enumerated values into types
//! and applies defaults; validation ([`validate::validate`]) applies every cross-field and policy
//! rule. Both stop at the first problem and report it with the error code of RFC 7591 §3.2.2.

pub mod dn;
pub mod json;
pub mod lang;
pub mod redirect;
pub mod uri;
pub mod validate;
pub mod values;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub use json::Form;
pub use validate::{validate, Validated};
pub use values::{
    ApplicationType, AuthMethod, GrantType, ResponseToken, ResponseType, SubjectType,
};

/// The RFC 7591 §3.2.2 error codes metadata problems map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataErrorCode {
    InvalidRedirectUri,
    InvalidClientMetadata,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{description}")]
pub struct MetadataError {
    pub code: MetadataErrorCode,
    pub description: String,
}

/// An `invalid_client_metadata` error (RFC 7591 §3.2.2).
pub(crate) fn invalid_metadata(description: impl Into<String>) -> MetadataError {
    MetadataError {
        code: MetadataErrorCode::InvalidClientMetadata,
        description: description.into(),
    }
}

/// An `invalid_redirect_uri` error (RFC 7591 §3.2.2).
pub(crate) fn invalid_redirect_uri(description: impl Into<String>) -> MetadataError {
    MetadataError {
        code: MetadataErrorCode::InvalidRedirectUri,
        description: description.into(),
    }
}

/// The five human-readable members that may carry a language tag (RFC 7591 §2.2, OIDC DCR §2.1).
pub const LOCALIZABLE: [&str; 5] = [
    "client_name",
    "logo_uri",
    "client_uri",
    "policy_uri",
    "tos_uri",
];

/// The known metadata members (RFC 7591 §2 and OIDC DCR §2). Everything else in a request is
/// ignored (RFC 7591 §2), and response-only members such as `client_id` are never adopted
/// (RFC 7591 §3.2.1).
pub const KNOWN_MEMBERS: [&str; 39] = [
    "redirect_uris",
    "response_types",
    "grant_types",
    "application_type",
    "contacts",
    "client_name",
    "logo_uri",
    "client_uri",
    "policy_uri",
    "tos_uri",
    "jwks_uri",
    "jwks",
    "sector_identifier_uri",
    "subject_type",
    "id_token_signed_response_alg",
    "id_token_encrypted_response_alg",
    "id_token_encrypted_response_enc",
    "userinfo_signed_response_alg",
    "userinfo_encrypted_response_alg",
    "userinfo_encrypted_response_enc",
    "request_object_signing_alg",
    "request_object_encryption_alg",
    "request_object_encryption_enc",
    "token_endpoint_auth_method",
    "token_endpoint_auth_signing_alg",
    "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns",
    "tls_client_auth_san_uri",
    "tls_client_auth_san_ip",
    "tls_client_auth_san_email",
    "tls_client_certificate_bound_access_tokens",
    "default_max_age",
    "require_auth_time",
    "default_acr_values",
    "initiate_login_uri",
    "request_uris",
    "scope",
    "software_id",
    "software_version",
];

/// Whether a member name is client metadata: a known member, or a language-tagged variant of a
/// localizable one (`client_name#ja-Jpan-JP`).
pub fn is_metadata_member(name: &str) -> bool {
    match name.split_once('#') {
        Some((base, _)) => LOCALIZABLE.contains(&base),
        None => KNOWN_MEMBERS.contains(&name),
    }
}

/// The certificate field a `tls_client_auth` client is known by (RFC 8705 §2.1.2): exactly one
/// of the five members, with its value as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSubject {
    SubjectDn(String),
    SanDns(String),
    SanUri(String),
    SanIp(String),
    SanEmail(String),
}

impl TlsSubject {
    pub const MEMBERS: [&'static str; 5] = [
        "tls_client_auth_subject_dn",
        "tls_client_auth_san_dns",
        "tls_client_auth_san_uri",
        "tls_client_auth_san_ip",
        "tls_client_auth_san_email",
    ];

    /// The member name and its value.
    pub fn member(&self) -> (&'static str, &str) {
        match self {
            TlsSubject::SubjectDn(v) => (Self::MEMBERS[0], v),
            TlsSubject::SanDns(v) => (Self::MEMBERS[1], v),
            TlsSubject::SanUri(v) => (Self::MEMBERS[2], v),
            TlsSubject::SanIp(v) => (Self::MEMBERS[3], v),
            TlsSubject::SanEmail(v) => (Self::MEMBERS[4], v),
        }
    }

    /// At most one of the members may be present (RFC 8705 §2.1.2: exactly one with
    /// `tls_client_auth`, which validation checks).
    fn from_members(members: &Members<'_>) -> Result<Option<Self>, MetadataError> {
        let mut found = None;
        for (index, name) in Self::MEMBERS.iter().enumerate() {
            if let Some(value) = members.string(name)? {
                if found.is_some() {
                    return Err(invalid_metadata(
                        "register exactly one of tls_client_auth_subject_dn, tls_client_auth_san_dns, tls_client_auth_san_uri, tls_client_auth_san_ip and tls_client_auth_san_email (RFC 8705 section 2.1.2)",
                    ));
                }
                found = Some(match index {
                    0 => TlsSubject::SubjectDn(value),
                    1 => TlsSubject::SanDns(value),
                    2 => TlsSubject::SanUri(value),
                    3 => TlsSubject::SanIp(value),
                    _ => TlsSubject::SanEmail(value),
                });
            }
        }
        Ok(found)
    }
}

/// Default of `id_token_signed_response_alg` (OIDC DCR §2).
pub const DEFAULT_ID_TOKEN_ALG: &str = "RS256";
/// Default of every `*_encrypted_response_enc` once its alg is set (OIDC DCR §2).
pub const DEFAULT_ENC: &str = "A128CBC-HS256";

/// An encryption choice: a JWE `alg` and its `enc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    pub alg: String,
    pub enc: String,
}

/// The `application_type` of a client that omits it. OIDC DCR §2 defaults to web; a client
/// whose every redirect URI only a native app can use (RFC 8252 §7) is registered as what it is
/// (docs/conformance.md `application-type-inferred`), so that native matching applies to it.
/// Applied to registration and update requests only ([`ClientMetadata::parse`] keeps the OIDC
/// default, so that the client_id's compact form means the same to every reader). Not a client of the implicit flow: OIDC DCR §2 refuses loopback redirect URIs to web clients
/// using it, and that rule is not to be sidestepped by leaving the type out.
pub fn default_application_type(redirect_uris: &[String], uses_implicit: bool) -> ApplicationType {
    if !uses_implicit
        && !redirect_uris.is_empty()
        && redirect_uris.iter().all(|u| redirect::is_native_only(u))
    {
        ApplicationType::Native
    } else {
        ApplicationType::Web
    }
}

/// Client metadata of the right shape with defaults applied. Strings are kept exactly as
/// received (OIDC DCR §6: no normalisation), the member names of tagged values too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub response_types: Vec<ResponseType>,
    pub grant_types: Vec<GrantType>,
    pub application_type: ApplicationType,
    pub contacts: Option<Vec<String>>,
    /// `client_name`, `logo_uri`, `client_uri`, `policy_uri`, `tos_uri` and their tagged forms,
    /// by exact member name.
    pub localized: BTreeMap<String, String>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<Map<String, Value>>,
    pub sector_identifier_uri: Option<String>,
    pub subject_type: SubjectType,
    pub id_token_signed_response_alg: String,
    pub id_token_encryption: Option<Encryption>,
    pub userinfo_signed_response_alg: Option<String>,
    pub userinfo_encryption: Option<Encryption>,
    pub request_object_signing_alg: Option<String>,
    pub request_object_encryption: Option<Encryption>,
    pub token_endpoint_auth_method: AuthMethod,
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// With `tls_client_auth`: which certificate field identifies the client (RFC 8705 §2.1.2).
    pub tls_client_auth_subject: Option<TlsSubject>,
    /// RFC 8705 §3.4: the client asks for certificate-bound access tokens.
    pub tls_client_certificate_bound_access_tokens: bool,
    pub default_max_age: Option<u64>,
    pub require_auth_time: bool,
    pub default_acr_values: Option<Vec<String>>,
    pub initiate_login_uri: Option<String>,
    pub request_uris: Option<Vec<String>>,
    pub scope: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
}

/// Typed members of a JSON object. JSON `null` counts as absent (RFC 7592 §2.2 lets the server
/// ignore null values).
struct Members<'a>(&'a Map<String, Value>);

impl<'a> Members<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn string(&self, name: &str) -> Result<Option<String>, MetadataError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid_metadata(format!("{name} must be a string"))),
        }
    }

    fn strings(&self, name: &str) -> Result<Option<Vec<String>>, MetadataError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(invalid_metadata(format!(
                        "{name} must be an array of strings"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(invalid_metadata(format!(
                "{name} must be an array of strings"
            ))),
        }
    }

    /// An array of strings, each parsed into a value of `T`; `unknown` describes a value that
    /// does not parse.
    fn values<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        unknown: impl Fn(&str) -> String,
    ) -> Result<Option<Vec<T>>, MetadataError> {
        let Some(items) = self.strings(name)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|item| parse(item).ok_or_else(|| invalid_metadata(unknown(item))))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, MetadataError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid_metadata(format!("{name} must be a boolean"))),
        }
    }

    fn seconds(&self, name: &str) -> Result<Option<u64>, MetadataError> {
        let not_seconds = || invalid_metadata(format!("{name} must be a non-negative integer"));
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(not_seconds),
            Some(_) => Err(not_seconds()),
        }
    }

    fn encryption(
        &self,
        alg_name: &str,
        enc_name: &str,
    ) -> Result<Option<Encryption>, MetadataError> {
        let alg = self.string(alg_name)?;
        let enc = self.string(enc_name)?;
        match (alg, enc) {
            (Some(alg), enc) => Ok(Some(Encryption {
                alg,
                enc: enc.unwrap_or_else(|| DEFAULT_ENC.to_owned()),
            })),
            // OIDC DCR §2: an enc may only be given together with its alg
            (None, Some(_)) => Err(invalid_metadata(format!("{enc_name} requires {alg_name}"))),
            (None, None) => Ok(None),
        }
    }
}

impl ClientMetadata {
    /// Parse a JSON object of metadata: check each known member's JSON type, parse enumerated
    /// values and apply the defaults (RFC 7591 §2, OIDC DCR §2). Unknown members are ignored.
    /// `default_subject_type` is the policy's default (OIDC Core §8).
    pub fn parse(
        map: &Map<String, Value>,
        default_subject_type: SubjectType,
    ) -> Result<Self, MetadataError> {
        let members = Members(map);
        // Any problem with redirect_uris is invalid_redirect_uri (RFC 7591 §3.2.2).
        let redirect_uris = members
            .strings("redirect_uris")
            .map_err(|_| invalid_redirect_uri("redirect_uris must be an array of strings"))?
            .unwrap_or_default();
        let grant_types = members
            .values("grant_types", GrantType::parse, |g| {
                format!("grant type {} is not supported", quoted(g))
            })?
            .unwrap_or_else(|| vec![GrantType::AuthorizationCode]);
        let response_types = members
            .values("response_types", ResponseType::parse, |r| {
                format!("response type {} is not valid", quoted(r))
            })?
            .unwrap_or_else(|| default_response_types(&grant_types));
        let application_type = match members.string("application_type")? {
            // OIDC DCR §2 defaults to web; a client whose every redirect URI only a native app
            // can use (RFC 8252 §7) is registered as what it is (docs/conformance.md
            // `application-type-inferred`), so that native matching applies to it.
            // OIDC DCR §2; a registration may choose otherwise (default_application_type)
            None => ApplicationType::Web,
            Some(value) => ApplicationType::parse(&value).ok_or_else(|| {
                invalid_metadata("application_type must be \"web\" or \"native\"")
            })?,
        };
        let token_endpoint_auth_method = match members.string("token_endpoint_auth_method")? {
            None => AuthMethod::ClientSecretBasic,
            Some(value) => AuthMethod::parse(&value).ok_or_else(|| {
                invalid_metadata(format!(
                    "token_endpoint_auth_method {} is not supported",
                    quoted(&value)
                ))
            })?,
        };
        let subject_type = match members.string("subject_type")? {
            None => default_subject_type,
            Some(value) => SubjectType::parse(&value).ok_or_else(|| {
                invalid_metadata(format!("subject_type {} is not supported", quoted(&value)))
            })?,
        };
        let jwks = match members.get("jwks") {
            None => None,
            Some(Value::Object(o)) => Some(o.clone()),
            Some(_) => return Err(invalid_metadata("jwks must be a JWK Set object")),
        };
        Ok(ClientMetadata {
            redirect_uris,
            response_types,
            grant_types,
            application_type,
            contacts: members.strings("contacts")?,
            localized: lang::localized_members(map)?,
            jwks_uri: members.string("jwks_uri")?,
            jwks,
            sector_identifier_uri: members.string("sector_identifier_uri")?,
            subject_type,
            id_token_signed_response_alg: members
                .string("id_token_signed_response_alg")?
                .unwrap_or_else(|| DEFAULT_ID_TOKEN_ALG.to_owned()),
            id_token_encryption: members.encryption(
                "id_token_encrypted_response_alg",
                "id_token_encrypted_response_enc",
            )?,
            userinfo_signed_response_alg: members.string("userinfo_signed_response_alg")?,
            userinfo_encryption: members.encryption(
                "userinfo_encrypted_response_alg",
                "userinfo_encrypted_response_enc",
            )?,
            request_object_signing_alg: members.string("request_object_signing_alg")?,
            request_object_encryption: members.encryption(
                "request_object_encryption_alg",
                "request_object_encryption_enc",
            )?,
            token_endpoint_auth_method,
            token_endpoint_auth_signing_alg: members.string("token_endpoint_auth_signing_alg")?,
            tls_client_auth_subject: TlsSubject::from_members(&members)?,
            tls_client_certificate_bound_access_tokens: members
                .bool("tls_client_certificate_bound_access_tokens")?
                .unwrap_or(false),
            default_max_age: members.seconds("default_max_age")?,
            require_auth_time: members.bool("require_auth_time")?.unwrap_or(false),
            default_acr_values: members.strings("default_acr_values")?,
            initiate_login_uri: members.string("initiate_login_uri")?,
            request_uris: members.strings("request_uris")?,
            scope: members.string("scope")?,
            software_id: members.string("software_id")?,
            software_version: members.string("software_version")?,
        })
    }

    pub fn has_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// The client uses the implicit flow: `implicit` is registered, or a response type returns
    /// a token or ID Token from the authorization endpoint (OIDC DCR §2).
    pub fn uses_implicit(&self) -> bool {
        self.has_grant(GrantType::Implicit) || self.response_types.iter().any(|r| r.is_implicit())
    }

    /// Whether the client must be issued a client_secret (OIDC DCR §3.2): it authenticates
    /// with one, or a registered algorithm is a MAC or symmetric encryption keyed by it
    /// (OIDC Core §10.1, §10.2).
    pub fn needs_secret(&self) -> bool {
        self.token_endpoint_auth_method.uses_secret() || self.uses_symmetric_algorithm()
    }

    /// Whether any registered algorithm is a MAC (HS*) or a symmetric JWE key management alg.
    pub fn uses_symmetric_algorithm(&self) -> bool {
        let signing = [
            Some(&self.id_token_signed_response_alg),
            self.userinfo_signed_response_alg.as_ref(),
            self.request_object_signing_alg.as_ref(),
            self.token_endpoint_auth_signing_alg.as_ref(),
        ];
        let encryption = [
            &self.id_token_encryption,
            &self.userinfo_encryption,
            &self.request_object_encryption,
        ];
        signing.into_iter().flatten().any(|alg| is_mac_alg(alg))
            || encryption
                .into_iter()
                .flatten()
                .any(|e| is_symmetric_jwe_alg(&e.alg))
    }

    /// Whether responses are encrypted to the client's public key (OIDC Core §10.2), so the
    /// client must register keys.
    pub fn uses_asymmetric_encryption(&self) -> bool {
        [&self.id_token_encryption, &self.userinfo_encryption]
            .into_iter()
            .flatten()
            .any(|e| !is_symmetric_jwe_alg(&e.alg))
    }

    /// Whether the server needs the client's public keys: for `private_key_jwt`, or to encrypt
    /// responses to it.
    pub fn needs_public_keys(&self) -> bool {
        matches!(
            self.token_endpoint_auth_method,
            AuthMethod::PrivateKeyJwt | AuthMethod::SelfSignedTlsClientAuth
        ) || self.uses_asymmetric_encryption()
    }

    pub fn client_name(&self) -> Option<&str> {
        self.localized.get("client_name").map(String::as_str)
    }
}

/// `["code"]`, or `[]` when the grant types hold no redirect-based grant: `client_credentials`
/// alone implies no response type (RFC 7591 §2.1), so the OIDC DCR §2 default would be
/// inconsistent with it.
pub fn default_response_types(grant_types: &[GrantType]) -> Vec<ResponseType> {
    if grant_types.iter().any(|g| g.is_redirect_based()) {
        vec![ResponseType::code()]
    } else {
        Vec::new()
    }
}

/// HMAC algorithms (RFC 7518 §3.2).
pub fn is_mac_alg(alg: &str) -> bool {
    alg.starts_with("HS")
}

/// JWE key management algorithms keyed by a shared secret (RFC 7518 §4.4–§4.8; OIDC Core §10.2).
pub fn is_symmetric_jwe_alg(alg: &str) -> bool {
    alg == "dir" || alg.starts_with("PBES2") || (alg.starts_with('A') && alg.ends_with("KW"))
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// A value quoted for an error description: ASCII only and bounded, so that a hostile value
/// cannot fill a response or a log line (RFC 7591 §3.2.2 wants ASCII descriptions).
pub fn quoted(value: &str) -> String {
    const MAX: usize = 80;
    let mut out = String::from("\"");
    for (count, c) in value.chars().enumerate() {
        if count == MAX {
            out.push_str("...");
            break;
        }
        match c {
            ' '..='~' if c != '"' && c != '\\' => out.push(c),
            _ => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<ClientMetadata, MetadataError> {
        ClientMetadata::parse(value.as_object().unwrap(), SubjectType::Public)
    }

    #[test]
    fn defaults_apply() {
        let md = parse(json!({"redirect_uris": ["https://rp.example/cb"]})).unwrap();
        assert_eq!(md.grant_types, [GrantType::AuthorizationCode]);
        assert_eq!(md.response_types, [ResponseType::code()]);
        assert_eq!(md.application_type, ApplicationType::Web);
        assert_eq!(md.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(md.id_token_signed_response_alg, "RS256");
        assert_eq!(md.subject_type, SubjectType::Public);
        assert!(md.needs_secret());
        // client_credentials alone implies no response type (RFC 7591 §2.1)
        let md = parse(json!({"grant_types": ["client_credentials"]})).unwrap();
        assert!(md.response_types.is_empty());
        let pairwise = json!({"redirect_uris": ["https://rp.example/cb"]});
        let md = ClientMetadata::parse(pairwise.as_object().unwrap(), SubjectType::Pairwise);
        assert_eq!(md.unwrap().subject_type, SubjectType::Pairwise);
    }

    #[test]
    fn wrong_types_are_invalid_client_metadata() {
        for body in [
            json!({"grant_types": "authorization_code"}),
            json!({"grant_types": [1]}),
            json!({"grant_types": ["magic"]}),
            json!({"response_types": ["code  token"]}),
            json!({"subject_type": "secret"}),
            json!({"client_name": 5}),
            json!({"require_auth_time": "yes"}),
            json!({"default_max_age": -1}),
            json!({"default_max_age": 1.5}),
            json!({"jwks": "x"}),
            json!({"contacts": [null]}),
            json!({"application_type": "desktop"}),
            json!({"token_endpoint_auth_method": "tls_client_auth_x"}),
            json!({"tls_client_auth_san_dns": ["a.example"]}),
            json!({"id_token_encrypted_response_enc": "A128GCM"}),
        ] {
            let err = parse(body.clone()).unwrap_err();
            assert_eq!(err.code, MetadataErrorCode::InvalidClientMetadata, "{body}");
        }
        let err = parse(json!({"redirect_uris": "https://rp.example/cb"})).unwrap_err();
        assert_eq!(err.code, MetadataErrorCode::InvalidRedirectUri);
    }

    #[test]
    fn quoted_is_ascii_and_bounded() {
        let q = quoted(&"é\"".repeat(100));
        assert!(q.is_ascii());
        assert!(q.len() < 1000);
    }

    #[test]
    fn symmetric_algorithms() {
        assert!(is_symmetric_jwe_alg("dir"));
        assert!(is_symmetric_jwe_alg("A128KW"));
        assert!(is_symmetric_jwe_alg("A256GCMKW"));
        assert!(!is_symmetric_jwe_alg("ECDH-ES+A128KW"));
        assert!(!is_symmetric_jwe_alg("RSA-OAEP"));
    }
}
