//! The client information response (RFC 7591 §3.2.1, RFC 7592 §3): every registered field with
//! the defaults, the client_id, its secrets, and the configuration endpoint. Serialised once,
//! straight from the typed values.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::metadata::Form;
use crate::resolve::VerifiedClient;
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct ClientInformation {
    pub(super) client: VerifiedClient,
    pub(super) client_secret: Option<Secret>,
    /// The registration access token and the registration_client_uri, which come together or
    /// not at all (OIDC DCR §3.2).
    pub(super) management: Option<(Secret, String)>,
    /// A software statement presented with this request, echoed unchanged (RFC 7591 §3.2.1).
    pub(super) software_statement: Option<String>,
}

impl ClientInformation {
    pub fn client(&self) -> &VerifiedClient {
        &self.client
    }

    pub fn client_id(&self) -> &str {
        &self.client.client_id
    }

    pub fn client_secret(&self) -> Option<&Secret> {
        self.client_secret.as_ref()
    }

    pub fn registration_access_token(&self) -> Option<&Secret> {
        self.management.as_ref().map(|(token, _)| token)
    }

    pub fn registration_client_uri(&self) -> Option<&str> {
        self.management.as_ref().map(|(_, uri)| uri.as_str())
    }

    /// The response as a JSON value (for tools and tests; the HTTP layer serialises directly).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl Serialize for ClientInformation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(None)?;
        self.client
            .metadata()
            .serialize_members(Form::Full, &mut m)?;
        m.serialize_entry("client_id", &*self.client.client_id)?;
        m.serialize_entry("client_id_issued_at", &self.client.claims.iat)?;
        if let Some(secret) = &self.client_secret {
            m.serialize_entry("client_secret", secret)?;
            // 0 means it never expires (RFC 7591 §3.2.1); never later than the client_id
            m.serialize_entry(
                "client_secret_expires_at",
                &self.client.claims.exp.unwrap_or(0),
            )?;
        }
        if let Some((token, uri)) = &self.management {
            m.serialize_entry("registration_access_token", token)?;
            m.serialize_entry("registration_client_uri", uri)?;
        }
        if let Some(statement) = &self.software_statement {
            m.serialize_entry("software_statement", statement)?;
        }
        m.end()
    }
}
