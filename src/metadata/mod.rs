//! Client metadata (RFC 7591 §2, OIDC DCR §2; digest §1): typed values parsed once from JSON,
//! the defaults, and the JSON forms for responses and for embedding in a client_id.
//!
//! Parsing ([`ClientMetadata::parse`]) checks JSON types and applies defaults; validation
//! ([`validate::validate`]) applies every cross-field and policy rule. Both stop at the first
//! problem and report it with the spec's error code (digest §7.3).

pub mod lang;
pub mod redirect;
pub mod validate;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub use validate::{validate, Rules, Validated};

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

pub(crate) fn icm(description: impl Into<String>) -> MetadataError {
    MetadataError {
        code: MetadataErrorCode::InvalidClientMetadata,
        description: description.into(),
    }
}

pub(crate) fn bad_redirect(description: impl Into<String>) -> MetadataError {
    MetadataError {
        code: MetadataErrorCode::InvalidRedirectUri,
        description: description.into(),
    }
}

/// `web` or `native` (OIDC DCR §2), recorded in the client_id (RFC 8252 §8.4, digest R68).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationType {
    Web,
    Native,
}

impl ApplicationType {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationType::Web => "web",
            ApplicationType::Native => "native",
        }
    }
}

/// `token_endpoint_auth_method` values (RFC 7591 §2; OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    None,
    ClientSecretBasic,
    ClientSecretPost,
    ClientSecretJwt,
    PrivateKeyJwt,
}

impl AuthMethod {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "none" => AuthMethod::None,
            "client_secret_basic" => AuthMethod::ClientSecretBasic,
            "client_secret_post" => AuthMethod::ClientSecretPost,
            "client_secret_jwt" => AuthMethod::ClientSecretJwt,
            "private_key_jwt" => AuthMethod::PrivateKeyJwt,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretJwt => "client_secret_jwt",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// Methods that authenticate with the client_secret (digest §6).
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::ClientSecretBasic
                | AuthMethod::ClientSecretPost
                | AuthMethod::ClientSecretJwt
        )
    }
}

/// The five human-readable members that may carry a language tag (RFC 7591 §2.2; digest §4).
pub const LOCALIZABLE: [&str; 5] = [
    "client_name",
    "logo_uri",
    "client_uri",
    "policy_uri",
    "tos_uri",
];

/// The known metadata members (digest §1.1). Everything else in a request is ignored
/// (RFC 7591 §2), and response-only members such as `client_id` are never adopted (R8).
pub const KNOWN_MEMBERS: [&str; 33] = [
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

/// Spec default of `id_token_signed_response_alg` (OIDC DCR §2).
pub const DEFAULT_ID_TOKEN_ALG: &str = "RS256";
/// Spec default of every `*_encrypted_response_enc` once its alg is set (OIDC DCR §2).
pub const DEFAULT_ENC: &str = "A128CBC-HS256";

/// An encryption choice: a JWE `alg` and its `enc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    pub alg: String,
    pub enc: String,
}

/// Validated-shape client metadata with defaults applied. Strings are kept exactly as received
/// (OIDC DCR §6: no normalisation); member names of tagged values too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub response_types: Vec<String>,
    pub grant_types: Vec<String>,
    pub application_type: ApplicationType,
    pub contacts: Option<Vec<String>>,
    /// `client_name`, `logo_uri`, `client_uri`, `policy_uri`, `tos_uri` and their tagged forms,
    /// by exact member name.
    pub localized: BTreeMap<String, String>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<Map<String, Value>>,
    pub sector_identifier_uri: Option<String>,
    pub subject_type: String,
    pub id_token_signed_response_alg: String,
    pub id_token_encryption: Option<Encryption>,
    pub userinfo_signed_response_alg: Option<String>,
    pub userinfo_encryption: Option<Encryption>,
    pub request_object_signing_alg: Option<String>,
    pub request_object_encryption: Option<Encryption>,
    pub token_endpoint_auth_method: AuthMethod,
    pub token_endpoint_auth_signing_alg: Option<String>,
    pub default_max_age: Option<u64>,
    pub require_auth_time: bool,
    pub default_acr_values: Option<Vec<String>>,
    pub initiate_login_uri: Option<String>,
    pub request_uris: Option<Vec<String>>,
    pub scope: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
}

