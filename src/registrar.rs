//! The protocol, independent of HTTP: register (RFC 7591 §3, OIDC DCR §3), read, update and
//! delete (RFC 7592 §2, OIDC DCR §4) and client_id verification. Each flow reads top to bottom
//! in one function.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::client_id::{self, ClientIdClaims, MintError, Provenance};
use crate::config::{Config, Management};
use crate::fetch::{self, DocumentKind, Fetcher};
use crate::keys::{KeyError, KeyRing, RegistrarKeys};
use crate::metadata::{self, AuthMethod, ClientMetadata, Form, MetadataErrorCode, Rules};
use crate::ratelimit::RateLimiter;
use crate::resolve::{Invalid, ResolveError, Resolver, ResolverOptions, VerifiedClient};
use crate::statement::{self, StatementError, TrustedIssuers, VerifiedStatement};
use crate::status::{Amendment, ClientStatus, StatusService, StoreError, WriteOutcome};

/// Outcomes of the registrar's operations that are not success, each carrying its RFC 7591
/// §3.2.2 / RFC 6750 §3.1 error code. The HTTP layer maps them to status codes in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
    #[error("{0}")]
    InvalidSoftwareStatement(String),
    #[error("{0}")]
    UnapprovedSoftwareStatement(String),
    /// No registration access token was presented (RFC 6750 §3.1: no error code).
    #[error("a registration access token is required")]
    MissingToken,
    /// The token, or the client it is presented for, is not valid. One answer for all causes so
    /// that nothing reveals which clients exist (OIDC DCR §4.4; digest O4).
    #[error("the registration access token or client is not valid")]
    InvalidToken,
    /// The status store cannot be reached: update and delete never report a success they could
    /// not record, and reads never serve a client that might have been deleted.
    #[error("the client status store is temporarily unavailable; try again")]
    Unavailable(String),
    /// The statement issuer's registration budget is spent (`rate_limits.registration_per_issuer`).
    #[error("too many registrations for this software statement issuer; retry later")]
    RateLimited { retry_after: u64 },
    /// Something on the server's side failed; the message goes to the log, not the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RegistrationError {
    /// The `error` code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            RegistrationError::InvalidClientMetadata(_) => "invalid_client_metadata",
            RegistrationError::InvalidSoftwareStatement(_) => "invalid_software_statement",
            RegistrationError::UnapprovedSoftwareStatement(_) => "unapproved_software_statement",
            RegistrationError::MissingToken | RegistrationError::InvalidToken => "invalid_token",
            RegistrationError::Unavailable(_) => "temporarily_unavailable",
            RegistrationError::RateLimited { .. } => "too_many_requests",
            RegistrationError::Internal(_) => "server_error",
        }
    }
}

impl From<metadata::MetadataError> for RegistrationError {
    fn from(e: metadata::MetadataError) -> Self {
        match e.code {
            MetadataErrorCode::InvalidRedirectUri => {
                RegistrationError::InvalidRedirectUri(e.description)
            }
            MetadataErrorCode::InvalidClientMetadata => {
                RegistrationError::InvalidClientMetadata(e.description)
            }
        }
    }
}

impl From<StatementError> for RegistrationError {
    fn from(e: StatementError) -> Self {
        match e {
            StatementError::Invalid(m) => RegistrationError::InvalidSoftwareStatement(m),
            StatementError::Unapproved(m) => RegistrationError::UnapprovedSoftwareStatement(m),
        }
    }
}

impl From<MintError> for RegistrationError {
    fn from(e: MintError) -> Self {
        match e {
            // design.md: over the limit → invalid_client_metadata naming the limit (D5, R104)
            MintError::TooLong { .. } => RegistrationError::InvalidClientMetadata(e.to_string()),
            MintError::Crypto(m) => RegistrationError::Internal(m),
        }
    }
}

