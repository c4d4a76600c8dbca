//! Client authentication at a token endpoint with the method the client registered (OIDC Core
//! §9): a client_secret (RFC 6749 §2.3.1), a client assertion (RFC 7523 §2.2, §3), or nothing
//! for a public client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use josekit::jws::JwsVerifier;
use serde_json::Value;

use super::certificate::ClientCertificate;
use super::{Resolver, VerifiedClient};
use crate::clock::SharedClock;
use crate::fetch::DocumentKind;
use crate::jose::CompactJws;
use crate::keys::VerifierSet;
use crate::metadata::{is_mac_alg, AuthMethod};
use crate::secret::Secret;

/// Credentials presented at a token endpoint (RFC 6749 §2.3, OIDC Core §9, RFC 7523).
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// Nothing but the client_id: only public clients.
    None,
    /// From the HTTP Basic header (`client_secret_basic`).
    SecretBasic(&'a str),
    /// From the request body (`client_secret_post`).
    SecretPost(&'a str),
    /// A `client_assertion` of type `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    Assertion(&'a str),
    /// The certificate of a mutual-TLS connection (`tls_client_auth`,
    /// `self_signed_tls_client_auth`; RFC 8705 §2), as the OP's TLS terminator passed it on.
    Certificate(&'a ClientCertificate),
}

impl Credentials<'_> {
    fn method(&self) -> &'static str {
        match self {
            Credentials::None => "none",
            Credentials::SecretBasic(_) => "client_secret_basic",
            Credentials::SecretPost(_) => "client_secret_post",
            Credentials::Assertion(_) => "a client assertion",
            Credentials::Certificate(_) => "a client certificate",
        }
    }
}

/// Why client authentication failed. Token endpoints answer every one of these with
/// `invalid_client` (RFC 6749 §5.2); the detail is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the client registered {registered} but presented {presented}")]
    WrongMethod {
        registered: &'static str,
        presented: &'static str,
    },
    #[error("the client secret is wrong")]
    WrongSecret,
    #[error("this resolver has no client_secret keys, so it cannot check secrets")]
    NoSecretKeys,
    #[error("the client assertion is not acceptable: {0}")]
    BadAssertion(String),
    #[error("the client certificate is not the one the client registered: {0}")]
    WrongCertificate(&'static str),
    #[error("the client assertion was already used")]
    Replayed,
    #[error("the client's keys cannot be obtained: {0}")]
    KeysUnavailable(String),
    #[error("the clock cannot tell whether the assertion has expired")]
    Clock,
    /// So many unexpired assertions were seen that a new one could not be remembered: it is
    /// refused rather than risking a replay. Try again later.
    #[error("too many client assertions in flight to remember another; try again later")]
    ReplayMemoryFull,
}

/// Clock leeway for client assertions, in seconds.
pub(super) const ASSERTION_LEEWAY: u64 = 60;
/// Longest lifetime of a client assertion accepted: a longer one would have to be remembered
/// longer to keep it single-use.
pub(super) const MAX_ASSERTION_LIFETIME: u64 = 3600;

/// Assertions remembered at most: past this many (unexpired) ones, new assertions are refused
/// rather than old ones forgotten, since forgetting would allow a replay.
pub(super) const MAX_SEEN_ASSERTIONS: u64 = 1_000_000;

/// The memory of assertions seen, by client and `jti`, each kept until its `exp` plus the
/// leeway (the value is the `exp`). moka may evict past its capacity, so it is given room beyond
/// the point where [`Resolver`] refuses.
pub(super) fn replay_cache(clock: SharedClock) -> moka::sync::Cache<String, u64> {
    moka::sync::Cache::builder()
        .max_capacity(MAX_SEEN_ASSERTIONS.saturating_mul(2))
        .expire_after(UntilAssertionExpiry(clock))
        .build()
}

struct UntilAssertionExpiry(SharedClock);

impl moka::Expiry<String, u64> for UntilAssertionExpiry {
    fn expire_after_create(&self, _: &String, exp: &u64, _: Instant) -> Option<Duration> {
        // a clock that fails keeps the entry for the longest an assertion may live
        let remaining = match self.0.now() {
            Ok(now) => exp.saturating_sub(now),
            Err(_) => MAX_ASSERTION_LIFETIME,
        };
        Some(Duration::from_secs(
            remaining.saturating_add(ASSERTION_LEEWAY),
        ))
    }
}