/// Reads typed members from a JSON object. JSON `null` counts as absent (RFC 7592 §2.2 lets the
/// server ignore null values; digest §7.4).
struct Reader<'a>(&'a Map<String, Value>);

impl<'a> Reader<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn string(&self, name: &str) -> Result<Option<String>, MetadataError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(icm(format!("{name} must be a string"))),
        }
    }

    fn strings(&self, name: &str) -> Result<Option<Vec<String>>, MetadataError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(icm(format!("{name} must be an array of strings"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(icm(format!("{name} must be an array of strings"))),
        }
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, MetadataError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(icm(format!("{name} must be a boolean"))),
        }
    }

    fn seconds(&self, name: &str) -> Result<Option<u64>, MetadataError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| icm(format!("{name} must be a non-negative integer"))),
            Some(_) => Err(icm(format!("{name} must be a non-negative integer"))),
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
            // OIDC DCR §2: an enc may only be given together with its alg (digest R29)
            (None, Some(_)) => Err(icm(format!("{enc_name} requires {alg_name}"))),
            (None, None) => Ok(None),
        }
    }
}

impl ClientMetadata {
    /// Parse a JSON object of metadata: check each known member's JSON type and apply the
    /// defaults (digest §1.1, §2 step 1). Unknown members are ignored. `default_subject_type`
    /// is the policy's default (OIDC Core §8).
    pub fn parse(
        map: &Map<String, Value>,
        default_subject_type: &str,
    ) -> Result<Self, MetadataError> {
        let r = Reader(map);
        // Any problem with redirect_uris is invalid_redirect_uri (digest §1).
        let redirect_uris = r
            .strings("redirect_uris")
            .map_err(|_| bad_redirect("redirect_uris must be an array of strings"))?
            .unwrap_or_default();
        let grant_types = r
            .strings("grant_types")?
            .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
        let response_types = match r.strings("response_types")? {
            Some(values) => values,
            None => default_response_types(&grant_types),
        };
        let application_type = match r.string("application_type")?.as_deref() {
            None | Some("web") => ApplicationType::Web,
            Some("native") => ApplicationType::Native,
            Some(_) => return Err(icm("application_type must be \"web\" or \"native\"")),
        };
        let token_endpoint_auth_method = match r.string("token_endpoint_auth_method")? {
            None => AuthMethod::ClientSecretBasic,
            Some(value) => AuthMethod::parse(&value).ok_or_else(|| {
                icm(format!(
                    "token_endpoint_auth_method {} is not supported",
                    quoted(&value)
                ))
            })?,
        };
        let jwks = match r.get("jwks") {
            None => None,
            Some(Value::Object(o)) => Some(o.clone()),
            Some(_) => return Err(icm("jwks must be a JWK Set object")),
        };
        Ok(ClientMetadata {
            redirect_uris,
            response_types,
            grant_types,
            application_type,
            contacts: r.strings("contacts")?,
            localized: lang::localized_members(map)?,
            jwks_uri: r.string("jwks_uri")?,
            jwks,
            sector_identifier_uri: r.string("sector_identifier_uri")?,
            subject_type: r
                .string("subject_type")?
                .unwrap_or_else(|| default_subject_type.to_owned()),
            id_token_signed_response_alg: r
                .string("id_token_signed_response_alg")?
                .unwrap_or_else(|| DEFAULT_ID_TOKEN_ALG.to_owned()),
            id_token_encryption: r.encryption(
                "id_token_encrypted_response_alg",
                "id_token_encrypted_response_enc",
            )?,
            userinfo_signed_response_alg: r.string("userinfo_signed_response_alg")?,
            userinfo_encryption: r.encryption(
                "userinfo_encrypted_response_alg",
                "userinfo_encrypted_response_enc",
            )?,
            request_object_signing_alg: r.string("request_object_signing_alg")?,
            request_object_encryption: r.encryption(
                "request_object_encryption_alg",
                "request_object_encryption_enc",
            )?,
            token_endpoint_auth_method,
            token_endpoint_auth_signing_alg: r.string("token_endpoint_auth_signing_alg")?,
            default_max_age: r.seconds("default_max_age")?,
            require_auth_time: r.bool("require_auth_time")?.unwrap_or(false),
            default_acr_values: r.strings("default_acr_values")?,
            initiate_login_uri: r.string("initiate_login_uri")?,
            request_uris: r.strings("request_uris")?,
            scope: r.string("scope")?,
            software_id: r.string("software_id")?,
            software_version: r.string("software_version")?,
        })
    }

