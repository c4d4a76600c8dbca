//! The JSON forms of [`ClientMetadata`], written straight from the typed value: the full form of
//! client information responses (RFC 7591 §3.2.1, RFC 7592 §3), and the compact form carried
//! inside client_ids and amendment records.

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::{
    default_response_types, ApplicationType, AuthMethod, ClientMetadata, Encryption, GrantType,
    SubjectType, DEFAULT_ID_TOKEN_ALG,
};

/// Which JSON form of the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Every registered field, defaults included (RFC 7591 §3.2.1: the server returns all
    /// registered metadata, including values it defaulted).
    Full,
    /// Values equal to the defaults that [`ClientMetadata::parse`] restores are left out, to
    /// keep client_ids short.
    Compact,
}

/// A [`ClientMetadata`] to serialise in one [`Form`].
pub struct MetadataJson<'a> {
    metadata: &'a ClientMetadata,
    form: Form,
}

impl ClientMetadata {
    pub fn json(&self, form: Form) -> MetadataJson<'_> {
        MetadataJson {
            metadata: self,
            form,
        }
    }

    /// The metadata as a JSON object, for the few places that look members up by name.
    pub fn to_json(&self, form: Form) -> Map<String, Value> {
        match serde_json::to_value(self.json(form)) {
            Ok(Value::Object(map)) => map,
            // Serialising strings, numbers and maps into a Value cannot fail.
            _ => Map::new(),
        }
    }
}

impl Serialize for MetadataJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.metadata.serialize_members(self.form, &mut map)?;
        map.end()
    }
}

impl ClientMetadata {
    /// Write the members of `form` into a map being serialised (a response adds its own
    /// members around them).
    pub fn serialize_members<M: SerializeMap>(
        &self,
        form: Form,
        m: &mut M,
    ) -> Result<(), M::Error> {
        let md = self;
        let compact = form == Form::Compact;
        if !md.redirect_uris.is_empty() {
            m.serialize_entry("redirect_uris", &md.redirect_uris)?;
        }
        let default_grants = md.grant_types == [GrantType::AuthorizationCode];
        if !(compact && default_grants) {
            m.serialize_entry("grant_types", &md.grant_types)?;
        }
        if !(compact && md.response_types == default_response_types(&md.grant_types)) {
            m.serialize_entry("response_types", &md.response_types)?;
        }
        unless_default(
            m,
            compact,
            "application_type",
            &md.application_type,
            &ApplicationType::Web,
        )?;
        optional(m, "contacts", md.contacts.as_ref())?;
        for (name, value) in &md.localized {
            m.serialize_entry(name, value)?;
        }
        optional(m, "jwks_uri", md.jwks_uri.as_ref())?;
        optional(m, "jwks", md.jwks.as_ref())?;
        optional(
            m,
            "sector_identifier_uri",
            md.sector_identifier_uri.as_ref(),
        )?;
        unless_default(
            m,
            compact,
            "subject_type",
            &md.subject_type,
            &SubjectType::Public,
        )?;
        unless_default(
            m,
            compact,
            "id_token_signed_response_alg",
            md.id_token_signed_response_alg.as_str(),
            DEFAULT_ID_TOKEN_ALG,
        )?;
        for (alg_name, enc_name, encryption) in [
            (
                "id_token_encrypted_response_alg",
                "id_token_encrypted_response_enc",
                &md.id_token_encryption,
            ),
            (
                "userinfo_encrypted_response_alg",
                "userinfo_encrypted_response_enc",
                &md.userinfo_encryption,
            ),
            (
                "request_object_encryption_alg",
                "request_object_encryption_enc",
                &md.request_object_encryption,
            ),
        ] {
            if let Some(Encryption { alg, enc }) = encryption {
                m.serialize_entry(alg_name, alg)?;
                m.serialize_entry(enc_name, enc)?;
            }
        }
        optional(
            m,
            "userinfo_signed_response_alg",
            md.userinfo_signed_response_alg.as_ref(),
        )?;
        optional(
            m,
            "request_object_signing_alg",
            md.request_object_signing_alg.as_ref(),
        )?;
        unless_default(
            m,
            compact,
            "token_endpoint_auth_method",
            &md.token_endpoint_auth_method,
            &AuthMethod::ClientSecretBasic,
        )?;
        optional(
            m,
            "token_endpoint_auth_signing_alg",
            md.token_endpoint_auth_signing_alg.as_ref(),
        )?;
        if let Some(subject) = &md.tls_client_auth_subject {
            let (name, value) = subject.member();
            m.serialize_entry(name, value)?;
        }
        // absent means false (RFC 8705 §3.4); written only when asked for, in both forms, so
        // that readers that know nothing of RFC 8705 see nothing new
        if md.tls_client_certificate_bound_access_tokens {
            m.serialize_entry(
                "tls_client_certificate_bound_access_tokens",
                &md.tls_client_certificate_bound_access_tokens,
            )?;
        }
        optional(m, "default_max_age", md.default_max_age.as_ref())?;
        if !compact || md.require_auth_time {
            m.serialize_entry("require_auth_time", &md.require_auth_time)?;
        }
        optional(m, "default_acr_values", md.default_acr_values.as_ref())?;
        optional(m, "initiate_login_uri", md.initiate_login_uri.as_ref())?;
        optional(m, "request_uris", md.request_uris.as_ref())?;
        optional(m, "scope", md.scope.as_ref())?;
        optional(m, "software_id", md.software_id.as_ref())?;
        optional(m, "software_version", md.software_version.as_ref())?;
        Ok(())
    }
}

