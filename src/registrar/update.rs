//! Update a client (RFC 7592 §2.2): the body replaces the metadata as a whole; the client_id
//! stays, the registration access token rotates. Values fixed by the software statement keep
//! their precedence unless a statement is presented again.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::audit::{Audit, Operation};
use super::checks::{echoed_statement, provenance};
use super::{ClientInformation, Registrar, RegistrationBody, RegistrationError};
use crate::client_id::{self, ClientIdClaims};
use crate::config::{SignedRequests, StatementProfile};
use crate::jose;
use crate::keys::RegistrarKeys;
use crate::metadata::Form;
use crate::resolve::{Remember, VerifiedClient};
use crate::statement;
use crate::status::{Amendment, ClientStatus, UpdateRequest, WriteOutcome};

/// Members an update must not carry (RFC 7592 §2.2).
const FORBIDDEN_IN_UPDATE: [&str; 4] = [
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

impl Registrar {
    pub async fn update(
        &self,
        client_id: &str,
        token: Option<&str>,
        request: &Map<String, Value>,
    ) -> Result<ClientInformation, RegistrationError> {
        self.update_body(client_id, token, RegistrationBody::Json(request))
            .await
    }

    /// Update from a request body in either form (a signed one as at registration).
    pub async fn update_body(
        &self,
        client_id: &str,
        token: Option<&str>,
        body: RegistrationBody<'_>,
    ) -> Result<ClientInformation, RegistrationError> {
        Audit::record(Operation::Update, async |audit| {
            let keys = self.keys.snapshot();
            let now = self.clock.now()?;
            let (request, signed_statement): (Cow<'_, Map<String, Value>>, _) = match body {
                RegistrationBody::Json(request) => (Cow::Borrowed(request), None),
                RegistrationBody::Signed(jws) => {
                    let signed = self.signed_request(jws, now).await?;
                    (Cow::Owned(signed.request), Some(signed.statement))
                }
            };
            let request: &Map<String, Value> = &request;
            let current = match self.authenticate(&keys, client_id, token).await {
                Ok(current) => current,
                Err(RegistrationError::InvalidToken) => {
                    // the same update sent again because its answer was lost: answer it again
                    let retried = self
                        .retried_update(&keys, client_id, token, request, now)
                        .await?;
                    return retried.ok_or(RegistrationError::InvalidToken);
                }
                Err(e) => return Err(e),
            };
            audit.describe(&current);
            let status = self.store()?;

            // 1. What the request must and must not carry (RFC 7592 §2.2).
            if let Some(member) = FORBIDDEN_IN_UPDATE
                .iter()
                .find(|m| request.contains_key(**m))
            {
                return Err(RegistrationError::InvalidClientMetadata(format!(
                    "{member} must not be sent in an update (RFC 7592 section 2.2)"
                )));
            }
            match request.get("client_id") {
                Some(Value::String(id)) if id == client_id => {}
                Some(_) => {
                    return Err(RegistrationError::InvalidClientMetadata(
                        "client_id does not match the client being updated".into(),
                    ))
                }
                None => {
                    return Err(RegistrationError::InvalidClientMetadata(
                        "an update must carry the client's client_id (RFC 7592 section 2.2)"
                            .into(),
                    ))
                }
            }
            if let Some(presented) = request.get("client_secret").filter(|v| !v.is_null()) {
                // The client never chooses its secret; it may only repeat the current one.
                let current_secret = self.client_secret(&keys, &current)?;
                let matches = match (presented, &current_secret) {
                    (Value::String(p), Some(s)) => s.matches(p),
                    _ => false,
                };
                if !matches {
                    return Err(RegistrationError::InvalidClientMetadata(
                        "client_secret is not the client's current secret".into(),
                    ));
                }
            }

            // 2. The statement: presented again (from the same issuer), or the values it fixed
            //    before keep their precedence. The body must be well-formed on its own.
            let statement = match signed_statement {
                Some(statement) => Some(statement),
                None => self.rules.statement(request, now).await?,
            };
            // an issuer that requires signed requests requires them for updates too
            let issuer = statement
                .as_deref()
                .map(|s| s.issuer.as_str())
                .or_else(|| current.provenance().map(|p| p.iss.as_str()));
            if let Some(issuer) = issuer {
                if self.rules.issuers().signed_requests(issuer) == SignedRequests::Required
                    && !body.is_signed()
                {
                    return Err(RegistrationError::InvalidClientMetadata(
                        "this issuer's software updates with a signed request \
                         (Content-Type: application/jwt), not a JSON body"
                            .into(),
                    ));
                }
            }
            self.rules.check_body(request)?;
            let (effective, provenance) = match statement.as_deref() {
                Some(statement) => {
                    if let Some(before) = current.provenance() {
                        if before.iss != statement.issuer {
                            return Err(RegistrationError::UnapprovedSoftwareStatement(
                                "the statement comes from another issuer than the client's".into(),
                            ));
                        }
                    }
                    (
                        statement::merge(request, Some(&statement.metadata)),
                        Some(provenance(statement)),
                    )
                }
                None => {
                    // OB DCR 3.3: an update presents the SSA again, and its redirect URIs and
                    // roles are known only from it
                    let profile = current
                        .provenance()
                        .map(|p| self.rules.issuers().profile(&p.iss));
                    if profile == Some(StatementProfile::OpenbankingUk) {
                        return Err(RegistrationError::InvalidSoftwareStatement(
                            "this issuer's software presents its software statement again to update".into(),
                        ));
                    }
                    let mut effective = statement::merge(request, None);
                    let fixed = current
                        .provenance()
                        .map(|p| p.fixed.as_slice())
                        .unwrap_or_default();
                    let registered = current.metadata().to_json(Form::Full);
                    for member in fixed {
                        // A fixed member stays fixed whatever its value, absence included: a
                        // statement that set it to null fixed it as absent.
                        let registered = registered.get(member);
                        let sent = effective.get(member).filter(|v| !v.is_null());
                        if sent.is_some_and(|sent| Some(sent) != registered) {
                            return Err(RegistrationError::InvalidClientMetadata(format!(
                                "{member} is fixed by the software statement; present a new statement to change it"
                            )));
                        }
                        match registered {
                            Some(value) => effective.insert(member.clone(), value.clone()),
                            None => effective.remove(member),
                        };
                    }
                    (effective, current.provenance().cloned())
                }
            };

            // 3. The whole validation of a registration (RFC 7592 §2.2).
            let (metadata, sector) = self
                .rules
                .check_metadata(&effective, provenance.as_ref().map(|p| p.iss.as_str()))
                .await?;
            self.rules
                .check_profile(statement.as_deref(), &metadata, request)?;

            // 4. Record the amendment. The generation check makes concurrent updates safe, and
            //    a revoked client can never be amended back to life.
            let client_secret_kid = metadata.needs_secret().then(|| {
                current
                    .client_secret_kid()
                    .unwrap_or(keys.client_secret().active_kid())
                    .to_owned()
            });
            // The stored metadata is bounded like a registration's: it must fit a client_id.
            let as_registered = ClientIdClaims {
                metadata: metadata.clone(),
                client_secret_kid: client_secret_kid.clone(),
                sector: sector.clone(),
                provenance: provenance.clone(),
                ..current.claims.as_ref().clone()
            };
            client_id::check_length(&keys, &as_registered, self.config.client_id_max_length)?;
            let generation = current.generation().checked_add(1).ok_or_else(|| {
                RegistrationError::Internal("the token generation cannot grow further".into())
            })?;
            let amendment = Arc::new(Amendment {
                generation,
                metadata,
                sector,
                client_secret_kid,
                provenance,
                request: token.map(|token| UpdateRequest {
                    at: now,
                    digest: request_digest(token, request),
                }),
            });
            let outcome = status
                .write(
                    &keys,
                    current.jti(),
                    current.generation(),
                    &ClientStatus::Amended(amendment.clone()),
                    current.claims.exp,
                    // verifiers with only the list learn the metadata changed
                    self.list_entry(&current, crate::status_list::AMENDED),
                )
                .await?;
            if outcome != WriteOutcome::Written {
                return Err(RegistrationError::InvalidToken);
            }
            let updated = VerifiedClient {
                amendment: Some(amendment),
                ..current.as_ref().clone()
            };
            // a statement presented with the update is echoed, as at registration
            let echoed = statement.is_some().then(|| echoed_statement(request)).flatten();
            self.client_information(&keys, updated, echoed)
        })
        .await
    }

    /// An update whose answer was lost (a timeout after the store had recorded it) is sent
    /// again with the token it presented, which the update rotated. If that token and body are
    /// exactly what the client's latest amendment recorded, within [`UPDATE_RETRY_SECS`], the
    /// answer is what the first attempt would have returned: the outcome of an update is
    /// always knowable. Anything else stays a 401.
    async fn retried_update(
        &self,
        keys: &RegistrarKeys,
        client_id: &str,
        token: Option<&str>,
        request: &Map<String, Value>,
        now: u64,
    ) -> Result<Option<ClientInformation>, RegistrationError> {
        let Some(token) = token else {
            return Ok(None);
        };
        let client = match self
            .resolver
            .resolve_with(keys.verification(), client_id, Remember::No)
            .await
        {
            Ok(client) => client,
            Err(crate::resolve::ResolveError::InvalidClient(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(recorded) = client.amendment.as_ref().and_then(|a| a.request.as_ref()) else {
            return Ok(None);
        };
        let in_time = now <= recorded.at.saturating_add(UPDATE_RETRY_SECS);
        let same = jose::constant_time_eq(
            recorded.digest.as_bytes(),
            request_digest(token, request).as_bytes(),
        );
        if !(in_time && same) {
            return Ok(None);
        }
        let echoed = echoed_statement(request);
        self.client_information(keys, client.as_ref().clone(), echoed)
            .map(Some)
    }
}

/// How long after an update the same request may be sent again for its answer: long enough for
/// a client to retry after a timeout, short, since the answer carries the new token.
pub const UPDATE_RETRY_SECS: u64 = 60;

/// What identifies an update request: its token and its body, as canonical JSON (members
/// sorted at every level, so that the same body sent again gives the same digest however a
/// client orders its members).
fn request_digest(token: &str, request: &Map<String, Value>) -> String {
    let mut input = Vec::with_capacity(token.len() + 1024);
    input.extend_from_slice(token.as_bytes());
    input.push(0);
    canonical_json(&Value::Object(request.clone()), &mut input);
    jose::base64url(&jose::sha256(&input))
}

fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (name, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(&Value::String(name.clone()), out);
                out.push(b':');
                canonical_json(member, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_request_digest_ignores_member_order_only() {
        let a = json!({"client_id": "x", "contacts": ["a", "b"], "jwks": {"keys": [{"kty": "EC", "crv": "P-256"}]}});
        let b = json!({"jwks": {"keys": [{"crv": "P-256", "kty": "EC"}]}, "contacts": ["a", "b"], "client_id": "x"});
        let c = json!({"client_id": "x", "contacts": ["b", "a"], "jwks": {"keys": [{"kty": "EC", "crv": "P-256"}]}});
        let digest = |v: &Value| request_digest("token", v.as_object().unwrap());
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&c));
        assert_ne!(digest(&a), request_digest("other", a.as_object().unwrap()));
    }
}
