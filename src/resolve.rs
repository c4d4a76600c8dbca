//! Resolution: turning a presented client_id into trusted client information, at an OP's
//! authorization and token endpoints or at an edge node (digest §7.5 D6, §3.2, §9).
//!
//! A [`Resolver`] needs only the registrar's public keys (its JWKS) and, where update and delete
//! are used, read access to the status store. Checking a `client_secret` also needs the
//! registrar's `client_secret` derivation keys — and nothing else of the registrar's key set.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use josekit::jws::JwsVerifier;
use serde_json::Value;

use crate::client_id::{self, ClientIdClaims, ClientIdError, Provenance};
use crate::fetch::{DocumentKind, Fetcher};
use crate::jose::CompactJws;
use crate::keys::{DerivationKeys, Shared, VerifierSet};
use crate::metadata::{redirect, AuthMethod, ClientMetadata};
use crate::status::{ClientStatus, StatusService, StoreError};

/// A client_id that verified, with its status record applied: the client as it is now.
#[derive(Debug, Clone)]
pub struct VerifiedClient {
    pub client_id: String,
    /// The claims as signed in the client_id.
    pub claims: ClientIdClaims,
    /// The current metadata: the client_id's, or the latest amendment's.
    pub metadata: ClientMetadata,
    /// The registration access token generation (0 until the first update).
    pub generation: u64,
    /// kid of the client_secret key, when the client has a secret.
    pub csk: Option<String>,
    pub sector: Option<String>,
    pub provenance: Option<Provenance>,
}

impl VerifiedClient {
    pub fn jti(&self) -> &str {
        &self.claims.jti
    }

    /// Whether `uri` is one of the registered redirect URIs (digest §3.2): exact code-point
    /// comparison, except any port for a native client's loopback URI (RFC 8252 §7.3).
    pub fn redirect_uri_matches(&self, uri: &str) -> bool {
        self.metadata
            .redirect_uris
            .iter()
            .any(|registered| redirect::matches(registered, uri, self.metadata.application_type))
    }

    /// Whether the client registered this response type; token order does not matter
    /// (RFC 6749 §3.1.1).
    pub fn allows_response_type(&self, response_type: &str) -> bool {
        let wanted = token_set(response_type);
        !wanted.is_empty()
            && self
                .metadata
                .response_types
                .iter()
                .any(|registered| token_set(registered) == wanted)
    }

    pub fn allows_grant_type(&self, grant_type: &str) -> bool {
        self.metadata.grant_types.iter().any(|g| g == grant_type)
    }

    /// A public client: it authenticates with nothing (`token_endpoint_auth_method` `none`).
    pub fn is_public(&self) -> bool {
        self.metadata.token_endpoint_auth_method == AuthMethod::None
    }
}

fn token_set(value: &str) -> std::collections::BTreeSet<&str> {
    value.split(' ').filter(|t| !t.is_empty()).collect()
}

/// Why a client_id does not resolve to a usable client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("{0}")]
    ClientId(#[from] ClientIdError),
    #[error("the client was deleted")]
    Revoked,
    /// Its status record does not verify: fail closed.
    #[error("the client's status record is not trusted")]
    UntrustedRecord,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error("invalid client: {0}")]
    Invalid(Invalid),
    /// The status store cannot be reached: fail closed, the client may have been deleted.
    #[error(transparent)]
    Store(#[from] StoreError),
}

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
}

impl Credentials<'_> {
    fn method(&self) -> &'static str {
        match self {
            Credentials::None => "none",
            Credentials::SecretBasic(_) => "client_secret_basic",
            Credentials::SecretPost(_) => "client_secret_post",
            Credentials::Assertion(_) => "a client assertion",
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
    #[error("the client assertion was already used")]
    Replayed,
    #[error("the client's keys cannot be obtained: {0}")]
    KeysUnavailable(String),
}

/// What a resolver is built from.
pub struct ResolverOptions {
    /// The registrar's `iss`, checked in every client_id.
    pub issuer: String,
    /// The registrar's published keys.
    pub verifiers: Shared<VerifierSet>,
    /// The status store, where update and delete are used.
    pub status: Option<Arc<StatusService>>,
    /// The registrar's `client_secret` keys, to check secrets and `client_secret_jwt`.
    pub client_secret_keys: Option<Shared<DerivationKeys>>,
    /// Fetches a client's `jwks_uri` for `private_key_jwt` (guarded against SSRF).
    pub fetcher: Option<Fetcher>,
    /// Accepted `aud` values of client assertions: the token endpoint URL, the OP's issuer.
    pub audiences: Vec<String>,
    /// Verified client_ids kept in memory.
    pub cache_entries: u64,
}

