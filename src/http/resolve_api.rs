//! The OP-facing resolution API (`POST /resolve`): the request parsed into typed values, and the
//! answer built from [`Resolver`]'s outcomes. Error codes are the ones an OP would send on:
//! `invalid_client` (RFC 6749 §5.2), `invalid_redirect_uri`, `unsupported_response_type` and
//! `unauthorized_client` (RFC 6749 §4.1.2.1, §5.2).

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::errors::ApiError;
use crate::client_id::Provenance;
use crate::metadata::{AuthMethod, Form};
use crate::registrar::RegistrationError;
use crate::resolve::{ClientCertificate, Credentials, ResolveError, Resolver, VerifiedClient};

/// RFC 7523 §2.2.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A parsed `POST /resolve` request.
#[derive(Debug)]
pub struct ResolveQuery {
    client_id: String,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    grant_type: Option<String>,
    client_secret: Option<String>,
    /// How the OP received the secret: `client_secret_basic` or `client_secret_post`.
    client_auth_method: Option<String>,
    client_assertion: Option<String>,
    /// The certificate of the client's mutual-TLS connection (RFC 8705), parsed here.
    client_certificate: Option<ClientCertificate>,
}

impl ResolveQuery {
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn from_json(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let string = |name: &str| -> Result<Option<String>, ApiError> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ApiError::InvalidRequest(format!("{name} must be a string"))),
            }
        };
        let client_id = string("client_id")?
            .ok_or_else(|| ApiError::InvalidRequest("client_id is required".into()))?;
        let assertion_type = string("client_assertion_type")?;
        let client_assertion = string("client_assertion")?;
        if client_assertion.is_some() && assertion_type.as_deref() != Some(JWT_BEARER) {
            return Err(ApiError::InvalidRequest(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        let client_auth_method = string("client_auth_method")?;
        if let Some(method) = &client_auth_method {
            if !matches!(
                method.as_str(),
                "client_secret_basic" | "client_secret_post"
            ) {
                return Err(ApiError::InvalidRequest(
                    "client_auth_method must be client_secret_basic or client_secret_post".into(),
                ));
            }
        }
        let client_certificate = string("client_certificate")?
            .map(|text| ClientCertificate::parse(&text))
            .transpose()
            .map_err(|e| {
                ApiError::InvalidRequest(format!(
                    "client_certificate must be an X.509 certificate as PEM or base64 DER: {e}"
                ))
            })?;
        let query = ResolveQuery {
            client_id,
            redirect_uri: string("redirect_uri")?,
            response_type: string("response_type")?,
            grant_type: string("grant_type")?,
            client_secret: string("client_secret")?,
            client_auth_method,
            client_assertion,
            client_certificate,
        };
        if query.client_secret.is_some() && query.client_assertion.is_some() {
            return Err(ApiError::InvalidRequest(
                "present a client_secret or a client_assertion, not both".into(),
            ));
        }
        Ok(query)
    }
}

/// The answer of `POST /resolve`: about the client, always 200 (docs/api.md).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ResolveAnswer {
    Refused {
        valid: bool,
        error: &'static str,
        error_description: String,
    },
    Valid(Box<ValidAnswer>),
}

/// A client that resolved, and what the OP needs of it.
#[derive(Debug, Serialize)]
pub struct ValidAnswer {
    valid: bool,
    /// `client_id` (a client_id this registrar issued) or `metadata_document` (a client
    /// identifier URL, draft-ietf-oauth-client-id-metadata-document).
    source: &'static str,
    authenticated: bool,
    client_type: &'static str,
    expires_at: Option<u64>,
    sector: Option<String>,
    software_statement: Option<Provenance>,
    /// kid of the registrar key the client_secret derives from, so that a node holding the
    /// `client_secret` keys can check secrets itself.
    client_secret_kid: Option<String>,
    /// With a `client_certificate`: its `x5t#S256` thumbprint, the confirmation an OP puts
    /// in certificate-bound tokens (RFC 8705 §3.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation>,
    client: ClientView,
}

/// RFC 8705 §3.1: `{"x5t#S256": ...}`.
#[derive(Debug, Serialize)]
pub struct Confirmation {
    #[serde(rename = "x5t#S256")]
    x5t_s256: String,
}

