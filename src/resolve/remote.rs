//! The current metadata of an updated client, asked of the registrar: what a node without the
//! status store does when the registrar's status list marks a client AMENDED (RFC 7592 §2.2:
//! the update replaced the metadata its client_id carries).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use super::{InvalidClient, ResolveError, VerifiedClient};
use crate::client_id::Provenance;
use crate::fetch::FetchConfig;
use crate::metadata::{ClientMetadata, SubjectType};
use crate::secret::Secret;
use crate::status::Amendment;

/// Largest `POST /resolve` answer read: a client's metadata fits a client_id (at most 32 KiB).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Asks the registrar's `POST /resolve` for the current metadata of updated clients, and keeps
/// each answer for `cache_secs`.
pub struct RemoteAmendments {
    resolve_url: Url,
    token: Secret,
    http: reqwest::Client,
    cache: moka::future::Cache<Arc<str>, Arc<Amendment>>,
    /// Failed questions, remembered briefly: while the registrar is away, a flood of lookups of
    /// updated clients costs one request per client and period, not one timeout each.
    failures: moka::future::Cache<Arc<str>, String>,
}

/// How long a failed question is remembered, in seconds.
const FAILURE_CACHE_SECS: u64 = 5;

impl std::fmt::Debug for RemoteAmendments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteAmendments")
            .field("resolve_url", &self.resolve_url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Answer {
    valid: bool,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    sector: Option<String>,
    #[serde(default)]
    software_statement: Option<Provenance>,
    #[serde(default)]
    client_secret_kid: Option<String>,
    #[serde(default)]
    client: Option<Map<String, Value>>,
}

impl RemoteAmendments {
    /// `resolve_url` and `token` are the operator's configuration: plain http is allowed (a
    /// registrar inside the same network), redirects are not followed, and the timeouts of
    /// `fetch` apply.
    pub fn new(
        resolve_url: Url,
        token: Secret,
        fetch: &FetchConfig,
        cache_secs: u64,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_millis(fetch.connect_timeout_ms))
            .timeout(Duration::from_millis(fetch.total_timeout_ms))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(RemoteAmendments {
            resolve_url,
            token,
            http,
            cache: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(cache_secs.max(1)))
                .build(),
            failures: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(FAILURE_CACHE_SECS))
                .build(),
        })
    }

    /// The client's current metadata, as the registrar resolves it now.
    pub async fn current(&self, client: &VerifiedClient) -> Result<Arc<Amendment>, ResolveError> {
        if let Some(hit) = self.cache.get(&client.client_id).await {
            return Ok(hit);
        }
        if let Some(failed) = self.failures.get(&client.client_id).await {
            return Err(ResolveError::Amendment(failed));
        }
        let amendment = match self.ask(client).await {
            Ok(amendment) => Arc::new(amendment),
            Err(ResolveError::Amendment(why)) => {
                self.failures
                    .insert(client.client_id.clone(), why.clone())
                    .await;
                return Err(ResolveError::Amendment(why));
            }
            Err(other) => return Err(other),
        };
        self.cache
            .insert(client.client_id.clone(), amendment.clone())
            .await;
        Ok(amendment)
    }

    async fn ask(&self, client: &VerifiedClient) -> Result<Amendment, ResolveError> {
        let failed = |why: String| ResolveError::Amendment(why);
        let response = self
            .http
            .post(self.resolve_url.clone())
            .bearer_auth(self.token.expose())
            .json(&serde_json::json!({ "client_id": &*client.client_id }))
            .send()
            .await
            .map_err(|e| {
                failed(crate::fetch::transport_error(&e, &self.resolve_url).to_string())
            })?;
        let body = crate::fetch::read_capped(response, MAX_ANSWER_BYTES, &self.resolve_url)
            .await
            .map_err(|e| failed(format!("the registrar's /resolve: {e}")))?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
            failed("the registrar's /resolve answer is not the expected JSON".into())
        })?;
        if !answer.valid {
            tracing::info!(
                detail = answer.error_description.as_deref().unwrap_or_default(),
                "the registrar refuses an updated client"
            );
            return Err(InvalidClient::RefusedByRegistrar.into());
        }
        let mut members = answer
            .client
            .ok_or_else(|| failed("the registrar's /resolve answer has no client".into()))?;
        if members.get("client_id").and_then(Value::as_str) != Some(&*client.client_id) {
            return Err(failed("the registrar answered about another client".into()));
        }
        // the client view adds these to the metadata
        members.remove("client_id");
        members.remove("client_id_issued_at");
        let metadata = ClientMetadata::parse(&members, SubjectType::Public)
            .map_err(|e| failed(format!("the registrar's metadata: {}", e.description)))?;
        Ok(Amendment {
            // the registration access token is the registrar's business, not this node's
            generation: 0,
            metadata,
            sector: answer.sector,
            client_secret_kid: answer.client_secret_kid,
            provenance: answer.software_statement,
            request: None,
        })
    }
}
