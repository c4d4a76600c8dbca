//! Register a client (RFC 7591 §3, OIDC DCR §3). Nothing is written anywhere: the registration
//! lives in the client_id.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::audit::{Audit, Operation};
use super::checks::{echoed_statement, provenance};
use super::{ClientInformation, Registrar, RegistrationError};
use crate::client_id::{self, ClientIdClaims};
use crate::config::{Management, RegistrationRequires, SignedRequests};
use crate::ratelimit::Decision;
use crate::resolve::VerifiedClient;
use crate::statement;
use crate::status_list::StatusClaim;

/// A registration request body as it arrived.
#[derive(Debug, Clone, Copy)]
pub enum RegistrationBody<'a> {
    /// The JSON object of RFC 7591 §3.1.
    Json(&'a Map<String, Value>),
    /// A signed request: a compact JWS whose claims are the request (signed_request.rs).
    Signed(&'a str),
}

impl RegistrationBody<'_> {
    pub(super) fn is_signed(self) -> bool {
        matches!(self, RegistrationBody::Signed(_))
    }
}

impl Registrar {
    /// `request` is the JSON object of the request body (RFC 7591 §3.1), `initial_access_token`
    /// the bearer token of its `Authorization` header (RFC 7591 §3).
    pub async fn register(
        &self,
        request: &Map<String, Value>,
        initial_access_token: Option<&str>,
    ) -> Result<ClientInformation, RegistrationError> {
        self.register_body(RegistrationBody::Json(request), initial_access_token)
            .await
    }

    /// Register from a request body in either form.
    pub async fn register_body(
        &self,
        body: RegistrationBody<'_>,
        initial_access_token: Option<&str>,
    ) -> Result<ClientInformation, RegistrationError> {
        Audit::record(Operation::Register, async |audit| {
            let keys = self.keys.snapshot();
            let now = self.clock.now()?;

            // 1. The initial access token and the software statement, each checked when
            //    presented, and required as `registration_requires` says (RFC 7591 §3, §3.1.1
            //    let the server decide).
            let token = match initial_access_token {
                Some(token) => Some(self.initial_access_token(&keys, token, now).await?),
                None => None,
            };
            if let Some(token) = &token {
                audit.token = Some(token.jti.clone());
                audit.token_label = token.label.clone();
            }
            let (request, verified): (Cow<'_, Map<String, Value>>, _) = match body {
                RegistrationBody::Json(request) => {
                    (Cow::Borrowed(request), self.rules.statement(request, now).await?)
                }
                RegistrationBody::Signed(jws) => {
                    let signed = self.signed_request(jws, now).await?;
                    (Cow::Owned(signed.request), Some(signed.statement))
                }
            };
            let request: &Map<String, Value> = &request;
            let requirement = self.config.requirement();
            match (requirement, token.is_some(), verified.is_some()) {
                (RegistrationRequires::Either, false, false) => {
                    return Err(RegistrationError::MissingInitialAccessToken(
                        "an initial access token or a software statement is required to register with this server",
                    ))
                }
                (r, false, _) if r.token() => {
                    return Err(RegistrationError::MissingInitialAccessToken(
                        "an initial access token is required to register with this server",
                    ))
                }
                (r, _, false) if r.statement() => {
                    return Err(RegistrationError::InvalidSoftwareStatement(
                        "a software statement is required to register with this server".into(),
                    ))
                }
                _ => {}
            }
            let statement = verified.as_deref();
            if let Some(statement) = statement {
                match (
                    self.rules.issuers().signed_requests(&statement.issuer),
                    body.is_signed(),
                ) {
                    (SignedRequests::Required, false) => {
                        return Err(RegistrationError::InvalidClientMetadata(
                            "this issuer's software registers with a signed request \
                             (Content-Type: application/jwt), not a JSON body"
                                .into(),
                        ))
                    }
                    (SignedRequests::Refused, true) => {
                        return Err(RegistrationError::InvalidClientMetadata(
                            "this issuer's software registers with a JSON body; signed \
                             requests are refused for it"
                                .into(),
                        ))
                    }
                    _ => {}
                }
                audit.issuer = Some(statement.issuer.clone());
                audit.software_id = statement
                    .metadata
                    .get("software_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if let Some(limiter) = &self.issuer_limit {
                    if let Decision::Limited(wait) = limiter.check(&statement.issuer) {
                        crate::metrics::METRICS
                            .rate_limited
                            .with_label_values(&["registration_per_issuer"])
                            .inc();
                        return Err(RegistrationError::RateLimited {
                            retry_after: crate::ratelimit::retry_after_secs(wait),
                        });
                    }
                }
            }

            // 2. The statement's claims take precedence over the body (RFC 7591 §2.3, §3.1.1),
            //    which must be well-formed on its own.
            self.rules.check_body(request)?;
            let mut effective = statement::merge(request, statement.map(|s| &s.metadata));
            if let Some(fixed) = token.as_ref().and_then(|t| t.policy.software_id.as_ref()) {
                // the token fixes the software_id; a request naming another is refused by the
                // token's policy below
                effective
                    .entry("software_id")
                    .or_insert_with(|| Value::String(fixed.clone()));
            }

            // 3. Types, defaults, issuer policy, validation, sector and keys.
            let (metadata, sector) = self
                .rules
                .check_metadata(&effective, statement.map(|s| s.issuer.as_str()))
                .await?;
            self.rules.check_profile(statement, &metadata, request)?;
            if let Some(token) = &token {
                token.policy.check(&metadata)?;
            }

            // 4. Software the operator withdrew gets no new client: the same check as at
            //    every use, made now so that the client learns at once.
            let provenance = statement.map(provenance);
            self.check_withdrawals(provenance.as_ref(), &metadata, now)
                .await?;

            // 5. Mint the client_id; the secret and the registration access token derive from it.
            let exp = self.expiry(
                now,
                statement.map(|s| s.exp),
                token
                    .as_ref()
                    .and_then(|t| t.policy.max_client_lifetime_secs),
            );
            if exp.is_some_and(|exp| exp <= now) {
                // Within the clock skew the statement still verified, but a client_id that is
                // dead on arrival helps nobody.
                return Err(RegistrationError::InvalidSoftwareStatement(
                    "the software statement has expired".into(),
                ));
            }
            // Last, once nothing else can refuse it: a use of a limited token.
            if let Some(token) = &token {
                self.take_token_use(&keys, token).await?;
            }
            // The client_id is a Referenced Token (draft-ietf-oauth-status-list-18 §6.2): an
            // index from this node's block, so nothing is written for it.
            let status = match &self.lists {
                Some(lists) => Some(StatusClaim {
                    status_list: lists.next_reference().await?,
                }),
                None => None,
            };
            let claims = ClientIdClaims {
                iss: self.endpoints.issuer.clone(),
                jti: client_id::new_jti()?,
                iat: now,
                exp,
                client_secret_kid: metadata
                    .needs_secret()
                    .then(|| keys.client_secret().active_kid().to_owned()),
                access_token_kid: (self.config.management != Management::None)
                    .then(|| keys.registration_access_token().active_kid().to_owned()),
                provenance,
                sector,
                status,
                metadata,
            };
            audit.client = Some(claims.jti.clone());
            let client_id = client_id::mint(&keys, &claims, self.config.client_id_max_length)?;
            let client = VerifiedClient {
                client_id: Arc::from(client_id),
                claims: Arc::new(claims),
                amendment: None,
            };

            // 6. Every registered field, the statement echoed unchanged (RFC 7591 §3.2.1).
            let echoed = statement
                .is_some()
                .then(|| echoed_statement(request))
                .flatten();
            self.client_information(&keys, client, echoed)
        })
        .await
    }

