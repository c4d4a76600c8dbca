//! The steps the flows share: the software statement, the metadata checks with their fetches,
//! the registration access token check of the configuration endpoint, and the client
//! information response.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{ClientInformation, Registrar, RegistrationError};
use crate::client_id::{self, Provenance};
use crate::config::Management;
use crate::keys::RegistrarKeys;
use crate::metadata;
use crate::resolve::{Remember, VerifiedClient};
use crate::secret::Secret;
use crate::statement::VerifiedStatement;
use crate::status::StatusService;

impl Registrar {
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
pub(crate) fn provenance(statement: &VerifiedStatement) -> Provenance {
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
        org_id: statement.openbanking.as_ref().map(|ob| ob.org_id.clone()),
        org_name: statement
            .openbanking
            .as_ref()
            .and_then(|ob| ob.org_name.clone()),
        software_roles: statement
            .openbanking
            .as_ref()
            .map(|ob| ob.software_roles.clone())
            .unwrap_or_default(),
    }
}

/// The statement text of a request, to echo in the response (RFC 7591 §3.2.1).
pub(super) fn echoed_statement(request: &Map<String, Value>) -> Option<String> {
    request
        .get("software_statement")
        .and_then(Value::as_str)
        .map(str::to_owned)
}
