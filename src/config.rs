//! Typed configuration: one TOML file, every option with a default that runs out of the box
//! (the development keys in `keys/`). Every option is documented in docs/configuration.md.
//!
//! Unknown options and values of the wrong type fail at start-up with the option's name
//! (`deny_unknown_fields`); [`Config::validate`] checks what types cannot, again naming the option.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use crate::fetch::FetchConfig;
use crate::status::{StatusStoreConfig, StoreKind};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("configuration file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("configuration option `{option}`: {message}")]
    Invalid { option: String, message: String },
}

fn invalid(option: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        option: option.into(),
        message: message.into(),
    }
}

/// How much of RFC 7592 is offered at the client configuration endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Management {
    /// Read, update and delete (RFC 7592 §2.1–§2.3); update and delete write to the status store.
    Full,
    /// Read (GET) with the registration access token; update and delete answer 405, and no
    /// status store is opened.
    ReadOnly,
    /// Fully stateless (OIDC DCR §8.2): no registration access token and no
    /// registration_client_uri are issued.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Public base URL of this service; endpoints are published under it.
    pub public_url: String,
    /// The `iss` of issued client_ids and of discovery; defaults to `public_url`.
    pub issuer: Option<String>,
    /// The registrar key set file.
    pub keys: PathBuf,
    /// Whether a registration must carry a software statement (design.md: yes by default).
    pub require_software_statement: bool,
    pub management: Management,
    /// Upper bound on a client_id's lifetime in seconds; 0 means no bound (the statement's `exp`
    /// still applies).
    pub max_client_lifetime_secs: u64,
    /// Longest client_id issued, in characters (digest D5).
    pub client_id_max_length: usize,
    /// Largest request body accepted, in bytes.
    pub max_request_bytes: usize,
    /// Largest software statement accepted, in bytes.
    pub max_statement_bytes: usize,
    /// Allowed clock difference for `exp`, `nbf` and `iat` of software statements, in seconds.
    pub clock_skew_secs: u64,
    /// Accept claimed https redirect URIs for native clients (digest C1, RFC 8252 §7.2).
    pub allow_native_https_redirects: bool,
    /// HTTP worker threads; defaults to the number of CPU cores.
    pub workers: Option<usize>,
    /// Entries in the cache of verified software statements (0 disables it).
    pub statement_cache_entries: u64,
    /// Entries in the cache of verified client_ids.
    pub client_cache_entries: u64,
    /// Bearer tokens of the OPs allowed to call `POST /resolve`; empty disables the endpoint.
    pub resolve_api_tokens: Vec<String>,
    /// Optional endpoints of the OpenID Provider this registrar serves, published in discovery.
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub policy: Policy,
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// Where update and delete records live (used with `management = "full"`).
    pub status_store: StatusStoreConfig,
    /// Outbound fetches: sector_identifier_uri, client and issuer jwks_uri.
    pub fetch: FetchConfig,
    /// Fetch a client's jwks_uri at registration and update, and require a usable public key
    /// in it, when the client uses private_key_jwt or asks for encrypted responses.
    pub check_client_jwks_uri: bool,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    pub shutdown_timeout_secs: u64,
    /// How often the key file is checked for changes, in seconds (0: only on SIGHUP).
    pub keys_reload_secs: u64,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// A tracing filter (`info`, `stateless_dcr=debug,info`); `RUST_LOG` wins when set.
    pub log_level: String,
    /// Built-in HTTPS; without it, run behind a TLS-terminating proxy.
    pub tls: Option<TlsConfig>,
    pub metrics: MetricsConfig,
    pub rate_limits: RateLimits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where the Prometheus endpoint (`GET /metrics`) listens, apart from the public service;
    /// unset: no metrics endpoint.
    pub listen: Option<SocketAddr>,
}