impl Resolver {
    /// Authenticate a client at a token endpoint with the method it registered (OIDC Core §9,
    /// RFC 7523 §3). A method other than the registered one is refused.
    pub async fn authenticate(
        &self,
        client: &VerifiedClient,
        credentials: Credentials<'_>,
    ) -> Result<(), AuthError> {
        let registered = client.metadata().token_endpoint_auth_method;
        let presented_ok = matches!(
            (registered, &credentials),
            (AuthMethod::None, Credentials::None)
                | (AuthMethod::ClientSecretBasic, Credentials::SecretBasic(_))
                | (AuthMethod::ClientSecretPost, Credentials::SecretPost(_))
                | (AuthMethod::ClientSecretJwt, Credentials::Assertion(_))
                | (AuthMethod::PrivateKeyJwt, Credentials::Assertion(_))
                | (AuthMethod::TlsClientAuth, Credentials::Certificate(_))
                | (
                    AuthMethod::SelfSignedTlsClientAuth,
                    Credentials::Certificate(_)
                )
        );
        if !presented_ok {
            return Err(AuthError::WrongMethod {
                registered: registered.as_str(),
                presented: credentials.method(),
            });
        }
        match credentials {
            Credentials::None => Ok(()),
            Credentials::SecretBasic(secret) | Credentials::SecretPost(secret) => {
                if self.expected_secret(client)?.matches(secret) {
                    Ok(())
                } else {
                    Err(AuthError::WrongSecret)
                }
            }
            Credentials::Assertion(assertion) => self.check_assertion(client, assertion).await,
            Credentials::Certificate(certificate) => {
                self.check_certificate(client, certificate).await
            }
        }
    }

    /// RFC 8705 §2.1: the certificate carries the subject the client registered; §2.2: its
    /// public key is one of the client's registered keys.
    async fn check_certificate(
        &self,
        client: &VerifiedClient,
        certificate: &ClientCertificate,
    ) -> Result<(), AuthError> {
        let metadata = client.metadata();
        if metadata.token_endpoint_auth_method == AuthMethod::SelfSignedTlsClientAuth {
            let jwks = self.client_jwks(client).await?;
            return if certificate.matches_keys(&jwks) {
                Ok(())
            } else {
                Err(AuthError::WrongCertificate(
                    "its public key is none of the client's registered keys",
                ))
            };
        }
        match &metadata.tls_client_auth_subject {
            Some(subject) if certificate.matches_subject(subject) => Ok(()),
            Some(_) => Err(AuthError::WrongCertificate(
                "it does not carry the registered subject",
            )),
            // registration refuses tls_client_auth without a subject (RFC 8705 §2.1.2)
            None => Err(AuthError::WrongCertificate(
                "the client registered no subject",
            )),
        }
    }

    fn expected_secret(&self, client: &VerifiedClient) -> Result<Secret, AuthError> {
        if self.keys.verification().client_secret.is_none() {
            return Err(AuthError::NoSecretKeys);
        }
        // A client whose key was removed has no valid secret any more.
        self.client_secret(client).ok_or(AuthError::WrongSecret)
    }