impl From<StoreError> for RegistrationError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => RegistrationError::Unavailable(m),
            // A record that does not verify (tampered, or signed by a key no longer listed):
            // the client is not trusted, and the operator is told loudly.
            StoreError::Corrupt(m) => {
                tracing::error!(detail = %m, "status record failed verification; client refused");
                RegistrationError::InvalidToken
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("status_store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot bind {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// Members an update must not carry (RFC 7592 §2.2).
const FORBIDDEN_IN_UPDATE: [&str; 4] = [
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

/// The registrar: configuration, keys, trusted issuers and the status store.
#[derive(Debug)]
pub struct Registrar {
    issuer: String,
    registration_endpoint: String,
    jwks_uri: String,
    management: Management,
    require_statement: bool,
    max_lifetime: u64,
    client_id_max_length: usize,
    max_statement_bytes: usize,
    clock_skew: u64,
    rules: Rules,
    keys: KeyRing,
    issuers: TrustedIssuers,
    status: Option<Arc<StatusService>>,
    resolver: Resolver,
    fetcher: Fetcher,
    issuer_limit: Option<RateLimiter>,
    check_client_jwks_uri: bool,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Registrar {
    /// Validate the configuration, load every key it names, and open the status store when
    /// update and delete are offered (`management = "full"`).
    pub async fn open(config: &Config) -> Result<Self, StartupError> {
        let mut registrar = Self::without_store(config)?;
        if config.management == Management::Full {
            let status = StatusService::open(&config.status_store, registrar.keys.clone()).await?;
            registrar.resolver = registrar.resolver_for(config, Some(status.clone()));
            registrar.status = Some(status);
        }
        Ok(registrar)
    }

    /// Everything but the status store: for tools that only verify client_ids.
    pub fn without_store(config: &Config) -> Result<Self, StartupError> {
        config.validate()?;
        let keys = RegistrarKeys::load(&config.keys)?;
        if keys.development_only && !config.is_local() {
            return Err(crate::config::ConfigError::Invalid {
                option: "keys".into(),
                message: "this key set is marked development_only (its private keys are published); generate your own with `stateless-dcr keys generate`".into(),
            }
            .into());
        }
        let fetcher = Fetcher::new(config.fetch.clone()).map_err(|e| {
            crate::config::ConfigError::Invalid {
                option: "fetch".into(),
                message: e.to_string(),
            }
        })?;
        let issuers = TrustedIssuers::load(
            &config.trusted_issuers,
            config.statement_cache_entries,
            &fetcher,
        )?;
        let base = config.public_url.trim_end_matches('/');
        let keys = KeyRing::new(keys);
        let resolver = resolver_options(config, &keys, None, &fetcher);
        Ok(Registrar {
            resolver: Resolver::new(resolver),
            issuer: config.issuer().to_owned(),
            registration_endpoint: format!("{base}/register"),
            jwks_uri: format!("{base}/jwks"),
            management: config.management,
            require_statement: config.require_software_statement,
            max_lifetime: config.max_client_lifetime_secs,
            client_id_max_length: config.client_id_max_length,
            max_statement_bytes: config.max_statement_bytes,
            clock_skew: config.clock_skew_secs,
            rules: Rules::from_config(config),
            keys,
            issuers,
            status: None,
            fetcher,
            issuer_limit: config
                .rate_limits
                .registration_per_issuer
                .map(RateLimiter::new),
            check_client_jwks_uri: config.check_client_jwks_uri,
            authorization_endpoint: config.authorization_endpoint.clone(),
            token_endpoint: config.token_endpoint.clone(),
        })
    }

    /// The key set in force now.
    pub fn keys(&self) -> Arc<RegistrarKeys> {
        self.keys.current()
    }

    /// Install a new key set without a restart (key rotation): new client_ids are signed with
    /// its active key; client_ids signed by a key it still lists keep verifying.
    pub fn replace_keys(&self, keys: RegistrarKeys) {
        self.keys.replace(keys);
        self.resolver.clear_cache();
    }

    pub fn management(&self) -> Management {
        self.management
    }

    pub fn registration_endpoint(&self) -> &str {
        &self.registration_endpoint
    }

    pub fn status_service(&self) -> Option<&Arc<StatusService>> {
        self.status.as_ref()
    }

    /// Register a client (RFC 7591 §3; digest §8 pipeline). `request` is the JSON object of
    /// the request body. Nothing is written anywhere (R100).
    pub async fn register(
        &self,
        request: &Map<String, Value>,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let mut audit = Audit::new("register");
        let result = self.register_inner(request, &mut audit).await;
        audit.finish(&result);
        result
    }

    async fn register_inner(
        &self,
        request: &Map<String, Value>,
        audit: &mut Audit,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let now = now();

        // 1. The software statement, when present; required unless open registration is on.
        let statement_text = statement_member(request)?;
        if statement_text.is_none() && self.require_statement {
            return Err(RegistrationError::InvalidSoftwareStatement(
                "a software statement is required to register with this server".into(),
            ));
        }
        let statement = match statement_text {
            Some(text) => Some(self.verify_statement(text, now).await?),
            None => None,
        };
        if let Some(statement) = &statement {
            audit.issuer = Some(statement.issuer.clone());
            audit.software_id = statement
                .metadata
                .get("software_id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(limiter) = &self.issuer_limit {
                if let crate::ratelimit::Decision::Limited(wait) = limiter.check(&statement.issuer)
                {
                    crate::metrics::METRICS
                        .rate_limited
                        .with_label_values(&["registration_per_issuer"])
                        .inc();
                    return Err(RegistrationError::RateLimited {
                        retry_after: (wait.as_secs_f64().ceil() as u64).max(1),
                    });
                }
            }
        }

        // 2. Merge: the statement's claims take precedence over the body (RFC 7591 §2, §3.1.1).
        let effective = statement::merge(request, statement.as_deref());

        // 3. Types, defaults, validation, issuer policy, sector.
        let (md, sector) = self
            .validate(&effective, statement.as_ref().map(|s| s.issuer.as_str()))
            .await?;

        // 4. Mint the client_id, derive the secret and the registration access token.
        let exp = self.expiry(now, statement.as_ref().and_then(|s| s.exp));
        if exp.is_some_and(|exp| exp <= now) {
            // Within the clock skew the statement still verified, but a client_id that is dead
            // on arrival helps nobody (R81).
            return Err(RegistrationError::InvalidSoftwareStatement(
                "the software statement has expired".into(),
            ));
        }
        let claims = ClientIdClaims {
            iss: self.issuer.clone(),
            jti: client_id::new_jti()?,
            iat: now,
            exp,
            csk: md
                .needs_secret()
                .then(|| self.keys.current().client_secret.active().0.to_owned()),
            rtk: (self.management != Management::None).then(|| {
                self.keys
                    .current()
                    .registration_access_token
                    .active()
                    .0
                    .to_owned()
            }),
            stmt: statement.as_ref().map(|s| provenance(s)),
            sector: sector.clone(),
            metadata: md.to_json(Form::Compact),
        };
        audit.client = Some(claims.jti.clone());
        let client_id = client_id::mint(&self.keys.current(), &claims, self.client_id_max_length)?;
        let client = VerifiedClient {
            client_id,
            generation: 0,
            csk: claims.csk.clone(),
            sector,
            provenance: claims.stmt.clone(),
            claims,
            metadata: md,
        };

        // 5. The response: every registered field, the statement echoed unchanged (R15).
        let mut body = self.client_information(&client)?;
        if let Some(text) = statement_text {
            body.insert("software_statement".into(), Value::String(text.to_owned()));
        }
        Ok(body)
    }

    /// Read a client's current configuration (RFC 7592 §2.1, OIDC DCR §4.2). Any failure is the
    /// same 401 (OIDC DCR §4.4).
    pub async fn read(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let result = async {
            let client = self.authenticate(client_id, token).await?;
            self.client_information(&client)
        }
        .await;
        count_management("read", &result);
        result
    }

    /// Update (RFC 7592 §2.2): the body replaces the metadata as a whole; the client_id stays,
    /// the registration access token rotates. Values fixed by the software statement keep
    /// precedence unless a statement is presented again.
    pub async fn update(
        &self,
        client_id: &str,
        token: Option<&str>,
        request: &Map<String, Value>,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let mut audit = Audit::new("update");
        let result = self
            .update_inner(client_id, token, request, &mut audit)
            .await;
        count_management("update", &result);
        audit.finish(&result);
        result
    }

    async fn update_inner(
        &self,
        client_id: &str,
        token: Option<&str>,
        request: &Map<String, Value>,
        audit: &mut Audit,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let now = now();
        let current = self.authenticate(client_id, token).await?;
        audit.describe(&current);
        let status = self.store()?;

        // 1. RFC 7592 §2.2: what the request must and must not carry.
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
                    "an update must carry the client's client_id (RFC 7592 section 2.2)".into(),
                ))
            }
        }
        if let Some(presented) = request.get("client_secret").filter(|v| !v.is_null()) {
            // R54, R55: the client never chooses its secret; it may only repeat the current one
            let current_secret = self.client_secret(&current)?;
            let matches = match (presented, &current_secret) {
                (Value::String(p), Some(s)) => client_id::secret_matches(s, p),
                _ => false,
            };
            if !matches {
                return Err(RegistrationError::InvalidClientMetadata(
                    "client_secret is not the client's current secret".into(),
                ));
            }
        }

        // 2. The statement: presented again, or the values it fixed before.
        let statement_text = statement_member(request)?;
        let statement = match statement_text {
            Some(text) => Some(self.verify_statement(text, now).await?),
            None => None,
        };
        let (effective, provenance) = match &statement {
            Some(statement) => {
                if let Some(before) = &current.provenance {
                    if before.iss != statement.issuer {
                        return Err(RegistrationError::UnapprovedSoftwareStatement(
                            "the statement comes from another issuer than the client's".into(),
                        ));
                    }
                }
                (
                    statement::merge(request, Some(statement)),
                    Some(provenance(statement)),
                )
            }
            None => {
                let mut effective = statement::merge(request, None);
                let fixed = current
                    .provenance
                    .as_ref()
                    .map(|p| p.fixed.as_slice())
                    .unwrap_or_default();
                let registered = current.metadata.to_json(Form::Full);
                for member in fixed {
                    let Some(value) = registered.get(member) else {
                        continue;
                    };
                    match effective.get(member) {
                        Some(sent) if !sent.is_null() && sent != value => {
                            return Err(RegistrationError::InvalidClientMetadata(format!(
                                "{member} is fixed by the software statement; present a new statement to change it"
                            )))
                        }
                        _ => {
                            effective.insert(member.clone(), value.clone());
                        }
                    }
                }
                (effective, current.provenance.clone())
            }
        };

        // 3. The whole validation of a registration (RFC 7592 §2.2).
        let (md, sector) = self
            .validate(&effective, provenance.as_ref().map(|p| p.iss.as_str()))
            .await?;

        // 4. Record the amendment; the generation check makes concurrent updates safe, and a
        //    revoked client can never be amended back to life.
        let csk = md.needs_secret().then(|| {
            current
                .csk
                .clone()
                .unwrap_or_else(|| self.keys.current().client_secret.active().0.to_owned())
        });
        let amendment = Amendment {
            generation: current.generation + 1,
            metadata: md.to_json(Form::Compact),
            sector: sector.clone(),
            csk: csk.clone(),
            stmt: provenance.clone(),
        };
        let outcome = status
            .write(
                current.jti(),
                current.generation,
                &ClientStatus::Amended(Box::new(amendment)),
                current.claims.exp,
            )
            .await?;
        if outcome != WriteOutcome::Written {
            return Err(RegistrationError::InvalidToken);
        }
        let presented_statement = statement_text.map(str::to_owned);
        let updated = VerifiedClient {
            generation: current.generation + 1,
            metadata: md,
            csk,
            sector,
            provenance,
            ..current.as_ref().clone()
        };
        let mut body = self.client_information(&updated)?;
        if let Some(text) = presented_statement {
            // echoed as at registration (RFC 7591 §3.2.1, R15)
            body.insert("software_statement".into(), Value::String(text));
        }
        Ok(body)
    }

    /// Delete (RFC 7592 §2.3): afterwards the client_id, its secret and its registration access
    /// token all fail. Kept until the client_id's `exp`, forever when it has none.
    pub async fn delete(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<(), RegistrationError> {
        let mut audit = Audit::new("delete");
        let result = self.delete_inner(client_id, token, &mut audit).await;
        count_management("delete", &result);
        audit.finish(&result);
        result
    }

    async fn delete_inner(
        &self,
        client_id: &str,
        token: Option<&str>,
        audit: &mut Audit,
    ) -> Result<(), RegistrationError> {
        let current = self.authenticate(client_id, token).await?;
        audit.describe(&current);
        let status = self.store()?;
        status
            .write(
                current.jti(),
                current.generation,
                &ClientStatus::Revoked,
                current.claims.exp,
            )
            .await?;
        // AlreadyRevoked: a concurrent delete won; the client is gone either way.
        Ok(())
    }

    /// A client as it is now: client_id verified, status record applied (digest D6). Clients
    /// that do not verify or were deleted are `Ok(None)`.
    pub async fn resolve(
        &self,
        client_id: &str,
    ) -> Result<Option<Arc<VerifiedClient>>, RegistrationError> {
        match self.resolver.resolve(client_id).await {
            Ok(client) => Ok(Some(client)),
            Err(ResolveError::Invalid(_)) => Ok(None),
            Err(ResolveError::Store(e)) => Err(e.into()),
        }
    }

    /// Verify a client_id and parse its metadata, without the status record.
    pub fn verify_client_id(&self, client_id: &str) -> Result<Arc<VerifiedClient>, Invalid> {
        self.resolver.verify(client_id)
    }

    /// The resolver OPs use; it shares this registrar's keys and status store.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    fn resolver_for(&self, config: &Config, status: Option<Arc<StatusService>>) -> Resolver {
        Resolver::new(resolver_options(config, &self.keys, status, &self.fetcher))
    }

    /// The configuration endpoint's check (RFC 7592 §2): a valid client_id, not deleted, and the
    /// registration access token of its current generation.
    async fn authenticate(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<Arc<VerifiedClient>, RegistrationError> {
        let token = token.ok_or(RegistrationError::MissingToken)?;
        let client = self
            .resolve(client_id)
            .await?
            .ok_or(RegistrationError::InvalidToken)?;
        let expected = client
            .claims
            .rtk
            .as_deref()
            .and_then(|rtk| {
                client_id::registration_access_token(
                    &self.keys.current(),
                    rtk,
                    client.jti(),
                    client.generation,
                )
            })
            .ok_or(RegistrationError::InvalidToken)?;
        if !client_id::secret_matches(&expected, token) {
            return Err(RegistrationError::InvalidToken);
        }
        Ok(client)
    }

    fn store(&self) -> Result<&Arc<StatusService>, RegistrationError> {
        self.status.as_ref().ok_or_else(|| {
            RegistrationError::Internal("update and delete need management = \"full\"".into())
        })
    }

    async fn verify_statement(
        &self,
        text: &str,
        now: u64,
    ) -> Result<Arc<VerifiedStatement>, RegistrationError> {
        Ok(self
            .issuers
            .verify(text, now, self.clock_skew, self.max_statement_bytes)
            .await?)
    }

    /// Parse, validate and apply issuer policy (digest §1–§8), then fetch and check what the
    /// metadata names (sector_identifier_uri, jwks_uri): the checks registration and update
    /// share.
    async fn validate(
        &self,
        effective: &Map<String, Value>,
        issuer: Option<&str>,
    ) -> Result<(ClientMetadata, Option<String>), RegistrationError> {
        let md = ClientMetadata::parse(effective, &self.rules.policy.default_subject_type)?;
        // Digest §8: issuer policy (step 7) comes before the metadata rules (step 8).
        if let Some(issuer) = issuer {
            self.issuers.approve(issuer, &md)?;
        }
        let validated = metadata::validate(&md, &self.rules)?;
        if let Some(sector_uri) = &md.sector_identifier_uri {
            // OIDC DCR §5: fetched at registration (and update); every redirect URI must be in
            // it. C12: an unusable document is invalid_client_metadata, a missing URI
            // invalid_redirect_uri.
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
            let needs_keys = md.token_endpoint_auth_method == AuthMethod::PrivateKeyJwt
                || [&md.id_token_encryption, &md.userinfo_encryption]
                    .into_iter()
                    .flatten()
                    .any(|e| !metadata::is_symmetric_jwe_alg(&e.alg));
            if needs_keys {
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

    fn client_secret(&self, client: &VerifiedClient) -> Result<Option<String>, RegistrationError> {
        client
            .csk
            .as_deref()
            .map(|csk| {
                client_id::client_secret(&self.keys.current(), csk, client.jti()).ok_or_else(|| {
                    // The key this client's secret derives from was removed from the key set:
                    // the client can no longer authenticate, so it is treated as invalid.
                    tracing::warn!(kid = csk, "client_secret key no longer configured");
                    RegistrationError::InvalidToken
                })
            })
            .transpose()
    }

    /// The client information response (RFC 7591 §3.2.1, RFC 7592 §3).
    fn client_information(
        &self,
        client: &VerifiedClient,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let mut body = client.metadata.to_json(Form::Full);
        body.insert("client_id".into(), Value::String(client.client_id.clone()));
        body.insert("client_id_issued_at".into(), Value::from(client.claims.iat));
        if let Some(secret) = self.client_secret(client)? {
            body.insert("client_secret".into(), Value::String(secret));
            // 0 means it never expires (RFC 7591 §3.2.1); never later than the client_id (R81)
            body.insert(
                "client_secret_expires_at".into(),
                Value::from(client.claims.exp.unwrap_or(0)),
            );
        }
        if let (Some(rtk), false) = (&client.claims.rtk, self.management == Management::None) {
            let rat = client_id::registration_access_token(
                &self.keys.current(),
                rtk,
                client.jti(),
                client.generation,
            )
            .ok_or_else(|| {
                RegistrationError::Internal(
                    "the registration access token key is no longer configured".into(),
                )
            })?;
            body.insert("registration_access_token".into(), Value::String(rat));
            body.insert(
                "registration_client_uri".into(),
                Value::String(format!(
                    "{}/{}",
                    self.registration_endpoint, client.client_id
                )),
            );
        }
        Ok(body)
    }

    /// design.md: `exp` = the earliest of the statement's `exp` and the maximum lifetime.
    fn expiry(&self, now: u64, statement_exp: Option<u64>) -> Option<u64> {
        let policy = (self.max_lifetime > 0).then(|| now.saturating_add(self.max_lifetime));
        match (policy, statement_exp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// OpenID Provider Metadata (OIDC Discovery §3) / RFC 8414: the endpoints and exactly the
    /// values the validator enforces (digest §7.6).
    pub fn discovery(&self) -> Value {
        let p = &self.rules.policy;
        let mut doc = json!({
            "issuer": self.issuer,
            "registration_endpoint": self.registration_endpoint,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": p.response_types,
            "grant_types_supported": p.grant_types,
            "subject_types_supported": p.subject_types,
            "token_endpoint_auth_methods_supported": p.token_endpoint_auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": p.token_endpoint_auth_signing_algs,
            "id_token_signing_alg_values_supported": p.id_token_signing_algs,
            "id_token_encryption_alg_values_supported": p.id_token_encryption_algs,
            "id_token_encryption_enc_values_supported": p.id_token_encryption_encs,
            "userinfo_signing_alg_values_supported": p.userinfo_signing_algs,
            "userinfo_encryption_alg_values_supported": p.userinfo_encryption_algs,
            "userinfo_encryption_enc_values_supported": p.userinfo_encryption_encs,
            "request_object_signing_alg_values_supported": p.request_object_signing_algs,
            "request_object_encryption_alg_values_supported": p.request_object_encryption_algs,
            "request_object_encryption_enc_values_supported": p.request_object_encryption_encs,
            "code_challenge_methods_supported": p.code_challenge_methods,
            "client_id_max_length": self.client_id_max_length,
            "software_statement_required": self.require_statement,
        });
        if let Value::Object(map) = &mut doc {
            let optional = [
                ("scopes_supported", p.scopes.clone().map(Value::from)),
                (
                    "acr_values_supported",
                    p.acr_values.clone().map(Value::from),
                ),
                (
                    "authorization_endpoint",
                    self.authorization_endpoint.clone().map(Value::from),
                ),
                (
                    "token_endpoint",
                    self.token_endpoint.clone().map(Value::from),
                ),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    map.insert(name.into(), value);
                }
            }
        }
        doc
    }

    pub fn jwks(&self) -> Value {
        self.keys.current().public_jwks().clone()
    }
}

/// One audit event per register, update and delete, refused or not: who was admitted and who
/// was refused, without a database (target `audit`, so a log pipeline can route it apart).
struct Audit {
    event: &'static str,
    issuer: Option<String>,
    software_id: Option<String>,
    client: Option<String>,
}

impl Audit {
    fn new(event: &'static str) -> Self {
        Audit {
            event,
            issuer: None,
            software_id: None,
            client: None,
        }
    }

    fn describe(&mut self, client: &VerifiedClient) {
        self.client = Some(client.jti().to_owned());
        self.issuer = client.provenance.as_ref().map(|p| p.iss.clone());
        self.software_id = client.metadata.software_id.clone();
    }

    fn finish<T>(&self, result: &Result<T, RegistrationError>) {
        let (outcome, error) = match result {
            Ok(_) => ("ok", ""),
            Err(e @ (RegistrationError::Internal(_) | RegistrationError::Unavailable(_))) => {
                ("error", e.code())
            }
            Err(e) => ("refused", e.code()),
        };
        if self.event == "register" {
            crate::metrics::METRICS
                .registrations
                .with_label_values(&[outcome, error, self.issuer.as_deref().unwrap_or("")])
                .inc();
        }
        tracing::info!(
            target: "audit",
            event = self.event,
            outcome,
            error,
            issuer = self.issuer.as_deref().unwrap_or(""),
            software_id = self.software_id.as_deref().unwrap_or(""),
            client_jti = self.client.as_deref().unwrap_or(""),
            "{} {}",
            self.event,
            outcome
        );
    }
}

fn count_management<T>(operation: &str, result: &Result<T, RegistrationError>) {
    let (outcome, error) = match result {
        Ok(_) => ("ok", ""),
        Err(e @ (RegistrationError::Internal(_) | RegistrationError::Unavailable(_))) => {
            ("error", e.code())
        }
        Err(e) => ("refused", e.code()),
    };
    if let Err(RegistrationError::Unavailable(_)) = result {
        crate::metrics::METRICS
            .store_errors
            .with_label_values(&[operation])
            .inc();
    }
    crate::metrics::METRICS
        .management
        .with_label_values(&[operation, outcome, error])
        .inc();
}

/// The `software_statement` member: absent, or a string.
fn statement_member(request: &Map<String, Value>) -> Result<Option<&str>, RegistrationError> {
    match request.get("software_statement") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(RegistrationError::InvalidSoftwareStatement(
            "software_statement must be a string holding a JWT".into(),
        )),
    }
}

fn resolver_options(
    config: &Config,
    keys: &KeyRing,
    status: Option<Arc<StatusService>>,
    fetcher: &Fetcher,
) -> ResolverOptions {
    let mut audiences = vec![config.issuer().to_owned()];
    audiences.extend(config.token_endpoint.clone());
    ResolverOptions {
        issuer: config.issuer().to_owned(),
        verifiers: keys.verifiers(),
        status,
        client_secret_keys: Some(keys.client_secret_keys()),
        fetcher: Some(fetcher.clone()),
        audiences,
        cache_entries: config.client_cache_entries,
    }
}

fn provenance(statement: &VerifiedStatement) -> Provenance {
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
    }
}
