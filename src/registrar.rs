//! The protocol, independent of HTTP: register (RFC 7591 §3, OIDC DCR §3), read (RFC 7592 §2.1,
//! OIDC DCR §4) and client_id verification. Each flow reads top to bottom in one function.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::client_id::{self, ClientIdClaims, ClientIdError, MintError, Provenance};
use crate::config::{Config, Management};
use crate::keys::{KeyError, RegistrarKeys};
use crate::metadata::{self, ClientMetadata, Form, MetadataErrorCode, Rules};
use crate::statement::{self, StatementError, TrustedIssuers, VerifiedStatement};

/// Outcomes of register and read that are not success, each carrying its RFC 7591 §3.2.2 /
/// RFC 6750 §3.1 error code. The HTTP layer maps them to status codes in one place.
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

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("cannot bind {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// A client_id that verified, with its metadata parsed.
#[derive(Debug, Clone)]
pub struct VerifiedClient {
    pub client_id: String,
    pub claims: ClientIdClaims,
    pub metadata: ClientMetadata,
}

/// The registrar: configuration, keys and trusted issuers, shared by every request.
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
    keys: Arc<RegistrarKeys>,
    issuers: TrustedIssuers,
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
    /// Validate the configuration and load every key it names.
    pub fn new(config: &Config) -> Result<Self, StartupError> {
        config.validate()?;
        let keys = RegistrarKeys::load(&config.keys)?;
        let issuers =
            TrustedIssuers::load(&config.trusted_issuers, config.statement_cache_entries)?;
        let base = config.public_url.trim_end_matches('/');
        Ok(Registrar {
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
            keys: Arc::new(keys),
            issuers,
            authorization_endpoint: config.authorization_endpoint.clone(),
            token_endpoint: config.token_endpoint.clone(),
        })
    }

    pub fn keys(&self) -> &RegistrarKeys {
        &self.keys
    }

    pub fn management(&self) -> Management {
        self.management
    }

    pub fn registration_endpoint(&self) -> &str {
        &self.registration_endpoint
    }

    /// Register a client (RFC 7591 §3; digest §8 pipeline). `request` is the JSON object of
    /// the request body. Nothing is written anywhere.
    pub fn register(
        &self,
        request: &Map<String, Value>,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let now = now();

        // 1. The software statement, when present; required unless open registration is on.
        let statement_text = match request.get("software_statement") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                return Err(RegistrationError::InvalidSoftwareStatement(
                    "software_statement must be a string holding a JWT".into(),
                ))
            }
        };
        if statement_text.is_none() && self.require_statement {
            return Err(RegistrationError::InvalidSoftwareStatement(
                "a software statement is required to register with this server".into(),
            ));
        }
        let statement = statement_text
            .map(|s| {
                self.issuers
                    .verify(s, now, self.clock_skew, self.max_statement_bytes)
            })
            .transpose()?;

        // 2. Merge: the statement's claims take precedence over the body (RFC 7591 §2, §3.1.1).
        let effective = statement::merge(request, statement.as_deref());

        // 3. Types, defaults, validation, issuer policy.
        let md = ClientMetadata::parse(&effective, &self.rules.policy.default_subject_type)?;
        let validated = metadata::validate(&md, &self.rules)?;
        if let Some(statement) = &statement {
            self.issuers.approve(statement, &md)?;
        }
        if md.sector_identifier_uri.is_some() {
            // OIDC DCR §5: the document must be fetched and checked at registration. This
            // server does not fetch outbound documents yet, so it cannot accept one.
            return Err(RegistrationError::InvalidClientMetadata(
                "sector_identifier_uri cannot be verified by this server yet; register without it"
                    .into(),
            ));
        }

        // 4. Mint the client_id, derive the secret and the registration access token.
        let exp = self.expiry(now, statement.as_ref().and_then(|s| s.exp));
        let claims = ClientIdClaims {
            iss: self.issuer.clone(),
            jti: client_id::new_jti()?,
            iat: now,
            exp,
            csk: md
                .needs_secret()
                .then(|| self.keys.client_secret.active().0.to_owned()),
            rtk: (self.management != Management::None)
                .then(|| self.keys.registration_access_token.active().0.to_owned()),
            stmt: statement.as_ref().map(|s| provenance(s)),
            sector: validated.sector_host,
            metadata: md.to_json(Form::Compact),
        };
        let client_id = client_id::mint(&self.keys, &claims, self.client_id_max_length)?;
        let client = VerifiedClient {
            client_id,
            claims,
            metadata: md,
        };

        // 5. The response: every registered field, the statement echoed unchanged (R15).
        let mut body = self.client_information(&client, 0)?;
        if let Some(text) = statement_text {
            body.insert("software_statement".into(), Value::String(text.to_owned()));
        }
        Ok(body)
    }

    /// Read a client's current configuration (RFC 7592 §2.1, OIDC DCR §4.2). Any failure is the
    /// same 401 (OIDC DCR §4.4).
    pub fn read(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let token = token.ok_or(RegistrationError::MissingToken)?;
        let client = self
            .verify_client_id(client_id)
            .map_err(|_| RegistrationError::InvalidToken)?;
        let generation = 0;
        let expected = client_id::registration_access_token(&self.keys, &client.claims, generation)
            .ok_or(RegistrationError::InvalidToken)?;
        if !client_id::secret_matches(&expected, token) {
            return Err(RegistrationError::InvalidToken);
        }
        self.client_information(&client, generation)
    }

    /// Verify a client_id and parse its metadata (digest D6).
    pub fn verify_client_id(&self, client_id: &str) -> Result<VerifiedClient, ClientIdError> {
        let claims = client_id::verify(&self.keys, &self.issuer, client_id, now())?;
        // Embedded metadata was validated and signed by this registrar; it is parsed with the
        // spec defaults that the compact form left out.
        let metadata = ClientMetadata::parse(&claims.metadata, "public")
            .map_err(|_| ClientIdError::Malformed)?;
        Ok(VerifiedClient {
            client_id: client_id.to_owned(),
            claims,
            metadata,
        })
    }

    /// The client information response (RFC 7591 §3.2.1, RFC 7592 §3).
    fn client_information(
        &self,
        client: &VerifiedClient,
        generation: u64,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let mut body = client.metadata.to_json(Form::Full);
        body.insert("client_id".into(), Value::String(client.client_id.clone()));
        body.insert("client_id_issued_at".into(), Value::from(client.claims.iat));
        if client.claims.csk.is_some() {
            let secret = client_id::client_secret(&self.keys, &client.claims).ok_or_else(|| {
                RegistrationError::Internal("the client_secret key is no longer configured".into())
            })?;
            body.insert("client_secret".into(), Value::String(secret));
            // 0 means it never expires (RFC 7591 §3.2.1); never later than the client_id (R81)
            body.insert(
                "client_secret_expires_at".into(),
                Value::from(client.claims.exp.unwrap_or(0)),
            );
        }
        if client.claims.rtk.is_some() && self.management != Management::None {
            let rat = client_id::registration_access_token(&self.keys, &client.claims, generation)
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

    pub fn jwks(&self) -> &Value {
        self.keys.public_jwks()
    }
}

fn provenance(statement: &VerifiedStatement) -> Provenance {
    Provenance {
        iss: statement.issuer.clone(),
        sha256: statement.jti.is_none().then(|| statement.digest.clone()),
        jti: statement.jti.clone(),
    }
}