    /// RFC 7523 §3 and OIDC Core §9: `iss` = `sub` = client_id, `aud` names this OP, `exp`
    /// in the future, a `jti` used once, signed with the registered alg and the client's key
    /// (private_key_jwt) or its secret (client_secret_jwt).
    async fn check_assertion(
        &self,
        client: &VerifiedClient,
        assertion: &str,
    ) -> Result<(), AuthError> {
        let bad = |why: &str| AuthError::BadAssertion(why.to_owned());
        let metadata = client.metadata();
        let method = metadata.token_endpoint_auth_method;
        let jws = match method {
            AuthMethod::ClientSecretJwt => CompactJws::parse_allowing_mac(assertion),
            _ => CompactJws::parse(assertion),
        }
        .map_err(|e| AuthError::BadAssertion(e.to_string()))?;
        let alg = jws.alg().unwrap_or_default().to_owned();
        // OIDC DCR §2: an alg other than the registered token_endpoint_auth_signing_alg fails
        if let Some(registered) = &metadata.token_endpoint_auth_signing_alg {
            if *registered != alg {
                return Err(bad("signed with another alg than the registered one"));
            }
        }
        let payload = match method {
            AuthMethod::ClientSecretJwt => {
                if !is_mac_alg(&alg) {
                    return Err(bad("client_secret_jwt assertions use an HS* alg"));
                }
                let secret = self.expected_secret(client)?;
                let verifier =
                    mac_verifier(&alg, secret.expose().as_bytes()).map_err(|e| bad(&e))?;
                jws.verify(verifier.as_ref())
            }
            _ => {
                let keys = self.client_keys(client).await?;
                let verifier = keys
                    .select(jws.kid(), &alg)
                    .ok_or_else(|| bad("no registered key matches its kid and alg"))?;
                jws.verify(verifier)
            }
        }
        .map_err(|e| AuthError::BadAssertion(e.to_string()))?;
        let claims: serde_json::Map<String, Value> = serde_json::from_slice(&payload)
            .map_err(|_| bad("the payload is not a JSON object"))?;

        let string = |name: &str| claims.get(name).and_then(Value::as_str);
        let client_id: &str = &client.client_id;
        if string("iss") != Some(client_id) || string("sub") != Some(client_id) {
            return Err(bad("iss and sub must both be the client_id"));
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => self.audiences.contains(aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|aud| self.audiences.iter().any(|a| a == aud)),
            _ => false,
        };
        if !audience_ok {
            return Err(bad("aud does not name this server"));
        }
        let now = self.clock.now().map_err(|_| AuthError::Clock)?;
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("exp is required"))?;
        if now >= exp.saturating_add(ASSERTION_LEEWAY) {
            return Err(bad("expired"));
        }
        if exp > now.saturating_add(MAX_ASSERTION_LIFETIME) {
            return Err(bad("exp is too far in the future"));
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64) {
            if nbf > now.saturating_add(ASSERTION_LEEWAY) {
                return Err(bad("not valid yet"));
            }
        }
        let jti = string("jti")
            .filter(|jti| !jti.is_empty())
            .ok_or_else(|| bad("a non-empty jti is required"))?;
        // single use within its lifetime, per node (RFC 7523 §3 item 7): by client and jti
        // alone, so that the same jti signed again with another exp is still a replay
        if self.seen_assertions.entry_count() >= self.max_seen_assertions {
            return Err(AuthError::ReplayMemoryFull);
        }
        let key = format!("{}|{jti}", client.jti());
        let entry = self.seen_assertions.entry(key).or_insert(exp);
        if !entry.is_fresh() {
            return Err(AuthError::Replayed);
        }
        Ok(())
    }

    /// The client's public keys: registered inline, or fetched from its jwks_uri through the
    /// guarded fetcher.
    async fn client_keys(&self, client: &VerifiedClient) -> Result<Arc<VerifierSet>, AuthError> {
        let jwks = self.client_jwks(client).await?;
        VerifierSet::from_jwks(&jwks)
            .map(Arc::new)
            .map_err(|e| AuthError::KeysUnavailable(e.to_string()))
    }

    /// The client's JWK Set: registered inline, or fetched from its jwks_uri.
    async fn client_jwks(&self, client: &VerifiedClient) -> Result<Arc<Value>, AuthError> {
        let metadata = client.metadata();
        let jwks = match (&metadata.jwks, &metadata.jwks_uri) {
            (Some(jwks), _) => Arc::new(Value::Object(jwks.clone())),
            (None, Some(uri)) => {
                let fetcher = self
                    .fetcher
                    .as_ref()
                    .ok_or_else(|| AuthError::KeysUnavailable("no fetcher configured".into()))?;
                fetcher
                    .jwks(uri, DocumentKind::ClientJwks)
                    .await
                    .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?
            }
            (None, None) => {
                return Err(AuthError::KeysUnavailable(
                    "the client registered no keys".into(),
                ))
            }
        };
        Ok(jwks)
    }
}

