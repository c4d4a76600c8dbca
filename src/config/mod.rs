//! Typed configuration: one TOML file, every option with a default that runs out of the box
//! (the development keys in `keys/`). Every option is documented in docs/configuration.md.
//!
//! - this module: the options and their defaults;
//! - [`load`]: reading the file and laying `STATELESS_DCR_*` environment variables over it;
//! - [`policy`]: the `[policy]` section, the values discovery advertises;
//! - [`validate`]: what types alone cannot check.
//!
//! Unknown options and values of the wrong type fail at start-up with the option's name
//! (`deny_unknown_fields`); [`Config::validate`] checks the rest, again naming the option.

mod load;
pub mod policy;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use crate::documents::DocumentsConfig;
use crate::fetch::FetchConfig;
use crate::secret::Secret;
use crate::status::StatusStoreConfig;
use crate::status_list::publish::StatusListConfig;

pub(crate) use load::with_env;
pub use load::ENV_PREFIX;
pub use policy::Policy;
pub(crate) use validate::validate_trusted_issuers;

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

pub(crate) fn invalid(option: impl Into<String>, message: impl Into<String>) -> ConfigError {
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

/// What a registration must present: a software statement (RFC 7591 §2.3), an initial access
/// token (RFC 7591 §3), either, both, or nothing (open registration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationRequires {
    SoftwareStatement,
    InitialAccessToken,
    Either,
    Both,
    Nothing,
}

impl RegistrationRequires {
    pub fn statement(self) -> bool {
        matches!(self, Self::SoftwareStatement | Self::Both)
    }

    pub fn token(self) -> bool {
        matches!(self, Self::InitialAccessToken | Self::Both)
    }

    /// Anyone may register: open registration, with its own guards (docs/mcp.md).
    pub fn is_open(self) -> bool {
        self == Self::Nothing
    }
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
    /// Whether a registration must carry a software statement (yes by default, a project
    /// decision: docs/conformance.md `statement-required-by-default`).
    pub require_software_statement: bool,
    /// What a registration must present; when set, it replaces `require_software_statement`
    /// (see [`Config::requirement`]).
    pub registration_requires: Option<RegistrationRequires>,
    pub management: Management,
    /// Upper bound on a client_id's lifetime in seconds; 0 means no bound (the statement's `exp`
    /// still applies).
    pub max_client_lifetime_secs: u64,
    /// Longest client_id issued, in characters (RFC 6749 §2.2; conformance:
    /// client-id-vschar-and-size).
    pub client_id_max_length: usize,
    /// Largest request body accepted, in bytes.
    pub max_request_bytes: usize,
    /// Largest software statement accepted, in bytes.
    pub max_statement_bytes: usize,
    /// Allowed clock difference for `exp`, `nbf` and `iat` of software statements, in seconds.
    pub clock_skew_secs: u64,
    /// Accept claimed https redirect URIs for native clients (RFC 8252 §7.2; a project decision,
    /// see docs/conformance.md `native-claimed-https`).
    pub allow_native_https_redirects: bool,
    /// Private-use redirect URI schemes accepted for native clients although they are not
    /// reverse domain names (RFC 8252 §7.1 makes that form a SHOULD), such as `cursor`.
    pub allowed_private_use_schemes: Vec<String>,
    /// Upper bound on the lifetime of a client registered without a software statement, in
    /// seconds (0: only `max_client_lifetime_secs` applies). Open registration costs nothing
    /// to store, so what bounds it is that its client_ids expire (docs/mcp.md).
    pub max_open_client_lifetime_secs: u64,
    /// HTTP worker threads; defaults to the number of CPU cores.
    pub workers: Option<usize>,
    /// Entries in the cache of verified software statements (0 disables it).
    pub statement_cache_entries: u64,
    /// Entries in the cache of verified client_ids.
    pub client_cache_entries: u64,
    /// Memory the cache of verified client_ids may take, in bytes (estimated from the size of
    /// each client_id). Default 64 MiB.
    pub client_cache_max_bytes: u64,
    /// Values a signed registration request's `aud` may name besides the registrar's issuer.
    pub signed_request_audiences: Vec<String>,
    /// Longest a signed registration request may live (`exp` - `iat`), in seconds.
    pub signed_request_max_lifetime_secs: u64,
    /// Bearer tokens of the OPs allowed to call `POST /resolve`; empty disables the endpoint.
    pub resolve_api_tokens: Vec<Secret>,
    /// Optional endpoints of the OpenID Provider this registrar serves, published in discovery.
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    /// The OP's mutual-TLS endpoints (RFC 8705 §5), published in discovery with
    /// `tls_client_certificate_bound_access_tokens`: set it when the OP binds tokens to client
    /// certificates.
    pub mtls_endpoint_aliases: Option<std::collections::BTreeMap<String, String>>,
    pub policy: Policy,
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// Where update and delete records live (used with `management = "full"`).
    pub status_store: StatusStoreConfig,
    /// The registrar's Token Status Lists (with `management = "full"`).
    pub status_lists: StatusListConfig,
    /// Bearer tokens of the operators allowed to call the admin API (`/admin/withdrawals`);
    /// empty disables it.
    pub admin_api_tokens: Vec<Secret>,
    /// Client_ids that are https URLs of client ID metadata documents
    /// (draft-ietf-oauth-client-id-metadata-document), resolved at `POST /resolve`.
    pub client_id_metadata_documents: DocumentsConfig,
    /// Outbound fetches: sector_identifier_uri, client and issuer jwks_uri.
    pub fetch: FetchConfig,
    /// Fetch a client's jwks_uri at registration and update, and require a usable public key
    /// in it, when the client uses private_key_jwt or asks for encrypted responses.
    pub check_client_jwks_uri: bool,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    pub shutdown_timeout_secs: u64,
    /// Seconds a client has to send a request's head, and again to send its body; a client
    /// that takes longer gets 408 and its connection is closed, so that idle connections cannot
    /// exhaust the server's.
    pub request_timeout_secs: u64,
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

#[derive(Debug, Clone, Deserialize)]
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
    /// IPv6 clients share a bucket per prefix of this many bits (one subscriber usually holds
    /// a /64). Default 64.
    pub ipv6_prefix_len: u8,
    /// Open registration (no software statement required) without a per-address limit. Unless
    /// this is set, open registration gets [`OPEN_REGISTRATION_PER_ADDRESS`] when
    /// `registration_per_address` is not set.
    pub unlimited_open_registration: bool,
}

