//! The registrar's metadata document, served at both well-known paths: OpenID Provider
//! Metadata (OIDC Discovery §3) and OAuth 2.0 Authorization Server Metadata (RFC 8414 §2). It
//! advertises exactly the values the validator enforces, and never changes while the process
//! runs, so it is built once.

use serde::Serialize;

use crate::config::Config;
use crate::metadata::{AuthMethod, GrantType, ResponseType, SubjectType};

#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    pub issuer: String,
    pub registration_endpoint: String,
    pub jwks_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    pub response_types_supported: Vec<ResponseType>,
    pub grant_types_supported: Vec<GrantType>,
    pub subject_types_supported: Vec<SubjectType>,
    pub token_endpoint_auth_methods_supported: Vec<AuthMethod>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub id_token_encryption_alg_values_supported: Vec<String>,
    pub id_token_encryption_enc_values_supported: Vec<String>,
    pub userinfo_signing_alg_values_supported: Vec<String>,
    pub userinfo_encryption_alg_values_supported: Vec<String>,
    pub userinfo_encryption_enc_values_supported: Vec<String>,
    pub request_object_signing_alg_values_supported: Vec<String>,
    pub request_object_encryption_alg_values_supported: Vec<String>,
    pub request_object_encryption_enc_values_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr_values_supported: Option<Vec<String>>,
    /// Our own member: the longest client_id this registrar issues, so that OPs and clients
    /// can size their storage (RFC 6749 §2.2 leaves the size undefined).
    pub client_id_max_length: usize,
    /// Our own member: whether a registration must carry a software statement.
    pub software_statement_required: bool,
    /// Our own member: whether a registration must present an initial access token
    /// (RFC 7591 §3).
    pub initial_access_token_required: bool,
    /// draft-ietf-oauth-client-id-metadata-document §6: whether client_ids that are https URLs
    /// of metadata documents are accepted (at `POST /resolve`, by the OP beside it).
    pub client_id_metadata_document_supported: bool,
    /// RFC 8705 §3.3, §5: the OP's mutual-TLS endpoints and its certificate-bound tokens,
    /// published only when `mtls_endpoint_aliases` is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtls_endpoint_aliases: Option<std::collections::BTreeMap<String, String>>,
    /// The Status List Aggregation (draft-ietf-oauth-status-list-18 §9.1, §14.6): the URIs of
    /// the status lists the client_ids of this registrar point to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_list_aggregation_endpoint: Option<String>,
}

impl Discovery {
    pub(super) fn new(config: &Config, endpoints: &super::Endpoints) -> Self {
        let p = config.policy.clone();
        Discovery {
            issuer: endpoints.issuer.clone(),
            registration_endpoint: endpoints.registration.clone(),
            jwks_uri: endpoints.jwks.clone(),
            authorization_endpoint: config.authorization_endpoint.clone(),
            token_endpoint: config.token_endpoint.clone(),
            response_types_supported: p.response_types,
            grant_types_supported: p.grant_types,
            subject_types_supported: p.subject_types,
            token_endpoint_auth_methods_supported: p.token_endpoint_auth_methods,
            token_endpoint_auth_signing_alg_values_supported: p.token_endpoint_auth_signing_algs,
            id_token_signing_alg_values_supported: p.id_token_signing_algs,
            id_token_encryption_alg_values_supported: p.id_token_encryption_algs,
            id_token_encryption_enc_values_supported: p.id_token_encryption_encs,
            userinfo_signing_alg_values_supported: p.userinfo_signing_algs,
            userinfo_encryption_alg_values_supported: p.userinfo_encryption_algs,
            userinfo_encryption_enc_values_supported: p.userinfo_encryption_encs,
            request_object_signing_alg_values_supported: p.request_object_signing_algs,
            request_object_encryption_alg_values_supported: p.request_object_encryption_algs,
            request_object_encryption_enc_values_supported: p.request_object_encryption_encs,
            code_challenge_methods_supported: p.code_challenge_methods,
            scopes_supported: p.scopes,
            acr_values_supported: p.acr_values,
            client_id_max_length: config.client_id_max_length,
            software_statement_required: config.requirement().statement(),
            initial_access_token_required: config.requirement().token(),
            client_id_metadata_document_supported: config.client_id_metadata_documents.enabled(),
            tls_client_certificate_bound_access_tokens: config
                .mtls_endpoint_aliases
                .as_ref()
                .map(|_| true),
            mtls_endpoint_aliases: config.mtls_endpoint_aliases.clone(),
            status_list_aggregation_endpoint: config
                .publishes_status_lists()
                .then(|| endpoints.status_list_aggregation.clone()),
        }
    }
}