/// Turns client_ids into [`VerifiedClient`]s and authenticates clients.
pub struct Resolver {
    issuer: String,
    verifiers: Shared<VerifierSet>,
    status: Option<Arc<StatusService>>,
    client_secret_keys: Option<Shared<DerivationKeys>>,
    fetcher: Option<Fetcher>,
    audiences: Vec<String>,
    /// Verified client_ids without their status, never kept past the token's `exp`.
    verified: moka::sync::Cache<Arc<str>, Arc<VerifiedClient>>,
    /// Assertion ids seen, until the assertion expires (RFC 7523 §3 item 7: single use).
    seen_assertions: moka::sync::Cache<String, ()>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Expire each cache entry at the instant stored with it.
struct UntilDeadline;

impl moka::Expiry<Arc<str>, Arc<VerifiedClient>> for UntilDeadline {
    fn expire_after_create(
        &self,
        _: &Arc<str>,
        client: &Arc<VerifiedClient>,
        _: Instant,
    ) -> Option<Duration> {
        client
            .claims
            .exp
            .map(|exp| Duration::from_secs(exp.saturating_sub(now())))
    }
}

struct AssertionExpiry;

impl moka::Expiry<String, ()> for AssertionExpiry {
    fn expire_after_create(&self, key: &String, _: &(), _: Instant) -> Option<Duration> {
        // the key ends with "|exp"
        let exp = key
            .rsplit('|')
            .next()
            .and_then(|e| e.parse::<u64>().ok())
            .unwrap_or(0);
        Some(Duration::from_secs(
            exp.saturating_sub(now()) + ASSERTION_LEEWAY,
        ))
    }
}

/// Clock leeway for client assertions, in seconds.
const ASSERTION_LEEWAY: u64 = 60;
/// Longest lifetime of a client assertion accepted: a longer one would have to be remembered
/// longer to keep it single-use.
const MAX_ASSERTION_LIFETIME: u64 = 3600;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Resolver {
    pub fn new(options: ResolverOptions) -> Self {
        Resolver {
            issuer: options.issuer,
            verifiers: options.verifiers,
            status: options.status,
            client_secret_keys: options.client_secret_keys,
            fetcher: options.fetcher,
            audiences: options.audiences,
            verified: moka::sync::Cache::builder()
                .max_capacity(options.cache_entries)
                .expire_after(UntilDeadline)
                .build(),
            seen_assertions: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .expire_after(AssertionExpiry)
                .build(),
        }
    }

    /// Forget every verified client_id (after the registrar's keys changed).
    pub fn clear_cache(&self) {
        self.verified.invalidate_all();
    }

    /// Verify a client_id (signature, kid, `iss`, `exp`), using the cache of verified
    /// client_ids, without the status record.
    pub fn verify(&self, client_id: &str) -> Result<Arc<VerifiedClient>, Invalid> {
        if let Some(hit) = self.verified.get(client_id) {
            // The cache entry expires with the token, but moka may hand it out a moment late.
            if hit.claims.exp.is_none_or(|exp| now() < exp) {
                crate::metrics::cache("client_id", true);
                return Ok(hit);
            }
        }
        crate::metrics::cache("client_id", false);
        let claims = client_id::verify(&self.verifiers.current(), &self.issuer, client_id, now())?;
        // Embedded metadata was validated and signed by the registrar; it is parsed with the
        // spec defaults that the compact form left out.
        let metadata = ClientMetadata::parse(&claims.metadata, "public")
            .map_err(|_| ClientIdError::Malformed)?;
        let client = Arc::new(VerifiedClient {
            client_id: client_id.to_owned(),
            generation: 0,
            csk: claims.csk.clone(),
            sector: claims.sector.clone(),
            provenance: claims.stmt.clone(),
            claims,
            metadata,
        });
        self.verified.insert(Arc::from(client_id), client.clone());
        Ok(client)
    }

    /// The client as it is now: verified, and the status record applied (D6). Deleted clients
    /// and client_ids that do not verify are `ResolveError::Invalid`.
    pub async fn resolve(&self, client_id: &str) -> Result<Arc<VerifiedClient>, ResolveError> {
        let result = self.resolve_uncounted(client_id).await;
        let outcome = match &result {
            Ok(_) => "valid",
            Err(ResolveError::Invalid(Invalid::Revoked)) => "revoked",
            Err(ResolveError::Invalid(_)) => "invalid",
            Err(ResolveError::Store(_)) => "store_error",
        };
        crate::metrics::resolve(outcome);
        result
    }

    async fn resolve_uncounted(
        &self,
        client_id: &str,
    ) -> Result<Arc<VerifiedClient>, ResolveError> {
        let client = self.verify(client_id).map_err(ResolveError::Invalid)?;
        let Some(status) = &self.status else {
            return Ok(client);
        };
        let status = match status.status(client.jti()).await {
            Ok(status) => status,
            Err(StoreError::Corrupt(detail)) => {
                tracing::error!(%detail, "status record failed verification; client refused");
                return Err(ResolveError::Invalid(Invalid::UntrustedRecord));
            }
            Err(e) => return Err(e.into()),
        };
        match status.as_ref() {
            ClientStatus::Active => Ok(client),
            ClientStatus::Revoked => Err(ResolveError::Invalid(Invalid::Revoked)),
            ClientStatus::Amended(a) => {
                let metadata = ClientMetadata::parse(&a.metadata, "public").map_err(|e| {
                    StoreError::Corrupt(format!("amendment of {}: {e}", client.jti()))
                })?;
                Ok(Arc::new(VerifiedClient {
                    metadata,
                    generation: a.generation,
                    csk: a.csk.clone(),
                    sector: a.sector.clone(),
                    provenance: a.stmt.clone(),
                    ..client.as_ref().clone()
                }))
            }
        }
    }

    /// The client's current secret, when it has one and this resolver holds the key.
    pub fn client_secret(&self, client: &VerifiedClient) -> Option<String> {
        let keys = self.client_secret_keys.as_ref()?.current();
        let key = keys.get(client.csk.as_deref()?)?;
        client_id::derive_secret(key, client.jti())
    }

    /// Authenticate a client at a token endpoint with the method it registered (OIDC Core §9,
    /// RFC 7523 §3). A method other than the registered one is refused.
    pub async fn authenticate(
        &self,
        client: &VerifiedClient,
        credentials: Credentials<'_>,
    ) -> Result<(), AuthError> {
        let registered = client.metadata.token_endpoint_auth_method;
        let presented_ok = matches!(
            (registered, &credentials),
            (AuthMethod::None, Credentials::None)
                | (AuthMethod::ClientSecretBasic, Credentials::SecretBasic(_))
                | (AuthMethod::ClientSecretPost, Credentials::SecretPost(_))
                | (AuthMethod::ClientSecretJwt, Credentials::Assertion(_))
                | (AuthMethod::PrivateKeyJwt, Credentials::Assertion(_))
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
                let expected = self.expected_secret(client)?;
                if client_id::secret_matches(&expected, secret) {
                    Ok(())
                } else {
                    Err(AuthError::WrongSecret)
                }
            }
            Credentials::Assertion(assertion) => self.check_assertion(client, assertion).await,
        }
    }