/// The per-address registration limit open registration gets by default: a burst of 20, then
/// one every 6 seconds (an MCP client registers once per connection).
pub const OPEN_REGISTRATION_PER_ADDRESS: Limit = Limit {
    burst: 20,
    per_second: 1.0 / 6.0,
};

impl RateLimits {
    /// The per-address registration limit in force: the configured one, else the default of
    /// open registration unless waived.
    pub fn effective_registration_per_address(&self, open: bool) -> Option<Limit> {
        match self.registration_per_address {
            Some(limit) => Some(limit),
            None if open && !self.unlimited_open_registration => {
                Some(OPEN_REGISTRATION_PER_ADDRESS)
            }
            None => None,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            registration_per_address: None,
            registration_per_issuer: None,
            configuration_per_address: None,
            trusted_proxies: Vec::new(),
            ipv6_prefix_len: 64,
            unlimited_open_registration: false,
        }
    }
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
    pub allowed_grant_types: Option<Vec<crate::metadata::GrantType>>,
    /// When set, clients from this issuer may only register these scope values.
    #[serde(default)]
    pub allowed_scopes: Option<Vec<String>>,
    /// Where this issuer's status lists may be fetched from (https URLs; one ending with `/`
    /// allows every URL below it). A statement whose `status` names a list elsewhere is
    /// refused without any fetch; one naming a list here is checked at registration, and its
    /// clients again at every read, update and resolve (draft-ietf-oauth-status-list-18).
    #[serde(default)]
    pub status_list_uris: Vec<String>,
    /// Bounds on how long this issuer's lists are cached, in seconds, in place of
    /// `fetch.status_list_min_cache_secs` and `fetch.status_list_max_cache_secs`.
    #[serde(default)]
    pub status_list_min_cache_secs: Option<u64>,
    #[serde(default)]
    pub status_list_max_cache_secs: Option<u64>,
    /// Whether this issuer's statements may (`allowed`), must (`required`) or must not
    /// (`refused`) come inside a signed registration request (`application/jwt`). Unset, it
    /// is `allowed`, or `required` with the `openbanking-uk` profile (OB DCR 3.3 registers with
    /// signed requests only).
    #[serde(default)]
    pub signed_requests: Option<SignedRequests>,
    /// When set, a statement of this issuer must name this value in its `aud` (a federation
    /// that scopes statements to one registrar).
    #[serde(default)]
    pub audience: Option<String>,
    /// When set, clients from this issuer may only register these `token_endpoint_auth_method`s
    /// (FAPI profiles: `private_key_jwt`, `tls_client_auth`).
    #[serde(default)]
    pub allowed_token_endpoint_auth_methods: Option<Vec<crate::metadata::AuthMethod>>,
    /// When set, the JWS algorithms this issuer's software may register and sign its requests
    /// with (FAPI: `PS256`, `ES256`).
    #[serde(default)]
    pub allowed_signing_algs: Option<Vec<String>>,
    /// When set, clients from this issuer may only register these response types.
    #[serde(default)]
    pub allowed_response_types: Option<Vec<crate::metadata::ResponseType>>,
    /// Clients from this issuer must register `tls_client_certificate_bound_access_tokens:
    /// true` (FAPI 2.0 Security Profile §5.3.2.2: sender-constrained tokens).
    #[serde(default)]
    pub require_certificate_bound_access_tokens: bool,
    /// How this issuer's statements name client metadata: `rfc7591` (the default) or
    /// `openbanking-uk` (the UK Open Banking Directory's SSA; docs/profiles/openbanking-uk.md).
    #[serde(default)]
    pub profile: StatementProfile,
}