/// The client's metadata in full, with its client_id and issue time.
#[derive(Debug)]
pub struct ClientView(Arc<VerifiedClient>);

impl Serialize for ClientView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = serializer.serialize_map(None)?;
        self.0.metadata().serialize_members(Form::Full, &mut m)?;
        m.serialize_entry("client_id", &*self.0.client_id)?;
        m.serialize_entry("client_id_issued_at", &self.0.claims.iat)?;
        m.end()
    }
}

fn refused(error: &'static str, description: impl Into<String>) -> ResolveAnswer {
    ResolveAnswer::Refused {
        valid: false,
        error,
        error_description: description.into(),
    }
}

/// Resolve and check. Every answer about the client is 200 with `valid`; only a store that
/// cannot be reached is an error (503: the client may have been deleted).
pub async fn answer(resolver: &Resolver, query: &ResolveQuery) -> Result<ResolveAnswer, ApiError> {
    let client = match resolver.resolve(&query.client_id).await {
        Ok(client) => client,
        Err(ResolveError::InvalidClient(why)) => {
            return Ok(refused(
                "invalid_client",
                format!("the client_id is not valid ({why})"),
            ))
        }
        Err(e) => return Err(RegistrationError::from(e).into()),
    };
    if let Some(uri) = &query.redirect_uri {
        if !client.redirect_uri_matches(uri) {
            // RFC 6749 §4.1.2.1: the OP must not redirect to it
            return Ok(refused(
                "invalid_redirect_uri",
                "redirect_uri is not registered for this client; do not redirect to it",
            ));
        }
    }
    if let Some(response_type) = &query.response_type {
        if !client.allows_response_type(response_type) {
            return Ok(refused(
                "unsupported_response_type",
                "the client did not register this response_type",
            ));
        }
    }
    if let Some(grant_type) = &query.grant_type {
        if !client.allows_grant_type(grant_type) {
            return Ok(refused(
                "unauthorized_client",
                "the client did not register this grant_type",
            ));
        }
    }
    let credentials = match (&query.client_secret, &query.client_assertion) {
        (Some(secret), _) => match query.client_auth_method.as_deref() {
            Some("client_secret_post") => Some(Credentials::SecretPost(secret)),
            Some(_) => Some(Credentials::SecretBasic(secret)),
            // the method the client registered, when the OP does not say
            None => match client.metadata().token_endpoint_auth_method {
                AuthMethod::ClientSecretPost => Some(Credentials::SecretPost(secret)),
                _ => Some(Credentials::SecretBasic(secret)),
            },
        },
        (None, Some(assertion)) => Some(Credentials::Assertion(assertion)),
        // RFC 8705 §2: the certificate is the credential of a mutual-TLS client
        (None, None)
            if matches!(
                client.metadata().token_endpoint_auth_method,
                AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth
            ) =>
        {
            query
                .client_certificate
                .as_ref()
                .map(Credentials::Certificate)
        }
        // a public client authenticates with nothing but its client_id
        (None, None) if client.is_public() => Some(Credentials::None),
        (None, None) => None,
    };
    let authenticated = match credentials {
        Some(credentials) => match resolver.authenticate(&client, credentials).await {
            Ok(()) => true,
            Err(e) => {
                tracing::info!(error = %e, "client authentication failed");
                return Ok(refused("invalid_client", "client authentication failed"));
            }
        },
        None => false,
    };
    Ok(ResolveAnswer::Valid(Box::new(ValidAnswer {
        valid: true,
        source: if client.is_metadata_document() {
            "metadata_document"
        } else {
            "client_id"
        },
        authenticated,
        client_type: if client.is_public() {
            "public"
        } else {
            "confidential"
        },
        expires_at: client.claims.exp,
        sector: client.sector().map(str::to_owned),
        software_statement: client.provenance().cloned(),
        client_secret_kid: client.client_secret_kid().map(str::to_owned),
        // RFC 8705 §3: any client may have its tokens bound to its certificate, whatever its
        // authentication method
        cnf: query.client_certificate.as_ref().map(|c| Confirmation {
            x5t_s256: c.thumbprint().to_owned(),
        }),
        client: ClientView(client),
    })))
}
