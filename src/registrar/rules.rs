//! The rules every client's metadata meets, wherever it comes from: a registration, an update
//! (RFC 7591 §2, §3.1.1; OIDC DCR §2, §5) or a client ID metadata document
//! (draft-ietf-oauth-client-id-metadata-document §4). One validator, so that a document client
//! is held to exactly what a registered one is.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::RegistrationError;
use crate::config::{Config, Policy};
use crate::fetch::{self, DocumentKind, Fetcher};
use crate::metadata::{self, ClientMetadata};
use crate::statement::{TrustedIssuers, VerifiedStatement};
use crate::status_list::client::{ListError, StatusListClient};
use crate::status_list::{self, StatusReference};

/// The metadata rules of one deployment, with what checking them needs: the trusted issuers
/// (statements), the guarded fetcher (sector and JWK Set documents) and the status list client
/// (withdrawn statements). Cheap to share behind an `Arc`.
pub struct MetadataRules {
    policy: Policy,
    allow_native_https_redirects: bool,
    allowed_private_use_schemes: Vec<String>,
    check_client_jwks_uri: bool,
    clock_skew_secs: u64,
    max_statement_bytes: usize,
    issuers: Arc<TrustedIssuers>,
    fetcher: Fetcher,
    list_client: Arc<StatusListClient>,
}

impl std::fmt::Debug for MetadataRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataRules")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl MetadataRules {
    pub(crate) fn new(
        config: &Config,
        issuers: Arc<TrustedIssuers>,
        fetcher: Fetcher,
        list_client: Arc<StatusListClient>,
    ) -> Self {
        MetadataRules {
            policy: config.policy.clone(),
            allow_native_https_redirects: config.allow_native_https_redirects,
            allowed_private_use_schemes: config.allowed_private_use_schemes.clone(),
            check_client_jwks_uri: config.check_client_jwks_uri,
            clock_skew_secs: config.clock_skew_secs,
            max_statement_bytes: config.max_statement_bytes,
            issuers,
            fetcher,
            list_client,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub(crate) fn issuers(&self) -> &TrustedIssuers {
        &self.issuers
    }

    pub(crate) fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The `software_statement` member, verified (RFC 7591 §2.3, §3.1.1): absent, or a string
    /// holding a statement from a trusted issuer.
    pub async fn statement(
        &self,
        request: &Map<String, Value>,
        now: u64,
    ) -> Result<Option<Arc<VerifiedStatement>>, RegistrationError> {
        let text = match request.get("software_statement") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(text)) => text,
            Some(_) => {
                return Err(RegistrationError::InvalidSoftwareStatement(
                    "software_statement must be a string holding a JWT".into(),
                ))
            }
        };
        let statement = self
            .issuers
            .verify(text, now, self.clock_skew_secs, self.max_statement_bytes)
            .await?;
        if let Some(reference) = &statement.status {
            self.check_statement_status(&statement.issuer, reference)
                .await?;
        }
        Ok(Some(statement))
    }

    /// A statement with a `status` claim is accepted only while its issuer's list says VALID
    /// (draft-ietf-oauth-status-list-18 §8.3); a list that cannot be read refuses it for now.
    async fn check_statement_status(
        &self,
        issuer: &str,
        reference: &StatusReference,
    ) -> Result<(), RegistrationError> {
        let value =
            crate::resolve::statement_status(&self.list_client, &self.issuers, issuer, reference)
                .await
                .map_err(|e| match e {
                    // §8.3 step 6: an index outside the list can say nothing
                    ListError::Index(_) => RegistrationError::InvalidSoftwareStatement(format!(
                        "the software statement's status: {e}"
                    )),
                    other => RegistrationError::StatusUnavailable(format!(
                        "the software statement's status cannot be checked now: {other}"
                    )),
                })?;
        if value != status_list::VALID {
            return Err(RegistrationError::UnapprovedSoftwareStatement(format!(
                "the software statement was withdrawn by its issuer (its status is {})",
                status_list::registered_status_name(value)
            )));
        }
        Ok(())
    }

    /// The request body alone must be well-formed metadata: a member of the wrong JSON type is
    /// refused even where the statement supplies the same member (RFC 7591 §3.2.2: the request
    /// is invalid), so that a malformed body never passes because a statement hid it.
    pub fn check_body(&self, request: &Map<String, Value>) -> Result<(), RegistrationError> {
        let body = crate::statement::merge(request, None);
        ClientMetadata::parse(&body, self.policy.default_subject_type)?;
        Ok(())
    }

    /// The checks of a statement profile against the request: an `openbanking-uk` SSA's
    /// redirect URIs, software_id and roles (docs/profiles/openbanking-uk.md).
    pub fn check_profile(
        &self,
        statement: Option<&VerifiedStatement>,
        metadata: &ClientMetadata,
        request: &Map<String, Value>,
    ) -> Result<(), RegistrationError> {
        match statement.and_then(|s| s.openbanking.as_ref()) {
            Some(ssa) => super::openbanking::check_request(ssa, metadata, request),
            None => Ok(()),
        }
    }

    /// Parse, apply issuer policy and validate (RFC 7591 §2, OIDC DCR §2), then fetch and check
    /// what the metadata names (sector_identifier_uri, jwks_uri): the checks registration and
    /// update share. Returns the metadata and the sector of a pairwise client.
    pub async fn check_metadata(
        &self,
        effective: &Map<String, Value>,
        issuer: Option<&str>,
    ) -> Result<(ClientMetadata, Option<String>), RegistrationError> {
        let policy = &self.policy;
        let mut md = ClientMetadata::parse(effective, policy.default_subject_type)?;
        if effective.get("application_type").is_none_or(Value::is_null) {
            // docs/conformance.md `application-type-inferred`
            md.application_type =
                metadata::default_application_type(&md.redirect_uris, md.uses_implicit());
        }
        // The issuer's own limits come before the general rules: a statement for software the
        // issuer did not approve is unapproved whatever else it says.
        if let Some(issuer) = issuer {
            self.issuers.approve(issuer, &md)?;
        }
        let validated = metadata::validate(
            &md,
            policy,
            self.allow_native_https_redirects,
            &self.allowed_private_use_schemes,
        )?;
        if let Some(sector_uri) = &md.sector_identifier_uri {
            // OIDC DCR §5: fetched at registration (and update); every redirect URI must be in
            // it. A document that cannot be used is invalid_client_metadata, a redirect URI
            // missing from it invalid_redirect_uri.
            let listed = self
                .fetcher
                .sector_redirect_uris(sector_uri)
                .await
                .map_err(|e| {
                    RegistrationError::InvalidClientMetadata(format!("sector_identifier_uri: {e}"))
                })?;
            fetch::check_sector(&md.redirect_uris, &listed).map_err(|e| {
                RegistrationError::InvalidRedirectUri(format!("sector_identifier_uri: {e}"))
            })?;
        }
        if let (Some(jwks_uri), true) = (&md.jwks_uri, self.check_client_jwks_uri) {
            if md.needs_public_keys() {
                self.fetcher
                    .jwks(jwks_uri, DocumentKind::ClientJwks)
                    .await
                    .map_err(|e| {
                        RegistrationError::InvalidClientMetadata(format!("jwks_uri: {e}"))
                    })?;
            }
        }
        Ok((md, validated.sector_host))
    }
}
