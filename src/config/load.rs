//! Loading: a TOML file (or none: the development defaults), with `STATELESS_DCR_*`
//! environment variables laid over it, and relative paths taken from the file's directory.

use std::path::{Path, PathBuf};

use super::{Config, ConfigError};

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
}

/// Prefix of environment variables that set options.
pub const ENV_PREFIX: &str = "STATELESS_DCR_";

/// A TOML file's text with `STATELESS_DCR_*` variables laid over it, the way
/// [`Config::from_toml_with_env`] reads them; for the other configuration files (the edge node's).
pub(crate) fn with_env(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<String, String> {
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
    for (name, value) in env {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
        set_path(&mut table, &parts, env_value(&value))
            .map_err(|e| format!("environment variable {name}: {e}"))?;
    }
    Ok(table.to_string())
}

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
