//! Signed registration requests: the request body as a JWS (`Content-Type: application/jwt` or
//! `application/jose`), as UK Open Banking DCR 3.3, Australia's CDR and other FAPI ecosystems
//! send it. RFC 7591 §3 defines only JSON bodies; these profiles sign the same members, with the
//! software statement among them, plus `iss`, `aud`, `iat`, `exp` and `jti`.
//!
//! The request is verified with the client's keys as its software statement fixes them (the
//! statement's `jwks`, or its `software_jwks_endpoint` / `jwks_uri` through the guarded
//! fetcher), never with a key the request names itself: the statement is verified first, from
//! the unverified payload, and only its keys can make the request's signature count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{Registrar, RegistrationError};
use crate::clock::SharedClock;
use crate::fetch::DocumentKind;
use crate::jose::CompactJws;
use crate::keys::VerifierSet;
use crate::statement::VerifiedStatement;

/// The JWT claims of a signed request; the rest of its claims are the registration request.
const REQUEST_JWT_CLAIMS: [&str; 6] = ["iss", "aud", "iat", "exp", "nbf", "jti"];

/// How many unexpired request `jti`s a node remembers; past that, new signed requests are
/// refused rather than old ones forgotten.
pub(super) const MAX_SEEN_REQUESTS: u64 = 100_000;

/// The memory of signed requests seen, by statement issuer and `jti`, each until its `exp` plus
/// the clock skew (the value is the `exp`).
pub(super) fn seen_requests(clock: SharedClock, skew: u64) -> moka::sync::Cache<String, u64> {
    moka::sync::Cache::builder()
        .max_capacity(MAX_SEEN_REQUESTS.saturating_mul(2))
        .expire_after(UntilRequestExpiry { clock, skew })
        .build()
}

struct UntilRequestExpiry {
    clock: SharedClock,
    skew: u64,
}

impl moka::Expiry<String, u64> for UntilRequestExpiry {
    fn expire_after_create(&self, _: &String, exp: &u64, _: Instant) -> Option<Duration> {
        let remaining = match self.clock.now() {
            Ok(now) => exp.saturating_sub(now),
            // a clock that fails keeps the entry for a day
            Err(_) => 86_400,
        };
        Some(Duration::from_secs(remaining.saturating_add(self.skew)))
    }
}

/// A signed request that verified: the registration request it carries, and its statement.
pub(super) struct SignedRequest {
    pub(super) request: Map<String, Value>,
    pub(super) statement: Arc<VerifiedStatement>,
}

fn invalid(why: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidClientMetadata(format!(
        "the signed registration request {}",
        why.into()
    ))
}

impl Registrar {
    /// Verify a signed registration request (a compact JWS): its statement first, then its
    /// signature with the statement's keys, then its claims. Failures of the request itself
    /// are `invalid_client_metadata`; of its statement, as at any registration
    /// (`invalid_software_statement`, `unapproved_software_statement`).
    pub(super) async fn signed_request(
        &self,
        jws: &str,
        now: u64,
    ) -> Result<SignedRequest, RegistrationError> {
        // RFC 7515 §7.1; `none`, MAC algorithms and `crit` are refused here
        let parsed = CompactJws::parse(jws.trim())
            .map_err(|e| invalid(format!("is not a usable JWS: {e}")))?;
        let payload = parsed
            .unverified_payload()
            .map_err(|e| invalid(format!("is not a usable JWS: {e}")))?;
        let mut claims: Map<String, Value> = match serde_json::from_slice(&payload) {
            Ok(Value::Object(claims)) => claims,
            _ => return Err(invalid("payload is not a JSON object")),
        };
        let statement = self.rules.statement(&claims, now).await?.ok_or_else(|| {
            RegistrationError::InvalidSoftwareStatement(
                "a signed registration request must carry a software statement: its keys verify the request".into(),
            )
        })?;

        // The signature, with a key of the statement's set chosen by kid and alg.
        let alg = parsed.alg().unwrap_or_default().to_owned();
        if let Some(allowed) = self.rules.issuers().allowed_signing_algs(&statement.issuer) {
            if !allowed.contains(&alg) {
                return Err(invalid(format!(
                    "is signed with {alg}, which this issuer's software may not use"
                )));
            }
        }
        let keys = self.statement_keys(&statement).await?;
        let verifier = keys.select(parsed.kid(), &alg).ok_or_else(|| {
            invalid("names no key of its software statement (kid and alg must match one)")
        })?;
        parsed
            .verify(verifier)
            .map_err(|_| invalid("signature does not verify with its software statement's key"))?;

        self.check_request_claims(&claims, &statement, now)?;
        for name in REQUEST_JWT_CLAIMS {
            claims.remove(name);
        }
        Ok(SignedRequest {
            request: claims,
            statement,
        })
    }