    /// The JSON members of this metadata. `Form::Full` lists every registered field with the
    /// defaults (RFC 7591 §3.2.1, digest R11); `Form::Compact` leaves out values equal to the
    /// spec defaults that [`ClientMetadata::parse`] restores, to keep client_ids short (D5).
    pub fn to_json(&self, form: Form) -> Map<String, Value> {
        let compact = form == Form::Compact;
        let mut m = Map::new();
        let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        let s = |v: &str| Value::String(v.to_owned());

        if !self.redirect_uris.is_empty() {
            m.insert("redirect_uris".into(), strings(&self.redirect_uris));
        }
        let default_grants =
            self.grant_types.len() == 1 && self.grant_types[0] == "authorization_code";
        if !(compact && default_grants) {
            m.insert("grant_types".into(), strings(&self.grant_types));
        }
        if !(compact && self.response_types == default_response_types(&self.grant_types)) {
            m.insert("response_types".into(), strings(&self.response_types));
        }
        if !(compact && self.application_type == ApplicationType::Web) {
            m.insert("application_type".into(), s(self.application_type.as_str()));
        }
        if let Some(v) = &self.contacts {
            m.insert("contacts".into(), strings(v));
        }
        for (name, value) in &self.localized {
            m.insert(name.clone(), s(value));
        }
        if let Some(v) = &self.jwks_uri {
            m.insert("jwks_uri".into(), s(v));
        }
        if let Some(v) = &self.jwks {
            m.insert("jwks".into(), Value::Object(v.clone()));
        }
        if let Some(v) = &self.sector_identifier_uri {
            m.insert("sector_identifier_uri".into(), s(v));
        }
        if !(compact && self.subject_type == "public") {
            m.insert("subject_type".into(), s(&self.subject_type));
        }
        if !(compact && self.id_token_signed_response_alg == DEFAULT_ID_TOKEN_ALG) {
            m.insert(
                "id_token_signed_response_alg".into(),
                s(&self.id_token_signed_response_alg),
            );
        }
        let mut encryption = |alg_name: &str, enc_name: &str, e: &Option<Encryption>| {
            if let Some(e) = e {
                m.insert(alg_name.into(), s(&e.alg));
                m.insert(enc_name.into(), s(&e.enc));
            }
        };
        encryption(
            "id_token_encrypted_response_alg",
            "id_token_encrypted_response_enc",
            &self.id_token_encryption,
        );
        encryption(
            "userinfo_encrypted_response_alg",
            "userinfo_encrypted_response_enc",
            &self.userinfo_encryption,
        );
        encryption(
            "request_object_encryption_alg",
            "request_object_encryption_enc",
            &self.request_object_encryption,
        );
        if let Some(v) = &self.userinfo_signed_response_alg {
            m.insert("userinfo_signed_response_alg".into(), s(v));
        }
        if let Some(v) = &self.request_object_signing_alg {
            m.insert("request_object_signing_alg".into(), s(v));
        }
        if !(compact && self.token_endpoint_auth_method == AuthMethod::ClientSecretBasic) {
            m.insert(
                "token_endpoint_auth_method".into(),
                s(self.token_endpoint_auth_method.as_str()),
            );
        }
        if let Some(v) = &self.token_endpoint_auth_signing_alg {
            m.insert("token_endpoint_auth_signing_alg".into(), s(v));
        }
        if let Some(v) = self.default_max_age {
            m.insert("default_max_age".into(), Value::from(v));
        }
        if !compact || self.require_auth_time {
            m.insert(
                "require_auth_time".into(),
                Value::Bool(self.require_auth_time),
            );
        }
        if let Some(v) = &self.default_acr_values {
            m.insert("default_acr_values".into(), strings(v));
        }
        if let Some(v) = &self.initiate_login_uri {
            m.insert("initiate_login_uri".into(), s(v));
        }
        if let Some(v) = &self.request_uris {
            m.insert("request_uris".into(), strings(v));
        }
        for (name, v) in [
            ("scope", &self.scope),
            ("software_id", &self.software_id),
            ("software_version", &self.software_version),
        ] {
            if let Some(v) = v {
                m.insert(name.into(), s(v));
            }
        }
        m
    }