/// A member that the compact form leaves out when it has its default value.
fn unless_default<M: SerializeMap, T: Serialize + PartialEq + ?Sized>(
    m: &mut M,
    compact: bool,
    name: &str,
    value: &T,
    default: &T,
) -> Result<(), M::Error> {
    if compact && value == default {
        Ok(())
    } else {
        m.serialize_entry(name, value)
    }
}

/// A member that is written only when it has a value.
fn optional<M: SerializeMap, T: Serialize + ?Sized>(
    m: &mut M,
    name: &str,
    value: Option<&T>,
) -> Result<(), M::Error> {
    match value {
        Some(value) => m.serialize_entry(name, value),
        None => Ok(()),
    }
}

/// `#[serde(with = "compact")]`: metadata embedded in a token in [`Form::Compact`], parsed back
/// with the spec defaults restored. Only the registrar signs such tokens, so what they carry
/// was validated when it was signed.
pub mod compact {
    use super::*;

    pub fn serialize<S: Serializer>(md: &ClientMetadata, serializer: S) -> Result<S::Ok, S::Error> {
        md.json(Form::Compact).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ClientMetadata, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        ClientMetadata::parse(&map, SubjectType::Public).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compact_form_round_trips() {
        let md = ClientMetadata::parse(
            json!({
                "redirect_uris": ["https://rp.example/cb"],
                "client_name#ja-Jpan-JP": "クライアント",
                "response_types": ["code"],
                "id_token_encrypted_response_alg": "RSA-OAEP",
                "default_max_age": 60,
            })
            .as_object()
            .unwrap(),
            SubjectType::Public,
        )
        .unwrap();
        let compact = md.to_json(Form::Compact);
        assert!(!compact.contains_key("grant_types"));
        assert!(!compact.contains_key("response_types"));
        assert!(!compact.contains_key("token_endpoint_auth_method"));
        let again = ClientMetadata::parse(&compact, SubjectType::Public).unwrap();
        assert_eq!(md, again);
        let full = md.to_json(Form::Full);
        assert_eq!(full["id_token_encrypted_response_enc"], "A128CBC-HS256");
        assert_eq!(full["client_name#ja-Jpan-JP"], "クライアント");
        assert_eq!(full["grant_types"], json!(["authorization_code"]));
        assert_eq!(full["require_auth_time"], false);
    }

    #[test]
    fn response_types_are_echoed_as_received() {
        let md = ClientMetadata::parse(
            json!({
                "grant_types": ["authorization_code", "implicit"],
                "response_types": ["id_token code"],
            })
            .as_object()
            .unwrap(),
            SubjectType::Public,
        )
        .unwrap();
        assert_eq!(
            md.to_json(Form::Full)["response_types"],
            json!(["id_token code"])
        );
    }
}