impl TrustedIssuer {
    /// `signed_requests` as configured, or the profile's default.
    pub fn signed_requests(&self) -> SignedRequests {
        self.signed_requests.unwrap_or(match self.profile {
            StatementProfile::Rfc7591 => SignedRequests::Allowed,
            StatementProfile::OpenbankingUk => SignedRequests::Required,
        })
    }

    /// An issuer whose keys are in a JWK Set file, with no policy of its own.
    pub fn with_jwks_file(issuer: impl Into<String>, jwks_file: impl Into<PathBuf>) -> Self {
        TrustedIssuer {
            issuer: issuer.into(),
            jwks_file: Some(jwks_file.into()),
            jwks_uri: None,
            allowed_software_ids: None,
            allowed_grant_types: None,
            allowed_scopes: None,
            status_list_uris: Vec::new(),
            status_list_min_cache_secs: None,
            status_list_max_cache_secs: None,
            signed_requests: None,
            audience: None,
            allowed_token_endpoint_auth_methods: None,
            allowed_signing_algs: None,
            allowed_response_types: None,
            require_certificate_bound_access_tokens: false,
            profile: StatementProfile::default(),
        }
    }
}

/// The claim names of a trusted issuer's statements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatementProfile {
    /// Client metadata under its RFC 7591 names (§2.3).
    #[default]
    Rfc7591,
    /// The UK Open Banking Directory's software statement assertion: `software_client_name`,
    /// `software_redirect_uris`, `software_jwks_endpoint`, `software_roles`, `org_id`, ...
    #[serde(rename = "openbanking-uk")]
    OpenbankingUk,
}

/// Whether a trusted issuer's statements come inside signed registration requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignedRequests {
    #[default]
    Allowed,
    Required,
    Refused,
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
            registration_requires: None,
            management: Management::Full,
            max_client_lifetime_secs: 0,
            client_id_max_length: 4096,
            max_request_bytes: 64 * 1024,
            max_statement_bytes: 16 * 1024,
            clock_skew_secs: 60,
            allow_native_https_redirects: true,
            allowed_private_use_schemes: Vec::new(),
            max_open_client_lifetime_secs: 30 * 86_400,
            workers: None,
            statement_cache_entries: 10_000,
            client_cache_entries: 100_000,
            client_cache_max_bytes: 64 * 1024 * 1024,
            signed_request_audiences: Vec::new(),
            signed_request_max_lifetime_secs: 600,
            resolve_api_tokens: Vec::new(),
            authorization_endpoint: None,
            token_endpoint: None,
            mtls_endpoint_aliases: None,
            policy: Policy::default(),
            trusted_issuers: vec![TrustedIssuer::with_jwks_file(
                DEV_AUTHORITY_ISSUER,
                PathBuf::from("keys/dev-authority.jwks.json"),
            )],
            status_store: StatusStoreConfig::default(),
            status_lists: StatusListConfig::default(),
            admin_api_tokens: Vec::new(),
            client_id_metadata_documents: DocumentsConfig::default(),
            fetch: FetchConfig::default(),
            check_client_jwks_uri: true,
            shutdown_timeout_secs: 30,
            request_timeout_secs: 10,
            keys_reload_secs: 10,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            tls: None,
            metrics: MetricsConfig::default(),
            rate_limits: RateLimits::default(),
        }
    }
}

impl Config {
    /// What a registration must present: `registration_requires` when set, else a software
    /// statement or nothing as `require_software_statement` says.
    pub fn requirement(&self) -> RegistrationRequires {
        self.registration_requires
            .unwrap_or(if self.require_software_statement {
                RegistrationRequires::SoftwareStatement
            } else {
                RegistrationRequires::Nothing
            })
    }

