//! The `[fetch]` section: limits and cache times of outbound fetches.

use std::path::PathBuf;

use serde::Deserialize;

/// Settings of the outbound fetcher; the `[fetch]` section of the configuration file. Every
/// field has a default, so an empty section (or none) gives the production behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// Time allowed to open the TCP connection and finish the TLS handshake. Default 3000 ms.
    pub connect_timeout_ms: u64,
    /// Time allowed for the whole fetch, connection and body included. Default 5000 ms.
    pub total_timeout_ms: u64,
    /// Largest `sector_identifier_uri` document accepted, in bytes. Default 64 KiB: a JSON
    /// array of redirect URIs is small.
    pub max_sector_identifier_bytes: usize,
    /// Largest client JWK Set (`jwks_uri`) accepted, in bytes. Default 64 KiB.
    pub max_client_jwks_bytes: usize,
    /// Largest trusted-issuer JWK Set accepted, in bytes. Default 256 KiB: an authority may
    /// publish several keys with certificate chains (`x5c`).
    pub max_issuer_jwks_bytes: usize,
    /// Largest client ID metadata document accepted, in bytes. Default 5120: the size
    /// draft-ietf-oauth-client-id-metadata-document §8.7 recommends; more is an error.
    pub max_client_metadata_bytes: usize,
    /// How long a fetched `sector_identifier_uri` document is reused. Default 60 s: it is only
    /// checked at registration (OIDC DCR §5), so this only absorbs bursts.
    pub sector_identifier_cache_secs: u64,
    /// How long a fetched client JWK Set is reused. Default 300 s.
    pub client_jwks_cache_secs: u64,
    /// How long a failed fetch is remembered, so that a flood naming a dead or slow URL costs
    /// one fetch per period. Default 30 s.
    pub failure_cache_secs: u64,
    /// Total size of the document cache, in bytes of response bodies. Default 16 MiB.
    pub cache_max_bytes: u64,
    /// Most fetches in flight at once; more wait, within the total timeout. Default 32.
    pub max_concurrent_fetches: usize,
    /// Trusted-issuer JWK Sets are kept for the `Cache-Control: max-age` of their response,
    /// clamped to [`issuer_jwks_min_cache_secs`, `issuer_jwks_max_cache_secs`]; without one,
    /// for `issuer_jwks_default_cache_secs`. Defaults 60 s, 86400 s (24 h), 3600 s (1 h).
    pub issuer_jwks_min_cache_secs: u64,
    /// See `issuer_jwks_min_cache_secs`.
    pub issuer_jwks_max_cache_secs: u64,
    /// See `issuer_jwks_min_cache_secs`.
    pub issuer_jwks_default_cache_secs: u64,
    /// A statement signed with a `kid` the issuer's set lacks triggers one refetch (key
    /// rotation), at most once per this many seconds per issuer. Default 30 s.
    pub issuer_jwks_refetch_secs: u64,
    /// Largest Status List Token accepted, in bytes. Default 1 MiB.
    pub max_status_list_bytes: usize,
    /// Largest decompressed status list accepted, in bytes: a list that inflates past this (a
    /// zlib bomb) is refused. Default 16 MiB (2^24 entries of 8 bits).
    pub max_status_list_decompressed_bytes: usize,
    /// A fetched status list is kept for its `ttl`, clamped to [`status_list_min_cache_secs`,
    /// `status_list_max_cache_secs`], and never past its `exp`; without a `ttl`, for
    /// `status_list_default_cache_secs`. Defaults 10 s, 3600 s, 300 s.
    pub status_list_min_cache_secs: u64,
    /// See `status_list_min_cache_secs`.
    pub status_list_max_cache_secs: u64,
    /// See `status_list_min_cache_secs`.
    pub status_list_default_cache_secs: u64,
    /// When a list cannot be fetched again, the last good one is still used for this many
    /// seconds past its cache time (never past its `exp`). Default 0: fail closed, every client
    /// whose status cannot be read is refused.
    pub status_list_grace_secs: u64,
    /// Memory the cached status lists may take, in decompressed bytes. Default 64 MiB.
    pub status_list_cache_max_bytes: u64,
    /// TEST ONLY. A PEM file of CA certificates trusted in addition to the bundled web PKI
    /// roots, so tests can serve documents from a local https server. Off by default.
    pub extra_root_ca_file: Option<PathBuf>,
    /// TEST ONLY. Allow fetches from loopback, private and other non-public addresses. This
    /// turns the SSRF guard off; never enable it in production. Off by default.
    pub allow_private_addresses: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            connect_timeout_ms: 3_000,
            total_timeout_ms: 5_000,
            max_sector_identifier_bytes: 64 * 1024,
            max_client_jwks_bytes: 64 * 1024,
            max_issuer_jwks_bytes: 256 * 1024,
            max_client_metadata_bytes: 5 * 1024,
            sector_identifier_cache_secs: 60,
            client_jwks_cache_secs: 300,
            failure_cache_secs: 30,
            cache_max_bytes: 16 * 1024 * 1024,
            max_concurrent_fetches: 32,
            issuer_jwks_min_cache_secs: 60,
            issuer_jwks_max_cache_secs: 86_400,
            issuer_jwks_default_cache_secs: 3_600,
            issuer_jwks_refetch_secs: 30,
            max_status_list_bytes: 1024 * 1024,
            max_status_list_decompressed_bytes: 16 * 1024 * 1024,
            status_list_min_cache_secs: 10,
            status_list_max_cache_secs: 3_600,
            status_list_default_cache_secs: 300,
            status_list_grace_secs: 0,
            status_list_cache_max_bytes: 64 * 1024 * 1024,
            extra_root_ca_file: None,
            allow_private_addresses: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_unknown_fields() {
        let config: FetchConfig = toml::from_str("").unwrap();
        assert_eq!(config, FetchConfig::default());
        assert_eq!(config.max_issuer_jwks_bytes, 256 * 1024);
        assert!(!config.allow_private_addresses);
        assert!(config.extra_root_ca_file.is_none());
        let config: FetchConfig = toml::from_str("total_timeout_ms = 300").unwrap();
        assert_eq!(config.total_timeout_ms, 300);
        assert!(toml::from_str::<FetchConfig>("total_timeout = 300").is_err());
    }
}