/// One limit: a bucket of `burst` requests refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub burst: u32,
    pub per_second: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Registrations per client address.
    pub registration_per_address: Option<Limit>,
    /// Registrations per (verified) software statement issuer.
    pub registration_per_issuer: Option<Limit>,
    /// Configuration endpoint calls (read, update, delete) per client address.
    pub configuration_per_address: Option<Limit>,
    /// Proxies whose `X-Forwarded-For` is believed; the client address is the rightmost entry
    /// not in this list.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// What discovery advertises and the validator enforces (digest §7.6, O6).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub response_types: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_methods: Vec<String>,
    pub token_endpoint_auth_signing_algs: Vec<String>,
    pub id_token_signing_algs: Vec<String>,
    pub id_token_encryption_algs: Vec<String>,
    pub id_token_encryption_encs: Vec<String>,
    pub userinfo_signing_algs: Vec<String>,
    pub userinfo_encryption_algs: Vec<String>,
    pub userinfo_encryption_encs: Vec<String>,
    pub request_object_signing_algs: Vec<String>,
    pub request_object_encryption_algs: Vec<String>,
    pub request_object_encryption_encs: Vec<String>,
    pub subject_types: Vec<String>,
    /// Subject type of a client that does not ask for one.
    pub default_subject_type: String,
    /// When set, the only scope values a client may register.
    pub scopes: Option<Vec<String>>,
    /// When set, the only `default_acr_values` a client may register.
    pub acr_values: Option<Vec<String>>,
    pub code_challenge_methods: Vec<String>,
}

/// A software statement issuer this registrar trusts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// The statement's `iss`, compared exactly.
    pub issuer: String,
    /// The issuer's public JWK Set, from a file...
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// ...or fetched from this https URL (cached per its Cache-Control, refetched once when a
    /// statement names an unknown kid).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// When set, only statements with one of these `software_id` values are approved.
    #[serde(default)]
    pub allowed_software_ids: Option<Vec<String>>,
    /// When set, clients from this issuer may only register these grant types.
    #[serde(default)]
    pub allowed_grant_types: Option<Vec<String>>,
    /// When set, clients from this issuer may only register these scope values.
    #[serde(default)]
    pub allowed_scopes: Option<Vec<String>>,
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

const SIGNING_ALGS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl Default for Policy {
    fn default() -> Self {
        let signing = || {
            let mut algs = strings(&SIGNING_ALGS);
            algs.push("HS256".into());
            algs
        };
        let encryption_algs = strings(&[
            "RSA-OAEP",
            "RSA-OAEP-256",
            "ECDH-ES",
            "ECDH-ES+A128KW",
            "ECDH-ES+A256KW",
            "A128KW",
            "A256KW",
            "dir",
        ]);
        let encs = strings(&["A128CBC-HS256", "A256CBC-HS512", "A128GCM", "A256GCM"]);
        let mut id_token_signing = signing();
        id_token_signing.push("none".into());
        let mut request_object_signing = signing();
        request_object_signing.push("none".into());
        Policy {
            response_types: strings(&[
                "code",
                "id_token",
                "id_token token",
                "code id_token",
                "code token",
                "code id_token token",
            ]),
            grant_types: strings(&[
                "authorization_code",
                "implicit",
                "refresh_token",
                "client_credentials",
            ]),
            token_endpoint_auth_methods: strings(&[
                "client_secret_basic",
                "client_secret_post",
                "client_secret_jwt",
                "private_key_jwt",
                "none",
            ]),
            token_endpoint_auth_signing_algs: signing(),
            id_token_signing_algs: id_token_signing,
            id_token_encryption_algs: encryption_algs.clone(),
            id_token_encryption_encs: encs.clone(),
            userinfo_signing_algs: signing(),
            userinfo_encryption_algs: encryption_algs.clone(),
            userinfo_encryption_encs: encs.clone(),
            request_object_signing_algs: request_object_signing,
            request_object_encryption_algs: encryption_algs,
            request_object_encryption_encs: encs,
            subject_types: strings(&["public", "pairwise"]),
            default_subject_type: "public".into(),
            scopes: None,
            acr_values: None,
            code_challenge_methods: strings(&["S256"]),
        }
    }
}