    /// The OP endpoints discovery must name for the grant types of `[policy]` but that are not
    /// configured (RFC 8414 §2: the authorization endpoint for redirect-based grants, the token
    /// endpoint unless only implicit is supported).
    pub fn missing_op_endpoints(&self) -> Vec<&'static str> {
        let grants = &self.policy.grant_types;
        let mut missing = Vec::new();
        if self.authorization_endpoint.is_none() && grants.iter().any(|g| g.is_redirect_based()) {
            missing.push("authorization_endpoint");
        }
        if self.token_endpoint.is_none()
            && grants
                .iter()
                .any(|g| *g != crate::metadata::GrantType::Implicit)
        {
            missing.push("token_endpoint");
        }
        missing
    }

    /// The `iss` of client_ids and discovery.
    pub fn issuer(&self) -> &str {
        self.issuer
            .as_deref()
            .unwrap_or_else(|| self.public_url.trim_end_matches('/'))
    }

    /// Whether client_ids get a status list entry and the lists are served: with
    /// `management = "full"` (the status store keeps them) and `status_lists.enabled`.
    pub fn publishes_status_lists(&self) -> bool {
        self.management == Management::Full && self.status_lists.enabled
    }

    /// Whether `public_url` names the local machine (development only).
    pub fn is_local(&self) -> bool {
        Url::parse(&self.public_url).is_ok_and(|u| is_loopback_url(&u))
    }
}

/// Whether a URL's host is the local machine (the one loopback rule of
/// [`crate::metadata::redirect::is_loopback`]).
fn is_loopback_url(url: &Url) -> bool {
    url.host()
        .is_some_and(|h| crate::metadata::redirect::is_loopback(&h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn the_documented_example_configuration_parses_with_the_documented_defaults() {
        let example = include_str!("../../docs/example-config.toml");
        let config = Config::from_toml(example).unwrap();
        // the sections it writes out in full say what the defaults are
        assert_eq!(config.fetch, FetchConfig::default());
        assert_eq!(
            config.client_id_metadata_documents,
            DocumentsConfig::default()
        );
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
        // discovery off a loopback host names the OP's endpoints (RFC 8414 §2)
        let err = public.validate().unwrap_err().to_string();
        assert!(err.contains("`authorization_endpoint`"), "{err}");
        public.authorization_endpoint = Some("https://op.example.com/authorize".into());
        let err = public.validate().unwrap_err().to_string();
        assert!(err.contains("`token_endpoint`"), "{err}");
        public.token_endpoint = Some("https://op.example.com/token".into());
        public.validate().unwrap();
        // a registrar for client_credentials clients only needs no authorization endpoint
        public.authorization_endpoint = None;
        public.policy.grant_types = vec![crate::metadata::GrantType::ClientCredentials];
        public.policy.response_types = Vec::new();
        assert_eq!(public.missing_op_endpoints(), Vec::<&str>::new());
    }

    #[test]
    fn private_use_schemes_must_be_schemes() {
        for bad in ["https", "HTTP", "javascript", "1abc", "cur sor", "", "a/b"] {
            let config = Config {
                allowed_private_use_schemes: vec![bad.into()],
                ..Config::default()
            };
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("allowed_private_use_schemes"), "{bad}: {err}");
        }
        let config = Config {
            allowed_private_use_schemes: vec!["cursor".into(), "vscode".into()],
            ..Config::default()
        };
        config.validate().unwrap();
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
            config.status_store.redis_url.as_ref().map(Secret::expose),
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
    fn debug_output_shows_no_secret() {
        let config = Config::from_toml_with_env(
            None,
            [
                (
                    "STATELESS_DCR_RESOLVE_API_TOKENS".to_owned(),
                    "[\"op-token-0123456789-0123456789-0123456789\"]".to_owned(),
                ),
                (
                    "STATELESS_DCR_STATUS_STORE__REDIS_URL".to_owned(),
                    "redis://user:hunter2-password@redis.internal:6379/0".to_owned(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(config.resolve_api_tokens.len(), 1);
        let shown = format!("{config:?}");
        assert!(!shown.contains("op-token-0123456789"), "{shown}");
        assert!(!shown.contains("hunter2-password"), "{shown}");
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
        for (option, value) in [
            ("grant_types", "[\"magic\"]"),
            ("response_types", "[\"code  token\"]"),
            ("token_endpoint_auth_methods", "[\"tls\"]"),
            ("subject_types", "[\"secret\"]"),
        ] {
            let err = Config::from_toml(&format!("keys = \"k\"\n[policy]\n{option} = {value}\n"))
                .unwrap_err();
            assert!(err.contains(&format!("policy.{option}")), "{err}");
        }
    }
}
