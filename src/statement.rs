//! Software statements (RFC 7591 §2.3, §3.1.1): verification against the configured
//! issuers' keys only, time checks with a small clock skew, issuer policy, and the merge of the
//! statement's claims over the request body.

pub mod openbanking;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{StatementProfile, TrustedIssuer};
use crate::fetch::{Fetcher, IssuerJwksSource};
use crate::jose::{self, CompactJws};
use crate::keys::{KeyError, VerifierSet};
use crate::metadata::{self, quoted, ClientMetadata};
use crate::status_list::StatusReference;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// Malformed, wrongly signed, expired, not yet valid: `invalid_software_statement`.
    #[error("{0}")]
    Invalid(String),
    /// Verifies (or names an issuer), but this server does not accept it:
    /// `unapproved_software_statement`.
    #[error("{0}")]
    Unapproved(String),
}

fn invalid(message: impl Into<String>) -> StatementError {
    StatementError::Invalid(message.into())
}

/// JWT claims that describe the statement itself, not the client (RFC 7519 §4.1; `status`,
/// draft-ietf-oauth-status-list-18 §6.2; conformance: statement-overrides-body).
const JWT_CLAIMS: [&str; 8] = ["iss", "sub", "aud", "iat", "exp", "nbf", "jti", "status"];

/// A statement whose signature, issuer and times checked out.
#[derive(Debug, Clone)]
pub struct VerifiedStatement {
    pub issuer: String,
    /// The statement's claims that are client metadata (JWT claims removed).
    pub metadata: Map<String, Value>,
    pub jti: Option<String>,
    /// base64url SHA-256 of the statement, the provenance when it has no `jti`.
    pub digest: String,
    pub exp: Option<u64>,
    /// The statement's entry in its issuer's status list (draft-ietf-oauth-status-list-18
    /// §6.2), under one of the issuer's `status_list_uris`.
    pub status: Option<StatusReference>,
    /// An `openbanking-uk` issuer's SSA: its organisation, roles and redirect URIs.
    pub openbanking: Option<openbanking::OpenBankingClaims>,
    nbf: Option<u64>,
    iat: Option<u64>,
}

struct Issuer {
    config: TrustedIssuer,
    keys: IssuerKeySource,
}

impl Issuer {
    /// Whether `uri` is under one of the issuer's `status_list_uris`: equal to one, or below
    /// one that ends with `/`.
    fn allows_status_list(&self, uri: &str) -> bool {
        // only URIs written the way they are fetched: `a/../b` would match a prefix as text
        // and reach another path
        if url::Url::parse(uri).map_or(true, |parsed| parsed.as_str() != uri) {
            return false;
        }
        self.config.status_list_uris.iter().any(|allowed| {
            uri == allowed || (allowed.ends_with('/') && uri.starts_with(allowed.as_str()))
        })
    }
}

/// Where an issuer's keys come from: a file read at start-up, or its jwks_uri.
enum IssuerKeySource {
    File(Arc<VerifierSet>),
    Remote(IssuerJwksSource),
}

/// An issuer's current keys, from either source.
pub enum IssuerVerifiers {
    File(Arc<VerifierSet>),
    Fetched(Arc<crate::fetch::IssuerKeys>),
}

impl IssuerVerifiers {
    pub fn set(&self) -> &VerifierSet {
        match self {
            IssuerVerifiers::File(set) => set,
            IssuerVerifiers::Fetched(keys) => keys.verifiers(),
        }
    }
}

/// The issuers this registrar trusts, with their keys, and a bounded cache of verified
/// statements: in a federation every installation of an app presents the same statement, and
/// re-verifying its signature each time is the largest cost of a registration.
pub struct TrustedIssuers {
    issuers: HashMap<String, Issuer>,
    verified: Option<moka::sync::Cache<[u8; 32], Arc<VerifiedStatement>>>,
    /// A doorkeeper in front of the cache: fingerprints of statements verified once. A statement
    /// enters the cache the second time it is verified, so that statements presented only once
    /// (each installation with a statement of its own) do not churn the cache, which cost about
    /// a tenth of such a registration (docs/benchmarks.md). Slots are overwritten freely: a lost
    /// fingerprint costs one more verification, never a wrong answer.
    seen: Box<[AtomicU64]>,
}