/// The development defaults: loopback only, trusting the development federation authority whose
/// keys are in `keys/` (never for production; docs/security.md).
pub const DEV_AUTHORITY_ISSUER: &str = "https://federation.dev.example";

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            issuer: None,
            keys: PathBuf::from("keys/dev-registrar-keys.json"),
            require_software_statement: true,
            management: Management::Full,
            max_client_lifetime_secs: 0,
            client_id_max_length: 4096,
            max_request_bytes: 64 * 1024,
            max_statement_bytes: 16 * 1024,
            clock_skew_secs: 60,
            allow_native_https_redirects: true,
            workers: None,
            statement_cache_entries: 10_000,
            client_cache_entries: 100_000,
            resolve_api_tokens: Vec::new(),
            authorization_endpoint: None,
            token_endpoint: None,
            policy: Policy::default(),
            trusted_issuers: vec![TrustedIssuer {
                issuer: DEV_AUTHORITY_ISSUER.into(),
                jwks_file: Some(PathBuf::from("keys/dev-authority.jwks.json")),
                jwks_uri: None,
                allowed_software_ids: None,
                allowed_grant_types: None,
                allowed_scopes: None,
            }],
            status_store: StatusStoreConfig::default(),
            fetch: FetchConfig::default(),
            check_client_jwks_uri: true,
            shutdown_timeout_secs: 30,
            keys_reload_secs: 10,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            tls: None,
            metrics: MetricsConfig::default(),
            rate_limits: RateLimits::default(),
        }
    }
}

/// Values every algorithm list may contain, so that a typo fails at start-up instead of making
/// every registration that names the intended value fail.
const KNOWN_JWS_ALGS: [&str; 14] = [
    "none", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA",
];
const KNOWN_JWE_ALGS: [&str; 17] = [
    "RSA1_5",
    "RSA-OAEP",
    "RSA-OAEP-256",
    "A128KW",
    "A192KW",
    "A256KW",
    "dir",
    "ECDH-ES",
    "ECDH-ES+A128KW",
    "ECDH-ES+A192KW",
    "ECDH-ES+A256KW",
    "A128GCMKW",
    "A192GCMKW",
    "A256GCMKW",
    "PBES2-HS256+A128KW",
    "PBES2-HS384+A192KW",
    "PBES2-HS512+A256KW",
];
const KNOWN_JWE_ENCS: [&str; 6] = [
    "A128CBC-HS256",
    "A192CBC-HS384",
    "A256CBC-HS512",
    "A128GCM",
    "A192GCM",
    "A256GCM",
];