    /// Whether the client must be issued a client_secret (digest §6, R107): it authenticates
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

    pub fn client_name(&self) -> Option<&str> {
        self.localized.get("client_name").map(String::as_str)
    }
}

/// Which JSON form [`ClientMetadata::to_json`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Full,
    Compact,
}

/// `["code"]`, or `[]` when the grant types hold no redirect-based grant (digest §2 step 1, C14).
pub fn default_response_types(grant_types: &[String]) -> Vec<String> {
    if grant_types
        .iter()
        .any(|g| g == "authorization_code" || g == "implicit")
    {
        vec!["code".to_owned()]
    } else {
        Vec::new()
    }
}

pub fn is_mac_alg(alg: &str) -> bool {
    alg.starts_with("HS")
}

/// JWE key management algorithms keyed by a shared secret (OIDC Core §10.2).
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

/// A value quoted for an error description: ASCII only, bounded, so that a hostile value cannot
/// fill a response or a log line (error descriptions must be ASCII, digest C7).
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
        ClientMetadata::parse(value.as_object().unwrap(), "public")
    }

    #[test]
    fn defaults_apply() {
        let md = parse(json!({"redirect_uris": ["https://rp.example/cb"]})).unwrap();
        assert_eq!(md.grant_types, ["authorization_code"]);
        assert_eq!(md.response_types, ["code"]);
        assert_eq!(md.application_type, ApplicationType::Web);
        assert_eq!(md.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(md.id_token_signed_response_alg, "RS256");
        assert!(md.needs_secret());
        let md = parse(json!({"grant_types": ["client_credentials"]})).unwrap();
        assert!(md.response_types.is_empty(), "C14");
    }

    #[test]
    fn wrong_types_are_invalid_client_metadata() {
        for body in [
            json!({"grant_types": "authorization_code"}),
            json!({"grant_types": [1]}),
            json!({"client_name": 5}),
            json!({"require_auth_time": "yes"}),
            json!({"default_max_age": -1}),
            json!({"default_max_age": 1.5}),
            json!({"jwks": "x"}),
            json!({"contacts": [null]}),
            json!({"application_type": "desktop"}),
            json!({"token_endpoint_auth_method": "tls_client_auth"}),
            json!({"id_token_encrypted_response_enc": "A128GCM"}),
        ] {
            let err = parse(body.clone()).unwrap_err();
            assert_eq!(err.code, MetadataErrorCode::InvalidClientMetadata, "{body}");
        }
        let err = parse(json!({"redirect_uris": "https://rp.example/cb"})).unwrap_err();
        assert_eq!(err.code, MetadataErrorCode::InvalidRedirectUri);
    }

    #[test]
    fn compact_form_round_trips() {
        let md = parse(json!({
            "redirect_uris": ["https://rp.example/cb"],
            "client_name#ja-Jpan-JP": "クライアント",
            "id_token_encrypted_response_alg": "RSA-OAEP",
            "default_max_age": 60,
        }))
        .unwrap();
        let compact = md.to_json(Form::Compact);
        assert!(!compact.contains_key("grant_types"));
        assert!(!compact.contains_key("token_endpoint_auth_method"));
        let again = ClientMetadata::parse(&compact, "public").unwrap();
        assert_eq!(md, again);
        let full = md.to_json(Form::Full);
        assert_eq!(full["id_token_encrypted_response_enc"], "A128CBC-HS256");
        assert_eq!(full["client_name#ja-Jpan-JP"], "クライアント");
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