    /// Refuse a registration covered by an operator withdrawal (docs/design.md, "Operator
    /// withdrawals"). The withdrawals are held in memory; when the store cannot be read to
    /// refresh them, the set last read is used and registration goes on (it needs no store,
    /// `registration-writes-nothing`); the client meets the same check at every use.
    async fn check_withdrawals(
        &self,
        provenance: Option<&crate::client_id::Provenance>,
        metadata: &crate::metadata::ClientMetadata,
        now: u64,
    ) -> Result<(), RegistrationError> {
        let (Some(status), Some(registration)) = (
            &self.status,
            crate::resolve::registration(provenance, metadata, now),
        ) else {
            return Ok(());
        };
        let withdrawals = match status.withdrawal_set().await {
            Ok(withdrawals) => withdrawals,
            Err(crate::status::StoreError::Unavailable(e)) => {
                tracing::warn!(error = %e, "withdrawals checked at registration as last read: the status store cannot be read");
                match status.last_withdrawal_set() {
                    Some(withdrawals) => withdrawals,
                    None => return Ok(()),
                }
            }
            // a withdrawal record that does not verify: the server's fault, said loudly
            Err(crate::status::StoreError::Corrupt(e)) => {
                tracing::error!(detail = %e, "a withdrawal record failed verification; registration refused");
                return Err(RegistrationError::Internal(e));
            }
            Err(e) => return Err(e.into()),
        };
        match withdrawals.covering(&registration) {
            Some(withdrawal) => Err(RegistrationError::UnapprovedSoftwareStatement(format!(
                "the software was withdrawn by this server's operator ({})",
                withdrawal.status.as_str()
            ))),
            None => Ok(()),
        }
    }
}