    /// The client's keys as the statement fixes them: inline `jwks`, else
    /// `software_jwks_endpoint` (UK Open Banking) or `jwks_uri`, fetched through the guard.
    async fn statement_keys(
        &self,
        statement: &VerifiedStatement,
    ) -> Result<VerifierSet, RegistrationError> {
        let claims = &statement.metadata;
        let unusable = |e: String| {
            RegistrationError::InvalidSoftwareStatement(format!(
                "the keys of the software statement cannot verify the signed request: {e}"
            ))
        };
        let jwks = match (
            claims.get("jwks"),
            claims
                .get("software_jwks_endpoint")
                .or_else(|| claims.get("jwks_uri"))
                .and_then(Value::as_str),
        ) {
            (Some(jwks), _) => Arc::new(jwks.clone()),
            (None, Some(uri)) => self
                .rules
                .fetcher()
                .jwks(uri, DocumentKind::ClientJwks)
                .await
                .map_err(|e| unusable(e.to_string()))?,
            (None, None) => {
                return Err(RegistrationError::InvalidSoftwareStatement(
                    "a signed registration request is verified with the keys its software \
                     statement names (jwks, software_jwks_endpoint or jwks_uri), and it names none"
                        .into(),
                ))
            }
        };
        VerifierSet::from_jwks(&jwks).map_err(|e| unusable(e.to_string()))
    }

    /// `aud`, `iat`, `exp`, `nbf`, `jti` and `iss` of a signed request whose signature verified.
    fn check_request_claims(
        &self,
        claims: &Map<String, Value>,
        statement: &VerifiedStatement,
        now: u64,
    ) -> Result<(), RegistrationError> {
        let config = &self.config;
        let skew = config.clock_skew_secs;
        let audience_ok = |aud: &str| {
            aud == self.endpoints.issuer || config.signed_request_audiences.iter().any(|a| a == aud)
        };
        let aud_ok = match claims.get("aud") {
            Some(Value::String(aud)) => audience_ok(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(audience_ok),
            _ => false,
        };
        if !aud_ok {
            return Err(invalid("must name this registrar in aud"));
        }
        let date = |name: &str| claims.get(name).and_then(Value::as_u64);
        let iat = date("iat").ok_or_else(|| invalid("needs iat, a NumericDate"))?;
        let exp = date("exp").ok_or_else(|| invalid("needs exp, a NumericDate"))?;
        if iat > now.saturating_add(skew) {
            return Err(invalid("was issued in the future (iat)"));
        }
        if exp.saturating_add(skew) <= now {
            return Err(invalid("has expired (exp)"));
        }
        if exp <= iat || exp - iat > config.signed_request_max_lifetime_secs {
            return Err(invalid(format!(
                "must expire after iat and within {} seconds of it",
                config.signed_request_max_lifetime_secs
            )));
        }
        if date("nbf").is_some_and(|nbf| nbf > now.saturating_add(skew)) {
            return Err(invalid("is not valid yet (nbf)"));
        }
        if claims.get("nbf").is_some_and(|n| !n.is_u64()) {
            return Err(invalid("has an nbf that is not a NumericDate"));
        }
        // UK Open Banking (DCR 3.3): iss is the software_id of the statement, and with that
        // profile it must be there
        if claims.get("iss").is_none() && statement.openbanking.is_some() {
            return Err(invalid(
                "needs iss, its software statement's software_id (UK Open Banking)",
            ));
        }
        if let Some(iss) = claims.get("iss") {
            let software_id = statement
                .metadata
                .get("software_id")
                .and_then(Value::as_str);
            if iss.as_str().is_none() || iss.as_str() != software_id {
                return Err(invalid(
                    "has an iss that is not its software statement's software_id",
                ));
            }
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|jti| !jti.is_empty())
            .ok_or_else(|| invalid("needs a non-empty jti"))?;
        // single use within its lifetime, per node
        if self.seen_requests.entry_count() >= MAX_SEEN_REQUESTS {
            return Err(RegistrationError::InvalidClientMetadata(
                "too many signed registration requests in their lifetime; try again later".into(),
            ));
        }
        let key = format!("{}|{jti}", statement.issuer);
        if !self.seen_requests.entry(key).or_insert(exp).is_fresh() {
            return Err(invalid("was seen before (its jti is used once)"));
        }
        Ok(())
    }
}
