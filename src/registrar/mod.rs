//! The protocol, independent of HTTP: register (RFC 7591 §3, OIDC DCR §3), read, update and
//! delete (RFC 7592 §2, OIDC DCR §4), and client resolution for the configuration endpoint.
//!
//! Each flow reads top to bottom in one function of its own module: [`register`], [`read`],
//! [`update`], [`delete`]. The checks they share are in `checks`, the audit events and metrics
//! in `audit`, the response in [`response`], the discovery document in [`discovery`].

mod audit;
mod checks;
mod delete;
pub mod discovery;
mod error;
mod initial_access;
mod openbanking;
mod read;
mod register;
pub mod response;
pub mod rules;
mod signed_request;
mod update;
mod withdraw;

use std::sync::Arc;

pub(crate) use checks::provenance as provenance_of;
pub use discovery::Discovery;
pub use error::RegistrationError;
pub use register::RegistrationBody;
pub use response::ClientInformation;
pub use withdraw::{WithdrawalError, WithdrawalRequest};

use crate::clock::SharedClock;
use crate::config::{Config, ConfigError, Management};
use crate::documents::MetadataDocuments;
use crate::fetch::Fetcher;
use crate::keys::{KeyRing, RegistrarKeys};
use crate::ratelimit::RateLimiter;
use crate::resolve::{ListChecks, ResolveError, Resolver, ResolverOptions, VerifiedClient};
use crate::startup::StartupError;
use crate::statement::TrustedIssuers;
use crate::status::{EntryChange, StatusService};
use crate::status_list::client::StatusListClient;
use crate::status_list::publish::{self, ListPublisher};

/// The URLs this registrar publishes, derived once from `public_url`.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    /// The `iss` of client_ids and discovery.
    pub(crate) issuer: String,
    pub(crate) registration: String,
    pub(crate) jwks: String,
    /// The URI prefix of this registrar's status lists (`{public_url}/status-lists/`).
    pub(crate) status_lists: String,
    pub(crate) status_list_aggregation: String,
}

/// The registrar: its configuration, keys, trusted issuers and status store.
#[derive(Debug)]
pub struct Registrar {
    /// The validated configuration: the one source of every option.
    config: Config,
    endpoints: Endpoints,
    keys: KeyRing,
    clock: SharedClock,
    status: Option<Arc<StatusService>>,
    /// The status lists this registrar publishes, with `management = "full"`.
    lists: Option<Arc<ListPublisher>>,
    resolver: Resolver,
    /// The metadata rules of registration, update and metadata documents.
    rules: Arc<rules::MetadataRules>,
    issuer_limit: Option<RateLimiter>,
    /// Initial access tokens verified lately, by token: one token usually registers many
    /// clients (initial_access.rs).
    verified_tokens: moka::sync::Cache<String, Arc<crate::iat::TokenClaims>>,
    /// Signed registration requests seen, by statement issuer and `jti` (signed_request.rs).
    seen_requests: moka::sync::Cache<String, u64>,
    discovery: Discovery,
}

impl Registrar {
    /// Validate the configuration, load every key it names, and open the status store when
    /// update and delete are offered (`management = "full"`).
    pub async fn open(config: &Config) -> Result<Self, StartupError> {
        Self::open_with_clock(config, crate::clock::system()).await
    }

    /// [`Registrar::open`] with a time source of the caller's (tests set the time).
    pub async fn open_with_clock(
        config: &Config,
        clock: SharedClock,
    ) -> Result<Self, StartupError> {
        let parts = Parts::load(config)?;
        let status = match config.management {
            Management::Full => Some(
                StatusService::open(&config.status_store, parts.keys.clone(), clock.clone())
                    .await?,
            ),
            Management::ReadOnly | Management::None => None,
        };
        let lists = match &status {
            Some(store) if config.publishes_status_lists() => Some(
                ListPublisher::start(
                    config.status_lists.clone(),
                    &config.public_url,
                    store.clone(),
                    parts.keys.clone(),
                    clock.clone(),
                )
                .await?,
            ),
            _ => None,
        };
        Ok(parts.assemble(config, status, lists, clock))
    }

    /// Everything but the status store: for tools that only verify client_ids.
    pub fn without_store(config: &Config) -> Result<Self, StartupError> {
        Ok(Parts::load(config)?.assemble(config, None, None, crate::clock::system()))
    }

    /// The status lists this registrar publishes, if it does.
    pub fn status_lists(&self) -> Option<&Arc<ListPublisher>> {
        self.lists.as_ref()
    }

    /// The status list entry a write of `value` changes for `client`, when its client_id has
    /// one in this registrar's lists.
    pub(crate) fn list_entry(&self, client: &VerifiedClient, value: u8) -> Option<EntryChange> {
        let status = client.claims.status.as_ref()?;
        let entry = publish::entry_in(&self.endpoints.status_lists, &status.status_list, value);
        if entry.is_none() {
            // issued under another public_url: its list here cannot show the change
            tracing::warn!(
                uri = %status.status_list.uri,
                "the client's status list is not one of this registrar's; its entry is not changed"
            );
        }
        entry
    }

    /// The key set in force now.
    pub fn keys(&self) -> Arc<RegistrarKeys> {
        self.keys.snapshot()
    }