impl std::fmt::Debug for TrustedIssuers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedIssuers")
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// How long a verified statement is remembered at most; its `exp` may cut this shorter.
const STATEMENT_CACHE_TTL: Duration = Duration::from_secs(600);

impl TrustedIssuers {
    pub fn load(
        configs: &[TrustedIssuer],
        cache_entries: u64,
        fetcher: &Fetcher,
    ) -> Result<Self, KeyError> {
        let mut issuers = HashMap::new();
        for config in configs {
            let keys = match (&config.jwks_file, &config.jwks_uri) {
                (Some(file), _) => IssuerKeySource::File(Arc::new(load_jwks(file)?)),
                (None, Some(uri)) => IssuerKeySource::Remote(
                    IssuerJwksSource::new(fetcher.clone(), uri).map_err(|e| KeyError::Invalid {
                        path: uri.clone(),
                        message: e.to_string(),
                    })?,
                ),
                (None, None) => {
                    return Err(KeyError::Invalid {
                        path: config.issuer.clone(),
                        message: "no jwks_file or jwks_uri".into(),
                    })
                }
            };
            issuers.insert(
                config.issuer.clone(),
                Issuer {
                    config: config.clone(),
                    keys,
                },
            );
        }
        let verified = (cache_entries > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(cache_entries)
                .time_to_live(STATEMENT_CACHE_TTL)
                .build()
        });
        // four slots per cache entry, a power of two: 512 KiB for the default 10,000 entries
        let slots = match cache_entries {
            0 => 0,
            n => n
                .saturating_mul(4)
                .clamp(1 << 10, 1 << 20)
                .next_power_of_two() as usize,
        };
        Ok(TrustedIssuers {
            issuers,
            verified,
            seen: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Whether a statement with this digest was verified before (and is not cached): marks it
    /// as seen and answers whether it already was.
    fn seen_before(&self, digest: &[u8; 32]) -> bool {
        if self.seen.is_empty() {
            return false;
        }
        let word = |i: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest[i..i + 8]);
            u64::from_le_bytes(bytes)
        };
        let slot = (word(0) as usize) & (self.seen.len() - 1);
        // never 0, the value of an empty slot
        let fingerprint = word(8) | 1;
        self.seen[slot].swap(fingerprint, Ordering::Relaxed) == fingerprint
    }

    /// Verify a statement (RFC 7591 §2.3; the checks are listed in docs/conformance.md,
    /// "Software statements"). `now` is in seconds since the epoch.
    pub async fn verify(
        &self,
        statement: &str,
        now: u64,
        skew: u64,
        max_bytes: usize,
    ) -> Result<Arc<VerifiedStatement>, StatementError> {
        if statement.len() > max_bytes {
            return Err(invalid(format!(
                "the software statement is larger than {max_bytes} bytes"
            )));
        }
        let digest = jose::sha256(statement.as_bytes());
        let hit = self.verified.as_ref().and_then(|c| c.get(&digest));
        if self.verified.is_some() {
            crate::metrics::cache("statement", hit.is_some());
        }
        if let Some(hit) = hit {
            // The signature was checked; the times must still hold now.
            check_times(&hit, now, skew)?;
            return Ok(hit);
        }
        let jws = CompactJws::parse(statement)
            .map_err(|e| invalid(format!("the software statement is not acceptable: {e}")))?;
        let claims: Map<String, Value> = jws
            .unverified_payload()
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| invalid("the software statement's payload is not a JSON object"))?;
        // Step 4: iss present. Step 5: a trusted issuer. Only then are its keys tried.
        let issuer = match claims.get("iss") {
            Some(Value::String(iss)) if !iss.is_empty() => iss.clone(),
            _ => return Err(invalid("the software statement has no iss claim")),
        };
        let trusted = self.issuers.get(&issuer).ok_or_else(|| {
            StatementError::Unapproved(format!(
                "software statements from {} are not accepted here",
                quoted(&issuer)
            ))
        })?;
        // Step 6: the kid picks the key, the key fixes the algorithm.
        let alg = jws.alg().unwrap_or_default();
        let no_key = || {
            invalid(format!(
                "no key of issuer {} matches the statement's kid {} and alg {}",
                quoted(&issuer),
                quoted(jws.kid().unwrap_or("(none)")),
                quoted(alg)
            ))
        };
        let verified_signature = match &trusted.keys {
            IssuerKeySource::File(keys) => {
                let verifier = keys.select(jws.kid(), alg).ok_or_else(no_key)?;
                jws.verify(verifier)
            }
            IssuerKeySource::Remote(source) => {
                // An unknown kid triggers one rate-limited refetch: the issuer may have rotated.
                let keys = match jws.kid() {
                    Some(kid) => source.keys_for_kid(kid).await,
                    None => source.keys().await,
                }
                .map_err(|e| invalid(format!("the issuer's keys cannot be obtained: {e}")))?;
                let verifier = keys.verifiers().select(jws.kid(), alg).ok_or_else(no_key)?;
                jws.verify(verifier)
            }
        };
        verified_signature
            .map_err(|e| invalid(format!("the software statement is not acceptable: {e}")))?;

