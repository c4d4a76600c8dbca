//! The steps the flows share: the software statement, the metadata checks with their fetches,
//! the registration access token check of the configuration endpoint, and the client
//! information response.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{ClientInformation, Registrar, RegistrationError};
use crate::client_id::{self, Provenance};
use crate::config::Management;
use crate::fetch::{self, DocumentKind};
use crate::keys::RegistrarKeys;
use crate::metadata::{self, ClientMetadata};
use crate::resolve::{Remember, VerifiedClient};
use crate::secret::Secret;
use crate::statement::VerifiedStatement;
use crate::status::StatusService;
use crate::status_list::client::ListError;
use crate::status_list::{self, StatusReference};

impl Registrar {
    /// The `software_statement` member, verified (RFC 7591 §2.3, §3.1.1): absent, or a string
    /// holding a statement from a trusted issuer.
    pub(super) async fn statement(
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
        let config = &self.config;
        let statement = self
            .issuers
            .verify(
                text,
                now,
                config.clock_skew_secs,
                config.max_statement_bytes,
            )
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
    pub(super) fn check_body(&self, request: &Map<String, Value>) -> Result<(), RegistrationError> {
        let body = crate::statement::merge(request, None);
        ClientMetadata::parse(&body, self.config.policy.default_subject_type)?;
        Ok(())
    }

    /// Parse, apply issuer policy and validate (RFC 7591 §2, OIDC DCR §2), then fetch and check
    /// what the metadata names (sector_identifier_uri, jwks_uri): the checks registration and
    /// update share. Returns the metadata and the sector of a pairwise client.
    pub(super) async fn check_metadata(
        &self,
        effective: &Map<String, Value>,
        issuer: Option<&str>,
    ) -> Result<(ClientMetadata, Option<String>), RegistrationError> {
        let policy = &self.config.policy;
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
            self.config.allow_native_https_redirects,
            &self.config.allowed_private_use_schemes,
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
        if let (Some(jwks_uri), true) = (&md.jwks_uri, self.config.check_client_jwks_uri) {
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

    /// The configuration endpoint's check (RFC 7592 §2): a valid client_id, not deleted, and
    /// the registration access token of its current generation. Every failure is the same 401
    /// (OIDC DCR §4.4).
    pub(super) async fn authenticate(
        &self,
        keys: &RegistrarKeys,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<Arc<VerifiedClient>, RegistrationError> {
        let token = token.ok_or(RegistrationError::MissingToken)?;
        // cached only once the token matched: an unauthenticated caller fills no cache
        let client = self
            .resolver
            .resolve_with(keys.verification(), client_id, Remember::No)
            .await?;
        let expected = client
            .claims
            .access_token_kid
            .as_deref()
            .and_then(|kid| {
                client_id::registration_access_token(
                    keys.registration_access_token(),
                    kid,
                    client.jti(),
                    client.generation(),
                )
            })
            .ok_or(RegistrationError::InvalidToken)?;
        if !expected.matches(token) {
            return Err(RegistrationError::InvalidToken);
        }
        self.resolver.remember(&client);
        Ok(client)
    }

    /// The status store, which update and delete write to.
    pub(super) fn store(&self) -> Result<&Arc<StatusService>, RegistrationError> {
        self.status.as_ref().ok_or_else(|| {
            RegistrationError::Internal("update and delete need management = \"full\"".into())
        })
    }

    /// The client's current secret, when it has one.
    pub(super) fn client_secret(
        &self,
        keys: &RegistrarKeys,
        client: &VerifiedClient,
    ) -> Result<Option<Secret>, RegistrationError> {
        let Some(kid) = client.client_secret_kid() else {
            return Ok(None);
        };
        match client_id::client_secret(keys.client_secret(), kid, client.jti()) {
            Some(secret) => Ok(Some(secret)),
            None => {
                // The key this client's secret derives from was removed from the key set: the
                // client can no longer authenticate, so it is treated as invalid.
                tracing::warn!(kid, "client_secret key no longer configured");
                Err(RegistrationError::InvalidToken)
            }
        }
    }

    /// The client information response (RFC 7591 §3.2.1, RFC 7592 §3), with `statement` echoed
    /// when one was presented in this request.
    pub(super) fn client_information(
        &self,
        keys: &RegistrarKeys,
        client: VerifiedClient,
        statement: Option<String>,
    ) -> Result<ClientInformation, RegistrationError> {
        let client_secret = self.client_secret(keys, &client)?;
        let management = match (&client.claims.access_token_kid, self.config.management) {
            (_, Management::None) | (None, _) => None,
            (Some(kid), _) => {
                let token = client_id::registration_access_token(
                    keys.registration_access_token(),
                    kid,
                    client.jti(),
                    client.generation(),
                )
                .ok_or_else(|| {
                    RegistrationError::Internal(
                        "the registration access token key is no longer configured".into(),
                    )
                })?;
                let uri = format!("{}/{}", self.endpoints.registration, client.client_id);
                Some((token, uri))
            }
        };
        Ok(ClientInformation {
            client,
            client_secret,
            management,
            software_statement: statement,
        })
    }

    /// `exp` of a new client_id: the earliest of the statement's `exp` and the configured
    /// maximum lifetime (docs/design.md, "The client_id").
    /// The `exp` of a new client_id: the earliest of the configured bounds and the statement's
    /// own `exp`. A client registered without a statement (`statement` is `None`) also gets
    /// `max_open_client_lifetime_secs`; `extra_bound` is one more lifetime in seconds (an
    /// initial access token's).
    pub(super) fn expiry(
        &self,
        now: u64,
        statement: Option<Option<u64>>,
        extra_bound: Option<u64>,
    ) -> Option<u64> {
        let open_bound = statement
            .is_none()
            .then_some(self.config.max_open_client_lifetime_secs);
        let statement_exp = statement.flatten();
        let bound = |secs: u64| (secs > 0).then(|| now.saturating_add(secs));
        [
            bound(self.config.max_client_lifetime_secs),
            open_bound.and_then(bound),
            extra_bound.and_then(bound),
            statement_exp,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// The provenance a client_id records: which statement, and which members it fixed.
pub(super) fn provenance(statement: &VerifiedStatement) -> Provenance {
    Provenance {
        iss: statement.issuer.clone(),
        sha256: statement.jti.is_none().then(|| statement.digest.clone()),
        jti: statement.jti.clone(),
        fixed: statement
            .metadata
            .keys()
            .filter(|name| metadata::is_metadata_member(name))
            .cloned()
            .collect(),
        status: statement.status.clone(),
    }
}

/// The statement text of a request, to echo in the response (RFC 7591 §3.2.1).
pub(super) fn echoed_statement(request: &Map<String, Value>) -> Option<String> {
    request
        .get("software_statement")
        .and_then(Value::as_str)
        .map(str::to_owned)
}