fn mac_verifier(alg: &str, key: &[u8]) -> Result<Box<dyn JwsVerifier>, String> {
    use josekit::jws::{HS256, HS384, HS512};
    let err = |e: josekit::JoseError| e.to_string();
    Ok(match alg {
        "HS256" => Box::new(HS256.verifier_from_bytes(key).map_err(err)?),
        "HS384" => Box::new(HS384.verifier_from_bytes(key).map_err(err)?),
        "HS512" => Box::new(HS512.verifier_from_bytes(key).map_err(err)?),
        other => return Err(format!("alg {other} is not a MAC")),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{mint, registrar_keys, resolver};
    use super::*;
    use crate::clock::{Clock, FixedClock};
    use crate::keys::{generate_authority_key, signer_for, SigningAlg};
    use serde_json::{json, Map};

    /// A private_key_jwt client whose key pair the test holds, and a signer of its assertions.
    fn client_with_key() -> (Value, impl Fn(Value) -> String) {
        let (private, jwks) = generate_authority_key(SigningAlg::Es256).unwrap();
        let metadata = json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks,
        });
        let private = josekit::jwk::Jwk::from_map(private.as_object().unwrap().clone()).unwrap();
        let sign = move |claims: Value| {
            let (alg, signer) = signer_for(&private).unwrap();
            let mut header = Map::new();
            header.insert("alg".into(), alg.into());
            header.insert("kid".into(), private.key_id().unwrap().into());
            crate::jose::sign_compact(&header, claims.to_string().as_bytes(), signer.as_ref())
                .unwrap()
        };
        (metadata, sign)
    }

    #[tokio::test]
    async fn an_assertion_is_accepted_until_exp_plus_the_leeway_and_only_once() {
        let keys = registrar_keys();
        let clock = FixedClock::new(1_000);
        let resolver = resolver(&keys, clock.clone());
        let (metadata, sign) = client_with_key();
        let id = mint(&keys, metadata, None);
        let client = resolver.verify(&id).unwrap();
        let assertion = |jti: &str, exp: u64| {
            sign(json!({
                "iss": id, "sub": id, "aud": "https://op.test/token", "jti": jti, "exp": exp,
            }))
        };
        let exp = 1_100;
        let check = |assertion: String| {
            let resolver = &resolver;
            let client = client.clone();
            async move {
                resolver
                    .authenticate(&client, Credentials::Assertion(&assertion))
                    .await
            }
        };
        clock.set(exp + ASSERTION_LEEWAY - 1);
        assert_eq!(check(assertion("a", exp)).await, Ok(()));
        // single use (RFC 7523 §3): the same jti again is a replay
        assert_eq!(check(assertion("a", exp)).await, Err(AuthError::Replayed));
        clock.set(exp + ASSERTION_LEEWAY);
        assert!(matches!(
            check(assertion("b", exp)).await,
            Err(AuthError::BadAssertion(why)) if why.contains("expired")
        ));
        // an exp too far ahead would have to be remembered too long
        clock.set(1_000);
        let far = 1_000 + MAX_ASSERTION_LIFETIME;
        assert_eq!(check(assertion("c", far)).await, Ok(()));
        assert!(matches!(
            check(assertion("d", far + 1)).await,
            Err(AuthError::BadAssertion(why)) if why.contains("too far")
        ));
        // a huge exp must not overflow the arithmetic (checked, never wrapping)
        assert!(check(assertion("e", u64::MAX)).await.is_err());
        // the same jti signed again with another exp is still a replay
        assert_eq!(
            check(assertion("c", far - 1)).await,
            Err(AuthError::Replayed)
        );
        // an empty jti is no identifier at all
        assert!(matches!(
            check(assertion("", exp)).await,
            Err(AuthError::BadAssertion(why)) if why.contains("jti")
        ));
    }

    #[tokio::test]
    async fn a_full_replay_memory_refuses_instead_of_forgetting() {
        let keys = registrar_keys();
        let mut resolver = resolver(&keys, crate::clock::system());
        resolver.max_seen_assertions = 3;
        let (metadata, sign) = client_with_key();
        let id = mint(&keys, metadata, None);
        let client = resolver.verify(&id).unwrap();
        let now = crate::clock::SystemClock.now().unwrap();
        let mut outcomes = Vec::new();
        for jti in ["a", "b", "c", "d"] {
            let assertion = sign(json!({
                "iss": id, "sub": id, "aud": "https://op.test/token", "jti": jti, "exp": now + 60,
            }));
            resolver.seen_assertions.run_pending_tasks();
            outcomes.push(
                resolver
                    .authenticate(&client, Credentials::Assertion(&assertion))
                    .await,
            );
        }
        assert_eq!(outcomes[..3], [Ok(()), Ok(()), Ok(())]);
        assert_eq!(outcomes[3], Err(AuthError::ReplayMemoryFull));
    }
}