        let number = |name: &str| -> Result<Option<u64>, StatementError> {
            match claims.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => numeric_date(value).map(Some).ok_or_else(|| {
                    invalid(format!(
                        "the statement's {name} is not a whole number of seconds since 1970"
                    ))
                }),
            }
        };
        let status = match claims.get("status") {
            None | Some(Value::Null) => None,
            Some(claim) => {
                let reference = StatusReference::from_claim(claim)
                    .map_err(|e| invalid(format!("in the software statement, {e}")))?;
                // Only where the operator allowed: a statement must not make the registrar
                // fetch from anywhere it names.
                if !trusted.allows_status_list(&reference.uri) {
                    return Err(invalid(format!(
                        "the software statement's status list {} is not one of its issuer's status_list_uris",
                        quoted(&reference.uri)
                    )));
                }
                Some(reference)
            }
        };
        // A federation may scope its statements to one registrar (RFC 7591 §2.3 leaves the
        // claims to the trust framework).
        if let Some(expected) = &trusted.config.audience {
            let names_us = match claims.get("aud") {
                Some(Value::String(aud)) => aud == expected,
                Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
                _ => false,
            };
            if !names_us {
                return Err(invalid(format!(
                    "the software statement must name {} in its aud",
                    quoted(expected)
                )));
            }
        }
        let (exp, nbf, iat) = (number("exp")?, number("nbf")?, number("iat")?);
        let jti = claims.get("jti").and_then(Value::as_str).map(str::to_owned);
        let (metadata, openbanking) = match trusted.config.profile {
            StatementProfile::Rfc7591 => (
                claims
                    .into_iter()
                    .filter(|(name, _)| !JWT_CLAIMS.contains(&name.as_str()))
                    .collect(),
                None,
            ),
            StatementProfile::OpenbankingUk => {
                let (metadata, profile) = openbanking::translate(&claims)?;
                (metadata, Some(profile))
            }
        };
        let verified = VerifiedStatement {
            status,
            openbanking,
            exp,
            nbf,
            iat,
            jti,
            digest: jose::base64url(&digest),
            metadata,
            issuer,
        };
        check_times(&verified, now, skew)?;
        let verified = Arc::new(verified);
        if let Some(cache) = &self.verified {
            if self.seen_before(&digest) {
                cache.insert(digest, verified.clone());
            }
        }
        Ok(verified)
    }

    /// The current keys of `issuer`, for a token signed with `kid` (an unknown kid triggers one
    /// rate-limited refetch of a jwks_uri, as for statements).
    pub async fn verifiers_of(
        &self,
        issuer: &str,
        kid: Option<&str>,
    ) -> Result<IssuerVerifiers, String> {
        let trusted = self
            .issuers
            .get(issuer)
            .ok_or_else(|| format!("{} is not a trusted issuer here", quoted(issuer)))?;
        match &trusted.keys {
            IssuerKeySource::File(set) => Ok(IssuerVerifiers::File(set.clone())),
            IssuerKeySource::Remote(source) => match kid {
                Some(kid) => source.keys_for_kid(kid).await,
                None => source.keys().await,
            }
            .map(IssuerVerifiers::Fetched)
            .map_err(|e| e.to_string()),
        }
    }

    /// Whether `issuer`'s statements may, must or must not come in a signed request.
    pub fn signed_requests(&self, issuer: &str) -> crate::config::SignedRequests {
        self.issuers
            .get(issuer)
            .map_or(Default::default(), |trusted| {
                trusted.config.signed_requests()
            })
    }

    /// The statement profile of `issuer` (the default for an issuer no longer trusted).
    pub fn profile(&self, issuer: &str) -> StatementProfile {
        self.issuers
            .get(issuer)
            .map_or(Default::default(), |trusted| trusted.config.profile)
    }

    /// The JWS algorithms `issuer`'s software may use, where its configuration limits them.
    pub fn allowed_signing_algs(&self, issuer: &str) -> Option<&[String]> {
        self.issuers
            .get(issuer)
            .and_then(|trusted| trusted.config.allowed_signing_algs.as_deref())
    }

    /// The bounds on how long `issuer`'s status lists are cached, where its configuration sets
    /// them (`None` for either: the `[fetch]` default).
    pub fn status_list_cache_bounds(&self, issuer: &str) -> (Option<u64>, Option<u64>) {
        self.issuers.get(issuer).map_or((None, None), |trusted| {
            (
                trusted.config.status_list_min_cache_secs,
                trusted.config.status_list_max_cache_secs,
            )
        })
    }

    /// Issuer policy (RFC 7591 §3.2.2, §5; conformance: issuer-policy): allowed software, grant
    /// types and scopes.
    pub fn approve(&self, issuer: &str, md: &ClientMetadata) -> Result<(), StatementError> {
        let Some(issuer) = self.issuers.get(issuer) else {
            return Err(StatementError::Unapproved(
                "issuer no longer trusted".into(),
            ));
        };
        let policy = &issuer.config;
        if let Some(allowed) = &policy.allowed_software_ids {
            let ok = md
                .software_id
                .as_ref()
                .is_some_and(|id| allowed.contains(id));
            if !ok {
                return Err(StatementError::Unapproved(
                    "this software_id is not approved for registration".into(),
                ));
            }
        }
        if let Some(allowed) = &policy.allowed_grant_types {
            if let Some(bad) = md.grant_types.iter().find(|g| !allowed.contains(g)) {
                return Err(StatementError::Unapproved(format!(
                    "grant type {} is not approved for this issuer's software",
                    quoted(bad.as_str())
                )));
            }
        }
        if let Some(allowed) = &policy.allowed_token_endpoint_auth_methods {
            if !allowed.contains(&md.token_endpoint_auth_method) {
                return Err(StatementError::Unapproved(format!(
                    "token_endpoint_auth_method {} is not approved for this issuer's software",
                    quoted(md.token_endpoint_auth_method.as_str())
                )));
            }
        }
        // FAPI 2.0 Security Profile §5.3.2.2: sender-constrained access tokens
        if policy.require_certificate_bound_access_tokens
            && !md.tls_client_certificate_bound_access_tokens
        {
            return Err(StatementError::Unapproved(
                "this issuer's software must register tls_client_certificate_bound_access_tokens: true".into(),
            ));
        }
        if let Some(allowed) = &policy.allowed_response_types {
            if let Some(bad) = md.response_types.iter().find(|r| !allowed.contains(r)) {
                return Err(StatementError::Unapproved(format!(
                    "response type {} is not approved for this issuer's software",
                    quoted(&bad.to_string())
                )));
            }
        }
        if let Some(allowed) = &policy.allowed_signing_algs {
            // the algorithms the client signs with, and those it asks the OP to sign with
            let registered = [
                (
                    "token_endpoint_auth_signing_alg",
                    md.token_endpoint_auth_signing_alg.as_deref(),
                ),
                (
                    "request_object_signing_alg",
                    md.request_object_signing_alg.as_deref(),
                ),
                (
                    "id_token_signed_response_alg",
                    Some(md.id_token_signed_response_alg.as_str()),
                ),
                (
                    "userinfo_signed_response_alg",
                    md.userinfo_signed_response_alg.as_deref(),
                ),
            ];
            for (member, alg) in registered {
                if let Some(alg) = alg.filter(|alg| !allowed.iter().any(|a| a == alg)) {
                    return Err(StatementError::Unapproved(format!(
                        "{member} {} is not approved for this issuer's software",
                        quoted(alg)
                    )));
                }
            }
        }
        if let (Some(allowed), Some(scope)) = (&policy.allowed_scopes, &md.scope) {
            if let Some(bad) = scope.split(' ').find(|s| !allowed.iter().any(|a| a == s)) {
                return Err(StatementError::Unapproved(format!(
                    "scope {} is not approved for this issuer's software",
                    quoted(bad)
                )));
            }
        }
        Ok(())
    }
}