    /// Install a new key set without a restart (key rotation): new client_ids are signed with
    /// its active key; client_ids signed by a key it still lists keep verifying.
    pub fn replace_keys(&self, keys: RegistrarKeys) {
        self.keys.replace(keys);
        self.resolver.clear_cache();
        // withdrawals signed by the previous key are signed again while it is still listed
        if let (Some(store), Ok(runtime)) =
            (self.status.clone(), tokio::runtime::Handle::try_current())
        {
            let keys = self.keys.snapshot();
            runtime.spawn(async move {
                match store.resign_withdrawals(&keys).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(withdrawals = n, "withdrawals signed again with the new key"),
                    Err(e) => tracing::error!(error = %e, "cannot sign the withdrawals again with the new key; keep the old key listed until this succeeds"),
                }
            });
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn management(&self) -> Management {
        self.config.management
    }

    pub fn registration_endpoint(&self) -> &str {
        &self.endpoints.registration
    }

    pub fn status_service(&self) -> Option<&Arc<StatusService>> {
        self.status.as_ref()
    }

    /// The resolver OPs use; it shares this registrar's keys and status store.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// A client as it is now: client_id verified, status record applied. Clients that do not
    /// verify or were deleted are `Ok(None)`.
    pub async fn resolve(
        &self,
        client_id: &str,
    ) -> Result<Option<Arc<VerifiedClient>>, RegistrationError> {
        match self.resolver.resolve(client_id).await {
            Ok(client) => Ok(Some(client)),
            Err(ResolveError::InvalidClient(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Verify a client_id and parse its metadata, without the status record.
    pub fn verify_client_id(&self, client_id: &str) -> Result<Arc<VerifiedClient>, ResolveError> {
        self.resolver.verify(client_id)
    }

    /// The metadata document of both well-known paths.
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// The public keys that verify client_ids, for `/jwks`.
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.snapshot().public_jwks().clone()
    }
}

/// What a registrar is made of before its status store is opened.
struct Parts {
    keys: KeyRing,
    fetcher: Fetcher,
    issuers: Arc<TrustedIssuers>,
}

impl Parts {
    fn load(config: &Config) -> Result<Self, StartupError> {
        config.validate()?;
        let keys = RegistrarKeys::load(&config.keys)?;
        if keys.development_only && !config.is_local() {
            return Err(ConfigError::Invalid {
                option: "keys".into(),
                message: "this key set is marked development_only (its private keys are published); generate your own with `stateless-dcr keys generate`".into(),
            }
            .into());
        }
        let fetcher = Fetcher::new(config.fetch.clone()).map_err(|e| ConfigError::Invalid {
            option: "fetch".into(),
            message: e.to_string(),
        })?;
        let issuers = TrustedIssuers::load(
            &config.trusted_issuers,
            config.statement_cache_entries,
            &fetcher,
        )?;
        Ok(Parts {
            keys: KeyRing::new(keys),
            fetcher,
            issuers: Arc::new(issuers),
        })
    }

    fn assemble(
        self,
        config: &Config,
        status: Option<Arc<StatusService>>,
        lists: Option<Arc<ListPublisher>>,
        clock: SharedClock,
    ) -> Registrar {
        let base = config.public_url.trim_end_matches('/');
        let endpoints = Endpoints {
            issuer: config.issuer().to_owned(),
            registration: format!("{base}/register"),
            jwks: format!("{base}/jwks"),
            status_lists: publish::list_base(base),
            status_list_aggregation: format!("{base}/status-lists"),
        };
        let list_client = Arc::new(StatusListClient::new(
            self.fetcher.clone(),
            None,
            clock.clone(),
        ));
        // client assertions name the OP: its issuer, or its token endpoint (RFC 7523 §3)
        let mut audiences = vec![endpoints.issuer.clone()];
        audiences.extend(config.token_endpoint.clone());
        let rules = Arc::new(rules::MetadataRules::new(
            config,
            self.issuers.clone(),
            self.fetcher.clone(),
            list_client.clone(),
        ));
        let documents = MetadataDocuments::new(
            config.client_id_metadata_documents.clone(),
            rules.clone(),
            self.fetcher.clone(),
            clock.clone(),
        );
        let resolver = Resolver::new(ResolverOptions {
            issuer: endpoints.issuer.clone(),
            keys: self.keys.clone().into(),
            status: status.clone(),
            fetcher: Some(self.fetcher.clone()),
            audiences,
            cache_entries: config.client_cache_entries,
            cache_max_bytes: config.client_cache_max_bytes,
            clock: clock.clone(),
            lists: Some(ListChecks {
                client: list_client.clone(),
                // the store is this registrar's authority on its own clients
                registrar_lists: false,
                issuers: Some(self.issuers.clone()),
                amendments: None,
            }),
        })
        .with_metadata_documents(documents);
        Registrar {
            seen_requests: signed_request::seen_requests(clock.clone(), config.clock_skew_secs),
            discovery: Discovery::new(config, &endpoints),
            config: config.clone(),
            endpoints,
            keys: self.keys,
            clock,
            status,
            lists,
            resolver,
            rules,
            issuer_limit: config
                .rate_limits
                .registration_per_issuer
                .map(RateLimiter::new),
            verified_tokens: moka::sync::Cache::builder()
                .max_capacity(initial_access::VERIFIED_TOKENS)
                .time_to_live(initial_access::VERIFIED_TOKEN_TTL)
                .build(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_the_registrar_holds_no_secret() {
        // the development key file: its private parts are published, which makes them easy to
        // look for
        let config = Config {
            resolve_api_tokens: vec!["op-token-0123456789-0123456789-0123456789".into()],
            ..Config::default()
        };
        let registrar = Registrar::without_store(&config).unwrap();
        let shown = format!("{registrar:?}");
        let file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config.keys).unwrap()).unwrap();
        let mut secrets = vec![file["signing"]["keys"][0]["d"].as_str().unwrap().to_owned()];
        for group in ["client_secret", "registration_access_token"] {
            secrets.push(file[group]["keys"][0]["k"].as_str().unwrap().to_owned());
        }
        secrets.push("op-token-0123456789".into());
        for secret in secrets {
            assert!(!shown.contains(&secret), "{secret} in {shown}");
        }
    }
}
