//! What types alone cannot check; each error names its option.

use url::Url;

use super::policy::{KNOWN_JWE_ALGS, KNOWN_JWE_ENCS, KNOWN_JWS_ALGS};
use super::{invalid, is_loopback_url, Config, ConfigError, Policy, DEV_AUTHORITY_ISSUER};
use crate::status::StoreKind;

impl Config {
    /// Checks that types alone cannot express; each error names its option.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let public =
            Url::parse(&self.public_url).map_err(|e| invalid("public_url", e.to_string()))?;
        if public.query().is_some() || public.fragment().is_some() {
            return Err(invalid("public_url", "must not have a query or fragment"));
        }
        // Registration endpoints must be https (RFC 7591 §5, OIDC Disc §3); plain
        // http is allowed only on a loopback host, for development.
        match public.scheme() {
            "https" => {}
            "http" if is_loopback_url(&public) => {}
            _ => {
                return Err(invalid(
                    "public_url",
                    "must be https (http is allowed only for a loopback host, for development)",
                ))
            }
        }
        if let Some(issuer) = &self.issuer {
            let url = Url::parse(issuer).map_err(|e| invalid("issuer", e.to_string()))?;
            if url.scheme() != "https" && !is_loopback_url(&url) {
                // OIDC Discovery §3: the issuer is an https URL
                return Err(invalid("issuer", "must be an https URL"));
            }
        }
        if !is_loopback_url(&public)
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
        for (name, url) in self.mtls_endpoint_aliases.iter().flatten() {
            // RFC 8705 §5: absolute https URLs of the OP's endpoints
            if !Url::parse(url).is_ok_and(|u| u.scheme() == "https") {
                return Err(invalid(
                    format!("mtls_endpoint_aliases.{name}"),
                    "must be an https URL",
                ));
            }
        }
        for (name, value) in [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
        ] {
            if let Some(value) = value {
                Url::parse(value).map_err(|e| invalid(name, e.to_string()))?;
            }
        }
        // RFC 8414 §2, OIDC Discovery §3: a metadata document lists the authorization endpoint
        // whenever a supported grant type uses it, and the token endpoint unless only implicit
        // is supported. Off a loopback host the registrar publishes only what is true, so the
        // OP's endpoints must be named (docs/configuration.md).
        if !is_loopback_url(&public) {
            if let Some(name) = self.missing_op_endpoints().first() {
                return Err(invalid(
                    *name,
                    "must be set (the OP's endpoint): discovery must name it for the grant types in [policy] (RFC 8414 §2, OIDC Discovery §3)",
                ));
            }
        }
        for scheme in &self.allowed_private_use_schemes {
            // RFC 3986 §3.1; http and https are not private-use, and the schemes never accepted
            // as redirect targets stay refused.
            let syntax = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            let lowered = scheme.to_ascii_lowercase();
            if !syntax
                || matches!(
                    lowered.as_str(),
                    "http"
                        | "https"
                        | "javascript"
                        | "data"
                        | "vbscript"
                        | "file"
                        | "about"
                        | "blob"
                )
            {
                return Err(invalid(
                    "allowed_private_use_schemes",
                    format!("{scheme:?} is not a private-use URI scheme"),
                ));
            }
        }
        if !(512..=32768).contains(&self.client_id_max_length) {
            return Err(invalid(
                "client_id_max_length",
                "must be between 512 and 32768 characters: a longer client_id would not fit the request line of its own registration_client_uri",
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
        if !(1..=300).contains(&self.request_timeout_secs) {
            return Err(invalid(
                "request_timeout_secs",
                "must be between 1 and 300 seconds",
            ));
        }
        if self.workers == Some(0) {
            return Err(invalid("workers", "must be at least 1"));
        }
        self.policy.validate()?;
        if self.requirement().statement() && self.trusted_issuers.is_empty() {
            return Err(invalid(
                "trusted_issuers",
                "no issuer is trusted while registration requires a software statement: nobody could register",
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
        if limits.ipv6_prefix_len > 128 {
            return Err(invalid(
                "rate_limits.ipv6_prefix_len",
                "must be at most 128 bits",
            ));
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
            match store.redis_url.as_ref().map(|u| Url::parse(u.expose())) {
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
        validate_trusted_issuers(&self.trusted_issuers)?;
        if self.admin_api_tokens.iter().any(|t| t.len() < 32) {
            return Err(invalid(
                "admin_api_tokens",
                "every token must be at least 32 characters (make one with `openssl rand -base64 32`)",
            ));
        }
        self.status_lists
            .check()
            .map_err(|(option, message)| invalid(option, message))?;
        self.client_id_metadata_documents.validate()?;
        if self.signed_request_max_lifetime_secs == 0 {
            return Err(invalid(
                "signed_request_max_lifetime_secs",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The `trusted_issuers` entries, of a registrar or an edge node.
pub(crate) fn validate_trusted_issuers(
    issuers: &[super::TrustedIssuer],
) -> Result<(), ConfigError> {
    for (index, issuer) in issuers.iter().enumerate() {
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
        for uri in &issuer.status_list_uris {
            let ok = Url::parse(uri).is_ok_and(|url| {
                url.scheme() == "https"
                    && url.host().is_some()
                    && url.query().is_none()
                    && url.fragment().is_none()
            });
            if !ok {
                return Err(invalid(
                    format!("trusted_issuers[{index}].status_list_uris"),
                    format!("{uri:?} must be an https URL without query or fragment"),
                ));
            }
        }
        let min = issuer.status_list_min_cache_secs;
        let max = issuer.status_list_max_cache_secs;
        if min == Some(0) || min.zip(max).is_some_and(|(min, max)| min > max) {
            return Err(invalid(
                format!("trusted_issuers[{index}].status_list_min_cache_secs"),
                "must be at least 1 and not exceed status_list_max_cache_secs",
            ));
        }
        if issuer.issuer.is_empty() {
            return Err(invalid(
                format!("trusted_issuers[{index}].issuer"),
                "must not be empty",
            ));
        }
        if let Some(algs) = &issuer.allowed_signing_algs {
            // asymmetric JWS algorithms only: none and MACs are never a signature of the client
            let usable = |alg: &str| {
                super::policy::KNOWN_JWS_ALGS.contains(&alg)
                    && alg != "none"
                    && !alg.starts_with("HS")
            };
            if let Some(bad) = algs.iter().find(|alg| !usable(alg)) {
                return Err(invalid(
                    format!("trusted_issuers[{index}].allowed_signing_algs"),
                    format!("{bad:?} is not an asymmetric JWS algorithm"),
                ));
            }
        }
        if issuer.audience.as_deref() == Some("") {
            return Err(invalid(
                format!("trusted_issuers[{index}].audience"),
                "must not be empty",
            ));
        }
        if issuers[..index]
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
        // grant types, response types, auth methods and subject types are typed: unknown
        // values were refused when the file was read
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