/// A NumericDate (RFC 7519 §2) as this service accepts one: a non-negative whole number of
/// seconds that fits a u64. RFC 7519 allows fractions; a statement is an authority's signed
/// document, and refusing anything but whole seconds keeps every comparison exact (a project
/// decision, see docs/conformance.md `statement-times-checked`).
fn numeric_date(value: &Value) -> Option<u64> {
    /// Integers up to 2^53 are exact in a double; above, `1e300` would be read as a time.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(whole) = n.as_u64() {
        return Some(whole);
    }
    // `1.7e9` and `1700000000.0` are whole numbers written as floats
    let f = n.as_f64()?;
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= EXACT).then_some(f as u64)
}

/// `exp`, `nbf` and `iat` with a symmetric clock skew (RFC 7519 §4.1.4–§4.1.6; conformance:
/// statement-times-checked). josekit's `JwtPayloadValidator` skips absent claims and has no
/// leeway, so this is done here.
fn check_times(s: &VerifiedStatement, now: u64, skew: u64) -> Result<(), StatementError> {
    if let Some(exp) = s.exp {
        if now >= exp.saturating_add(skew) {
            return Err(invalid("the software statement has expired"));
        }
    }
    if let Some(nbf) = s.nbf {
        if nbf > now.saturating_add(skew) {
            return Err(invalid("the software statement is not valid yet (nbf)"));
        }
    }
    if let Some(iat) = s.iat {
        if iat > now.saturating_add(skew) {
            return Err(invalid(
                "the software statement was issued in the future (iat)",
            ));
        }
    }
    Ok(())
}