    fn expected_secret(&self, client: &VerifiedClient) -> Result<String, AuthError> {
        if self.client_secret_keys.is_none() {
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
        let method = client.metadata.token_endpoint_auth_method;
        let jws = match method {
            AuthMethod::ClientSecretJwt => CompactJws::parse_allowing_mac(assertion),
            _ => CompactJws::parse(assertion),
        }
        .map_err(|e| AuthError::BadAssertion(e.to_string()))?;
        let alg = jws.alg().unwrap_or_default().to_owned();
        // digest R77: an alg other than the registered token_endpoint_auth_signing_alg fails
        if let Some(registered) = &client.metadata.token_endpoint_auth_signing_alg {
            if *registered != alg {
                return Err(bad("signed with another alg than the registered one"));
            }
        }
        let payload = match method {
            AuthMethod::ClientSecretJwt => {
                if !alg.starts_with("HS") {
                    return Err(bad("client_secret_jwt assertions use an HS* alg"));
                }
                let secret = self.expected_secret(client)?;
                let verifier = mac_verifier(&alg, secret.as_bytes()).map_err(|e| bad(&e))?;
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
        if string("iss") != Some(client.client_id.as_str())
            || string("sub") != Some(client.client_id.as_str())
        {
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
        let now = now();
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("exp is required"))?;
        if now >= exp + ASSERTION_LEEWAY {
            return Err(bad("expired"));
        }
        if exp > now + MAX_ASSERTION_LIFETIME {
            return Err(bad("exp is too far in the future"));
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64) {
            if nbf > now + ASSERTION_LEEWAY {
                return Err(bad("not valid yet"));
            }
        }
        let jti = string("jti").ok_or_else(|| bad("jti is required"))?;
        // single use within its lifetime, per node (RFC 7523 §3 item 7)
        let key = format!("{}|{jti}|{exp}", client.jti());
        let entry = self.seen_assertions.entry(key).or_insert(());
        if !entry.is_fresh() {
            return Err(AuthError::Replayed);
        }
        Ok(())
    }

    /// The client's public keys: registered inline, or fetched from its jwks_uri through the
    /// guarded fetcher.
    async fn client_keys(&self, client: &VerifiedClient) -> Result<Arc<VerifierSet>, AuthError> {
        let jwks = match (&client.metadata.jwks, &client.metadata.jwks_uri) {
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
        VerifierSet::from_jwks(&jwks)
            .map(Arc::new)
            .map_err(AuthError::KeysUnavailable)
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
