//! The `[client_id_metadata_documents]` section: whether client_ids that are https URLs are
//! accepted, from which hosts, and how long a document is reused.

use serde::Deserialize;

use crate::config::{invalid, ConfigError};

/// Which client identifier URLs are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocumentsMode {
    /// None: an https client_id is an unknown client (the default).
    Off,
    /// Any host's.
    On,
    /// Only those on `allowed_hosts`.
    AllowedHosts,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentsConfig {
    pub mode: DocumentsMode,
    /// Hosts whose documents are accepted with `mode = "allowed-hosts"`: exact host names, or
    /// `*.example.com` for every host below example.com.
    pub allowed_hosts: Vec<String>,
    /// Accept only documents that carry a software statement from a trusted issuer naming the
    /// document's URL as its `client_id`: a federation approves clients by URL.
    pub require_software_statement: bool,
    /// A document is reused for its `Cache-Control: max-age`, clamped to
    /// [`min_cache_secs`, `max_cache_secs`], or for `default_cache_secs` without one
    /// (draft-ietf-oauth-client-id-metadata-document §5.2). Defaults 60 s, 86400 s, 300 s.
    pub min_cache_secs: u64,
    /// See `min_cache_secs`.
    pub max_cache_secs: u64,
    /// See `min_cache_secs`.
    pub default_cache_secs: u64,
    /// How long a document that could not be fetched or is not valid is remembered as such, so
    /// that a flood naming it costs one fetch per period. Default 5 s; 0 remembers nothing, as
    /// §5.2 of the draft asks.
    pub failure_cache_secs: u64,
    /// Memory the validated documents may take, in bytes of response bodies. Default 8 MiB.
    pub cache_max_bytes: u64,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        DocumentsConfig {
            mode: DocumentsMode::Off,
            allowed_hosts: Vec::new(),
            require_software_statement: false,
            min_cache_secs: 60,
            max_cache_secs: 86_400,
            default_cache_secs: 300,
            failure_cache_secs: 5,
            cache_max_bytes: 8 * 1024 * 1024,
        }
    }
}

impl DocumentsConfig {
    pub fn enabled(&self) -> bool {
        self.mode != DocumentsMode::Off
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        const SECTION: &str = "client_id_metadata_documents";
        if self.min_cache_secs > self.max_cache_secs {
            return Err(invalid(
                format!("{SECTION}.min_cache_secs"),
                "must not exceed max_cache_secs",
            ));
        }
        if self.mode == DocumentsMode::AllowedHosts && self.allowed_hosts.is_empty() {
            return Err(invalid(
                format!("{SECTION}.allowed_hosts"),
                "mode = \"allowed-hosts\" needs at least one host",
            ));
        }
        for host in &self.allowed_hosts {
            let name = host.strip_prefix("*.").unwrap_or(host);
            let valid = !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                });
            if !valid {
                return Err(invalid(
                    format!("{SECTION}.allowed_hosts"),
                    format!(
                        "{host:?} is not a lower-case host name (or *. followed by one); IP \
                         addresses and ports are not allowed"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let config: DocumentsConfig = toml::from_str("").unwrap();
        assert_eq!(config, DocumentsConfig::default());
        assert!(!config.enabled());
        assert!(config.validate().is_ok());
        let config: DocumentsConfig =
            toml::from_str("mode = \"allowed-hosts\"\nallowed_hosts = [\"*.example.com\"]")
                .unwrap();
        assert!(config.enabled());
        assert!(config.validate().is_ok());
        for bad in [
            "mode = \"allowed-hosts\"",
            "allowed_hosts = [\"Example.com\"]",
            "allowed_hosts = [\"example.com:443\"]",
            "allowed_hosts = [\"*.\"]",
            "allowed_hosts = [\"a..b\"]",
            "min_cache_secs = 10\nmax_cache_secs = 5",
        ] {
            let config: DocumentsConfig = toml::from_str(bad).unwrap();
            assert!(config.validate().is_err(), "{bad}");
        }
        assert!(toml::from_str::<DocumentsConfig>("mode = \"sometimes\"").is_err());
        assert!(toml::from_str::<DocumentsConfig>("hosts = []").is_err());
    }
}