/// RFC 7591 §2, §3.1.1: `effective = body ⊕ statement`, each over known metadata only; for each
/// member name the statement wins. Tagged names are separate members (conformance:
/// statement-overrides-body).
pub fn merge(
    body: &Map<String, Value>,
    statement: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut effective: Map<String, Value> = body
        .iter()
        .filter(|(name, _)| metadata::is_metadata_member(name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(statement) = statement {
        for (name, value) in statement {
            if metadata::is_metadata_member(name) {
                effective.insert(name.clone(), value.clone());
            }
        }
    }
    effective
}

fn load_jwks(path: &Path) -> Result<VerifierSet, KeyError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
        path: shown.clone(),
        source,
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| KeyError::Invalid {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    VerifierSet::from_jwks(&value).map_err(|e| KeyError::Invalid {
        path: shown,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_enters_the_cache_the_second_time_it_is_verified() {
        let fetcher = Fetcher::new(Default::default()).unwrap();
        let issuers = TrustedIssuers::load(&[], 100, &fetcher).unwrap();
        let (a, b) = (jose::sha256(b"a"), jose::sha256(b"b"));
        assert!(!issuers.seen_before(&a));
        assert!(!issuers.seen_before(&b));
        assert!(issuers.seen_before(&a));
        assert!(issuers.seen_before(&b));
        // without a cache nothing is remembered
        let uncached = TrustedIssuers::load(&[], 0, &fetcher).unwrap();
        assert!(!uncached.seen_before(&a));
        assert!(!uncached.seen_before(&a));
    }

    /// A trusted issuer with one key (in a file), and a signer for its statements.
    fn issuer(dir: &Path, cache_entries: u64) -> (TrustedIssuers, impl Fn(Value) -> String) {
        let (private, jwks) =
            crate::keys::generate_authority_key(crate::keys::SigningAlg::Es256).unwrap();
        let jwks_file = dir.join("issuer.jwks.json");
        std::fs::write(&jwks_file, jwks.to_string()).unwrap();
        let config = TrustedIssuer::with_jwks_file("https://issuer.test", jwks_file);
        let fetcher = Fetcher::new(Default::default()).unwrap();
        let issuers = TrustedIssuers::load(&[config], cache_entries, &fetcher).unwrap();
        let private = josekit::jwk::Jwk::from_map(private.as_object().unwrap().clone()).unwrap();
        let sign = move |mut claims: Value| {
            claims["iss"] = "https://issuer.test".into();
            let (alg, signer) = crate::keys::signer_for(&private).unwrap();
            let mut header = Map::new();
            header.insert("alg".into(), alg.into());
            header.insert("kid".into(), private.key_id().unwrap().into());
            jose::sign_compact(&header, claims.to_string().as_bytes(), signer.as_ref()).unwrap()
        };
        (issuers, sign)
    }

    #[tokio::test]
    async fn times_hold_up_to_the_second_of_their_boundary_with_the_skew() {
        let dir = tempfile::tempdir().unwrap();
        let (issuers, sign) = issuer(dir.path(), 0);
        let skew = 60;
        let verify = |statement: &str, now| {
            let statement = statement.to_owned();
            let issuers = &issuers;
            async move { issuers.verify(&statement, now, skew, 16 * 1024).await }
        };
        // exp: refused on and after exp + skew (RFC 7519 §4.1.4)
        let expiring = sign(serde_json::json!({ "exp": 1_000 }));
        assert!(verify(&expiring, 1_000 + skew - 1).await.is_ok());
        assert!(verify(&expiring, 1_000 + skew).await.is_err());
        // nbf and iat: refused once they are more than the skew ahead (RFC 7519 §4.1.5, §4.1.6)
        for claim in ["nbf", "iat"] {
            let future = sign(serde_json::json!({ claim: 2_000 }));
            assert!(verify(&future, 2_000 - skew).await.is_ok(), "{claim}");
            assert!(verify(&future, 2_000 - skew - 1).await.is_err(), "{claim}");
        }
    }

    #[tokio::test]
    async fn times_that_are_not_whole_seconds_are_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let (issuers, sign) = issuer(dir.path(), 0);
        for bad in [
            serde_json::json!(1e300),
            serde_json::json!(4_102_444_800.5),
            serde_json::json!(-1),
            serde_json::json!(-0.5),
            serde_json::json!("4102444800"),
            serde_json::json!(true),
        ] {
            let statement = sign(serde_json::json!({ "exp": bad }));
            let err = issuers.verify(&statement, 1_000, 0, 16 * 1024).await;
            assert!(
                matches!(&err, Err(StatementError::Invalid(m)) if m.contains("exp")),
                "{bad}: {err:?}"
            );
        }
        for good in [
            serde_json::json!(4_102_444_800u64),
            serde_json::json!(4.1024448e9),
        ] {
            let statement = sign(serde_json::json!({ "exp": good }));
            assert!(issuers
                .verify(&statement, 1_000, 0, 16 * 1024)
                .await
                .is_ok());
        }
    }

    #[tokio::test]
    async fn a_cached_statement_still_expires_at_the_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let (issuers, sign) = issuer(dir.path(), 100);
        let statement = sign(serde_json::json!({ "exp": 1_000 }));
        // verified twice: the second verification puts it in the cache
        for _ in 0..2 {
            issuers.verify(&statement, 500, 0, 16 * 1024).await.unwrap();
        }
        assert!(issuers
            .verified
            .as_ref()
            .unwrap()
            .contains_key(&jose::sha256(statement.as_bytes())));
        assert!(issuers.verify(&statement, 999, 0, 16 * 1024).await.is_ok());
        assert_eq!(
            issuers
                .verify(&statement, 1_000, 0, 16 * 1024)
                .await
                .unwrap_err(),
            StatementError::Invalid("the software statement has expired".into())
        );
    }
}