impl Config {
    /// Read a TOML file. Relative paths in it are taken relative to the file's directory.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Self::load(Some(path), std::iter::empty())
    }

    /// The configuration of `serve`: the file (if any) with the environment variables laid over
    /// it, or the development defaults with the environment laid over them.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Self::from_toml_with_env(None, env).map_err(|message| ConfigError::Parse {
                path: "(defaults)".into(),
                message,
            });
        };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut config =
            Self::from_toml_with_env(Some(&text), env).map_err(|message| ConfigError::Parse {
                path: shown,
                message,
            })?;
        if let Some(dir) = path.parent() {
            config.resolve_paths(dir);
        }
        Ok(config)
    }

    /// Parse a configuration file's text. Unlike [`Config::default`], a file never falls back
    /// on the development keys or the development authority: it must name its `keys`, and it
    /// trusts only the issuers it lists.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        Self::from_toml_with_env(Some(text), std::iter::empty())
    }

    /// The configuration from an optional file's text with environment variables laid over it
    /// (`STATELESS_DCR_<OPTION>`, `__` between the parts of a nested option:
    /// `STATELESS_DCR_STATUS_STORE__REDIS_URL`). A value is read as TOML when it parses as one
    /// (`true`, `5`, `["a", "b"]`) and as a plain string otherwise. Without a file, the
    /// development defaults apply underneath.
    pub fn from_toml_with_env(
        text: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, String> {
        let parse_error = |e: toml::de::Error| e.to_string().trim_end().to_owned();
        let from_file = text.is_some();
        let mut table: toml::Table = match text {
            Some(text) => toml::from_str(text).map_err(parse_error)?,
            None => toml::Table::new(),
        };
        let mut overridden = false;
        for (name, value) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
            set_path(&mut table, &parts, env_value(&value))
                .map_err(|e| format!("environment variable {name}: {e}"))?;
            overridden = true;
        }
        let merged;
        let text = match (text, overridden) {
            (Some(text), false) => text,
            _ => {
                merged = table.to_string();
                &merged
            }
        };
        let mut config: Config = toml::from_str(text).map_err(parse_error)?;
        if !from_file {
            // no file: the development defaults, with whatever the environment set
            return Ok(config);
        }
        if !table.contains_key("keys") {
            return Err("the option `keys` is required in a configuration file (the registrar key set; make one with `stateless-dcr keys generate`)".into());
        }
        if !table.contains_key("trusted_issuers") {
            config.trusted_issuers.clear();
        }
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.keys);
        resolve(&mut self.status_store.path);
        if let Some(tls) = &mut self.tls {
            resolve(&mut tls.cert_file);
            resolve(&mut tls.key_file);
        }
        if let Some(ca) = &mut self.fetch.extra_root_ca_file {
            resolve(ca);
        }
        for issuer in &mut self.trusted_issuers {
            if let Some(file) = &mut issuer.jwks_file {
                resolve(file);
            }
        }
    }

    /// The `iss` of client_ids and discovery.
    pub fn issuer(&self) -> &str {
        self.issuer
            .as_deref()
            .unwrap_or_else(|| self.public_url.trim_end_matches('/'))
    }

    /// Whether `public_url` names the local machine (development only).
    pub fn is_local(&self) -> bool {
        Url::parse(&self.public_url).is_ok_and(|u| is_loopback_host(&u))
    }

    /// Checks that types alone cannot express; each error names its option.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let public =
            Url::parse(&self.public_url).map_err(|e| invalid("public_url", e.to_string()))?;
        if public.query().is_some() || public.fragment().is_some() {
            return Err(invalid("public_url", "must not have a query or fragment"));
        }
        // Registration endpoints must be https (RFC 7591 §5, OIDC Disc §3, digest R73); plain
        // http is allowed only on a loopback host, for development.
        match public.scheme() {
            "https" => {}
            "http" if is_loopback_host(&public) => {}
            _ => {
                return Err(invalid(
                    "public_url",
                    "must be https (http is allowed only for a loopback host, for development)",
                ))
            }
        }
        if let Some(issuer) = &self.issuer {
            let url = Url::parse(issuer).map_err(|e| invalid("issuer", e.to_string()))?;
            if url.scheme() != "https" && !is_loopback_host(&url) {
                // OIDC Discovery §3: the issuer is an https URL
                return Err(invalid("issuer", "must be an https URL"));
            }
        }
        if !is_loopback_host(&public)
            && self
                .trusted_issuers
                .iter()
                .any(|i| i.issuer == DEV_AUTHORITY_ISSUER)
        {
            return Err(invalid(
                "trusted_issuers",
                "the development authority (whose private key is published) may only be trusted on a loopback public_url",
            ));
        }
        for (name, value) in [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
        ] {
            if let Some(value) = value {
                Url::parse(value).map_err(|e| invalid(name, e.to_string()))?;
            }
        }
        if !(512..=65536).contains(&self.client_id_max_length) {
            return Err(invalid(
                "client_id_max_length",
                "must be between 512 and 65536 characters",
            ));
        }
        if self.max_request_bytes < 1024 {
            return Err(invalid("max_request_bytes", "must be at least 1024"));
        }
        if self.max_statement_bytes < 256 || self.max_statement_bytes > self.max_request_bytes {
            return Err(invalid(
                "max_statement_bytes",
                "must be at least 256 and at most max_request_bytes",
            ));
        }
        if self.clock_skew_secs > 600 {
            return Err(invalid("clock_skew_secs", "must be at most 600 seconds"));
        }
        if self.workers == Some(0) {
            return Err(invalid("workers", "must be at least 1"));
        }
        self.policy.validate()?;
        if self.require_software_statement && self.trusted_issuers.is_empty() {
            return Err(invalid(
                "trusted_issuers",
                "no issuer is trusted while require_software_statement is true: nobody could register",
            ));
        }
        if self.resolve_api_tokens.iter().any(|t| t.len() < 32) {
            return Err(invalid(
                "resolve_api_tokens",
                "every token must be at least 32 characters (make one with `openssl rand -base64 32`)",
            ));
        }
        let limits = &self.rate_limits;
        for (name, limit) in [
            ("registration_per_address", &limits.registration_per_address),
            ("registration_per_issuer", &limits.registration_per_issuer),
            (
                "configuration_per_address",
                &limits.configuration_per_address,
            ),
        ] {
            if let Some(limit) = limit {
                if limit.burst == 0 || !(limit.per_second > 0.0 && limit.per_second.is_finite()) {
                    return Err(invalid(
                        format!("rate_limits.{name}"),
                        "burst must be at least 1 and per_second a positive number",
                    ));
                }
            }
        }
        if self.metrics.listen.is_some_and(|m| m == self.listen) {
            return Err(invalid(
                "metrics.listen",
                "must differ from listen: metrics stay off the public registration service",
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map_err(|e| invalid("log_level", e.to_string()))?;
        let store = &self.status_store;
        if store.kind == StoreKind::Redis {
            match store.redis_url.as_deref().map(Url::parse) {
                // no rediss://: this build has no TLS for Redis; use a private network or a tunnel
                Some(Ok(url)) if matches!(url.scheme(), "redis" | "redis+unix" | "unix") => {}
                Some(_) => {
                    return Err(invalid(
                        "status_store.redis_url",
                        "must be a redis://, redis+unix:// or unix:// URL (TLS to Redis is not built in)",
                    ))
                }
                None => {
                    return Err(invalid(
                        "status_store.redis_url",
                        "is required when status_store.kind = \"redis\"",
                    ))
                }
            }
        }
        if !(1..=3600).contains(&store.cache_ttl_secs) {
            return Err(invalid(
                "status_store.cache_ttl_secs",
                "must be between 1 and 3600 seconds",
            ));
        }
        if store.redis_timeout_ms == 0 {
            return Err(invalid(
                "status_store.redis_timeout_ms",
                "must be at least 1",
            ));
        }
        for (index, issuer) in self.trusted_issuers.iter().enumerate() {
            if issuer.jwks_file.is_some() == issuer.jwks_uri.is_some() {
                return Err(invalid(
                    format!("trusted_issuers[{index}]"),
                    "set exactly one of jwks_file and jwks_uri",
                ));
            }
            if let Some(uri) = &issuer.jwks_uri {
                if !uri.starts_with("https://") {
                    return Err(invalid(
                        format!("trusted_issuers[{index}].jwks_uri"),
                        "must be an https URL",
                    ));
                }
            }
            if issuer.issuer.is_empty() {
                return Err(invalid(
                    format!("trusted_issuers[{index}].issuer"),
                    "must not be empty",
                ));
            }
            if self.trusted_issuers[..index]
                .iter()
                .any(|other| other.issuer == issuer.issuer)
            {
                return Err(invalid(
                    format!("trusted_issuers[{index}].issuer"),
                    format!("{:?} is listed twice", issuer.issuer),
                ));
            }
        }
        Ok(())
    }
}

impl Policy {
    fn validate(&self) -> Result<(), ConfigError> {
        let check = |option: &str, values: &[String], known: &[&str]| match values
            .iter()
            .find(|v| !known.contains(&v.as_str()))
        {
            Some(bad) => Err(invalid(
                format!("policy.{option}"),
                format!("unknown value {bad:?}"),
            )),
            None => Ok(()),
        };
        // response types are space-separated token sets (RFC 6749 §3.1.1)
        for value in &self.response_types {
            let ok = !value.is_empty()
                && value
                    .split(' ')
                    .all(|t| matches!(t, "code" | "id_token" | "token" | "none"));
            if !ok {
                return Err(invalid(
                    "policy.response_types",
                    format!("unknown value {value:?}"),
                ));
            }
        }
        check(
            "grant_types",
            &self.grant_types,
            &[
                "authorization_code",
                "implicit",
                "refresh_token",
                "client_credentials",
                "password",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "urn:ietf:params:oauth:grant-type:saml2-bearer",
                "urn:ietf:params:oauth:grant-type:device_code",
                "urn:openid:params:grant-type:ciba",
            ],
        )?;
        check(
            "token_endpoint_auth_methods",
            &self.token_endpoint_auth_methods,
            &[
                "none",
                "client_secret_basic",
                "client_secret_post",
                "client_secret_jwt",
                "private_key_jwt",
            ],
        )?;
        if self
            .token_endpoint_auth_signing_algs
            .iter()
            .any(|a| a == "none")
        {
            // RFC 8414 §2: never "none"
            return Err(invalid(
                "policy.token_endpoint_auth_signing_algs",
                "must not contain \"none\"",
            ));
        }
        check(
            "token_endpoint_auth_signing_algs",
            &self.token_endpoint_auth_signing_algs,
            &KNOWN_JWS_ALGS,
        )?;
        check(
            "id_token_signing_algs",
            &self.id_token_signing_algs,
            &KNOWN_JWS_ALGS,
        )?;
        check(
            "userinfo_signing_algs",
            &self.userinfo_signing_algs,
            &KNOWN_JWS_ALGS,
        )?;
        check(
            "request_object_signing_algs",
            &self.request_object_signing_algs,
            &KNOWN_JWS_ALGS,
        )?;
        check(
            "id_token_encryption_algs",
            &self.id_token_encryption_algs,
            &KNOWN_JWE_ALGS,
        )?;
        check(
            "userinfo_encryption_algs",
            &self.userinfo_encryption_algs,
            &KNOWN_JWE_ALGS,
        )?;
        check(
            "request_object_encryption_algs",
            &self.request_object_encryption_algs,
            &KNOWN_JWE_ALGS,
        )?;
        check(
            "id_token_encryption_encs",
            &self.id_token_encryption_encs,
            &KNOWN_JWE_ENCS,
        )?;
        check(
            "userinfo_encryption_encs",
            &self.userinfo_encryption_encs,
            &KNOWN_JWE_ENCS,
        )?;
        check(
            "request_object_encryption_encs",
            &self.request_object_encryption_encs,
            &KNOWN_JWE_ENCS,
        )?;
        check(
            "subject_types",
            &self.subject_types,
            &["public", "pairwise"],
        )?;
        if !self.subject_types.contains(&self.default_subject_type) {
            return Err(invalid(
                "policy.default_subject_type",
                "must be one of policy.subject_types",
            ));
        }
        if !self.id_token_signing_algs.iter().any(|a| a == "RS256") {
            // OIDC Discovery §3: RS256 must be supported for ID Tokens, and it is the default of
            // id_token_signed_response_alg (OIDC DCR §2).
            return Err(invalid(
                "policy.id_token_signing_algs",
                "must contain RS256 (OIDC Discovery §3)",
            ));
        }
        if self.response_types.is_empty() || self.grant_types.is_empty() {
            return Err(invalid(
                "policy.response_types",
                "response_types and grant_types must not be empty",
            ));
        }
        if self.token_endpoint_auth_methods.is_empty() {
            return Err(invalid(
                "policy.token_endpoint_auth_methods",
                "must not be empty",
            ));
        }
        if let Some(scopes) = &self.scopes {
            if let Some(bad) = scopes.iter().find(|s| !crate::metadata::is_scope_token(s)) {
                return Err(invalid(
                    "policy.scopes",
                    format!("{bad:?} is not a scope token"),
                ));
            }
        }
        Ok(())
    }
}

/// Prefix of environment variables that set options.
pub const ENV_PREFIX: &str = "STATELESS_DCR_";

fn env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(table: &mut toml::Table, parts: &[String], value: toml::Value) -> Result<(), String> {
    match parts {
        [] => Err("no option named".into()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(inner) => set_path(inner, rest, value),
                _ => Err(format!("`{first}` is not a section")),
            }
        }
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn unknown_option_is_named() {
        let err = Config::from_toml("keys = \"k\"\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n")
            .unwrap_err();
        assert!(err.contains("listen_port"), "{err}");
        let err = Config::from_toml("keys = \"k\"\n[policy]\nresponse_type = []\n").unwrap_err();
        assert!(err.contains("response_type"), "{err}");
    }

    #[test]
    fn a_file_never_falls_back_on_development_material() {
        let err = Config::from_toml("listen = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.contains("`keys`"), "{err}");
        let config = Config::from_toml("keys = \"k\"\n").unwrap();
        assert!(config.trusted_issuers.is_empty());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("trusted_issuers"), "{err}");
        let mut public = Config {
            public_url: "https://registrar.example.com".into(),
            ..Config::default()
        };
        let err = public.validate().unwrap_err().to_string();
        assert!(err.contains("development authority"), "{err}");
        public.trusted_issuers[0].issuer = "https://federation.example.com".into();
        public.validate().unwrap();
    }

    #[test]
    fn environment_variables_set_options() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let config = Config::from_toml_with_env(
            Some("keys = \"k\"\nlisten = \"127.0.0.1:1\"\n"),
            env(&[
                ("STATELESS_DCR_LISTEN", "127.0.0.1:2"),
                (
                    "STATELESS_DCR_STATUS_STORE__REDIS_URL",
                    "redis://127.0.0.1:6379/",
                ),
                ("STATELESS_DCR_POLICY__SCOPES", "[\"openid\"]"),
                ("STATELESS_DCR_REQUIRE_SOFTWARE_STATEMENT", "false"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 2);
        assert_eq!(
            config.status_store.redis_url.as_deref(),
            Some("redis://127.0.0.1:6379/")
        );
        assert_eq!(config.policy.scopes, Some(vec!["openid".to_owned()]));
        assert!(!config.require_software_statement);
        let err =
            Config::from_toml_with_env(None, env(&[("STATELESS_DCR_NO_SUCH", "1")])).unwrap_err();
        assert!(err.contains("no_such"), "{err}");
        let defaults =
            Config::from_toml_with_env(None, env(&[("STATELESS_DCR_WORKERS", "3")])).unwrap();
        assert_eq!(defaults.workers, Some(3));
        assert_eq!(defaults.trusted_issuers[0].issuer, DEV_AUTHORITY_ISSUER);
    }

    #[test]
    fn invalid_value_is_named() {
        let err = Config::from_toml("keys = \"k\"\nclient_id_max_length = \"long\"\n").unwrap_err();
        assert!(err.contains("client_id_max_length"), "{err}");
        let config =
            Config::from_toml("keys = \"k\"\npublic_url = \"http://rp.example.com\"\n").unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("public_url"), "{err}");
        let config =
            Config::from_toml("keys = \"k\"\n[policy]\nid_token_signing_algs = [\"RS265\"]\n")
                .unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("policy.id_token_signing_algs"), "{err}");
    }
}
