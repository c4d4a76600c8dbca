//! The command line: `serve` (the default), `keys generate`, `keys rotate`, `statement keygen`,
//! `statement sign`, `client inspect`, `edge`, `revoke` and `iat issue`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::{json, Map, Value};

use crate::clock::Clock;
use crate::config::{Config, LogFormat, Management};
use crate::keys::{self, KeyRing, RegistrarKeys, SigningAlg};
use crate::registrar::Registrar;
use crate::startup::Application;
use crate::status::{ClientStatus, StatusService};

mod iat;
mod inspect;
use inspect::client_inspect;

#[derive(Parser, Debug)]
#[command(
    name = "stateless-dcr",
    version,
    about = "Stateless OpenID Connect Dynamic Client Registration"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the registration service (the default when no command is given).
    Serve {
        /// TOML configuration file; without it the development defaults apply.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Registrar key sets.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Software statements: the federation authority's tools.
    Statement {
        #[command(subcommand)]
        command: StatementCommand,
    },
    /// Registered clients.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Run an edge node: `POST /resolve` with only the registrar's public keys and its status
    /// lists (docs/operations.md, "Edge nodes").
    Edge {
        /// The edge node's TOML configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Withdraw every client of one software_id of an issuer, or of one software statement,
    /// through the running server's admin API; or list or lift withdrawals.
    Revoke(RevokeArgs),
    /// Initial access tokens (RFC 7591 §3).
    Iat {
        #[command(subcommand)]
        command: IatCommand,
    },
}

#[derive(Subcommand, Debug)]
enum IatCommand {
    /// Mint an initial access token, signed with the configured registrar keys, and print it.
    /// Withdraw one with `revoke --issuer <the registrar's issuer> --statement-jti <its jti>`.
    Issue(iat::IssueArgs),
}

#[derive(clap::Args, Debug)]
struct RevokeArgs {
    /// The statement issuer (`iss`) whose clients to withdraw.
    #[arg(long, conflicts_with_all = ["list", "lift"])]
    issuer: Option<String>,
    /// Withdraw every client of this software_id...
    #[arg(long, requires = "issuer", conflicts_with = "statement_jti")]
    software_id: Option<String>,
    /// ...or every client registered with the statement of this jti.
    #[arg(long, requires = "issuer")]
    statement_jti: Option<String>,
    /// Only clients registered before this time (seconds since 1970).
    #[arg(long, requires = "issuer")]
    before: Option<u64>,
    /// Suspend (can be lifted) instead of the default permanent withdrawal.
    #[arg(long, requires = "issuer")]
    suspend: bool,
    /// Why, kept with the withdrawal.
    #[arg(long, requires = "issuer")]
    reason: Option<String>,
    /// List the withdrawals in force.
    #[arg(long, conflicts_with = "lift")]
    list: bool,
    /// Lift the suspension with this id.
    #[arg(long)]
    lift: Option<String>,
    /// The server's configuration: its public_url and first admin_api_tokens entry are used.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The server to call, instead of the configuration's public_url.
    #[arg(long)]
    server: Option<String>,
    /// The admin token, instead of the configuration's first `admin_api_tokens` entry (which
    /// `STATELESS_DCR_ADMIN_API_TOKENS` can set, keeping it off the command line).
    #[arg(long)]
    token: Option<String>,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Add a new signing key to a key set file and make it the active one; the previous keys
    /// stay listed so that client_ids they signed keep verifying. A running server picks the
    /// change up by itself (file watch) or on SIGHUP.
    Rotate {
        /// The registrar key set file to change (rewritten in place, mode 0600).
        #[arg(long)]
        keys: PathBuf,
        #[arg(long, value_enum, default_value = "ES256")]
        alg: SigningAlg,
    },
    /// Generate a registrar key set: a signing key and separate client_secret and registration
    /// access token derivation keys, each with a kid.
    Generate {
        /// Signing algorithm of the client_id signing key.
        #[arg(long, value_enum, default_value = "ES256")]
        alg: SigningAlg,
        /// Write here (mode 0600) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
enum StatementCommand {
    /// Generate a federation authority key: a private JWK and the public JWK Set registrars trust.
    Keygen {
        #[arg(long, value_enum, default_value = "ES256")]
        alg: SigningAlg,
        /// Where to write the private JWK (mode 0600).
        #[arg(long)]
        private: PathBuf,
        /// Where to write the public JWK Set.
        #[arg(long)]
        jwks: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Sign a software statement from a JSON file of claims (`-` for standard input). `iat` and a
    /// random `jti` are added when absent.
    Sign {
        /// The authority's private JWK.
        #[arg(long)]
        key: PathBuf,
        /// JSON object of claims: client metadata, `software_id`, and usually `iss`.
        #[arg(long)]
        claims: PathBuf,
        /// `iss` to set when the claims have none.
        #[arg(long)]
        issuer: Option<String>,
        /// Seconds until `exp`, when the claims have no `exp`.
        #[arg(long)]
        lifetime: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
enum ClientCommand {
    /// Verify a client_id with the configured keys and print its metadata.
    Inspect {
        client_id: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        None | Some(Command::Serve { .. }) | Some(Command::Edge { .. })
    ) {
        init_logging("warn", LogFormat::Text);
    }
    let result = match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => serve(config.as_deref()),
        Command::Keys {
            command: KeysCommand::Generate { alg, out, force },
        } => keys_generate(alg, out.as_deref(), force),
        Command::Keys {
            command: KeysCommand::Rotate { keys, alg },
        } => keys_rotate(&keys, alg),
        Command::Statement { command } => match command {
            StatementCommand::Keygen {
                alg,
                private,
                jwks,
                force,
            } => statement_keygen(alg, &private, &jwks, force),
            StatementCommand::Sign {
                key,
                claims,
                issuer,
                lifetime,
            } => statement_sign(&key, &claims, issuer, lifetime),
        },
        Command::Client {
            command: ClientCommand::Inspect { client_id, config },
        } => client_inspect(&client_id, config.as_deref()),
        Command::Edge { config } => edge(&config),
        Command::Revoke(args) => revoke(args),
        Command::Iat {
            command: IatCommand::Issue(args),
        } => iat::iat_issue(args),
    };
    // what the log writer thread has not written yet, before anything else is printed
    crate::logging::flush();
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("stateless-dcr: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str, format: LogFormat) {
    crate::logging::init(level, format);
}

fn load_config(path: Option<&Path>) -> Result<Config, String> {
    if path.is_none() {
        tracing::warn!("no --config given: running on the development defaults (loopback only, development keys from keys/)");
    }
    Config::load(path, std::env::vars()).map_err(|e| e.to_string())
}

fn serve(config: Option<&Path>) -> Result<ExitCode, String> {
    let config = match Config::load(config, std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            init_logging("info", LogFormat::Text);
            return Err(e.to_string());
        }
    };
    init_logging(&config.log_level, config.log_format);
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config)
            .await
            .map_err(|e| e.to_string())?;
        app.run_until_stopped().await.map_err(|e| e.to_string())?;
        Ok(ExitCode::SUCCESS)
    })
}

fn edge(path: &Path) -> Result<ExitCode, String> {
    let config = match crate::edge::EdgeConfig::load(path, std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            init_logging("info", LogFormat::Text);
            return Err(e.to_string());
        }
    };
    init_logging(&config.log_level, config.log_format);
    actix_web::rt::System::new().block_on(async move {
        let node = crate::edge::EdgeNode::build(config)
            .await
            .map_err(|e| e.to_string())?;
        node.run_until_stopped().await.map_err(|e| e.to_string())?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `stateless-dcr revoke`: the admin API of the running server, which holds the store.
fn revoke(args: RevokeArgs) -> Result<ExitCode, String> {
    let config = match (&args.config, &args.server, &args.token) {
        // everything given on the command line: no configuration needed
        (None, Some(_), Some(_)) => None,
        _ => Some(load_config(args.config.as_deref())?),
    };
    let server = match (&args.server, &config) {
        (Some(server), _) => server.clone(),
        (None, Some(config)) => config.public_url.clone(),
        (None, None) => return Err("give --server or --config".into()),
    };
    let token = match (&args.token, &config) {
        (Some(token), _) => token.clone(),
        (None, Some(config)) => config
            .admin_api_tokens
            .first()
            .map(|t| t.expose().to_owned())
            .ok_or("set admin_api_tokens in the configuration, or give --token")?,
        (None, None) => return Err("give --token or --config".into()),
    };
    let base = format!("{}/admin/withdrawals", server.trim_end_matches('/'));
    let http = reqwest::Client::new();
    let request = if args.list {
        http.get(&base)
    } else if let Some(id) = &args.lift {
        http.delete(format!("{base}/{id}"))
    } else {
        let issuer = args
            .issuer
            .clone()
            .ok_or("give --issuer with --software-id or --statement-jti, or --list, or --lift")?;
        let mut body = Map::new();
        body.insert("issuer".into(), Value::String(issuer));
        match (&args.software_id, &args.statement_jti) {
            (Some(id), None) => body.insert("software_id".into(), Value::String(id.clone())),
            (None, Some(jti)) => body.insert("statement_jti".into(), Value::String(jti.clone())),
            _ => return Err("give exactly one of --software-id and --statement-jti".into()),
        };
        if let Some(before) = args.before {
            body.insert("registered_before".into(), Value::from(before));
        }
        if args.suspend {
            body.insert("status".into(), Value::String("suspended".into()));
        }
        if let Some(reason) = &args.reason {
            body.insert("reason".into(), Value::String(reason.clone()));
        }
        http.post(&base).json(&Value::Object(body))
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let response = request
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| format!("{base}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("{base}: {e}"))?;
        let shown = match serde_json::from_str::<Value>(&text) {
            Ok(value) => pretty(&value)?,
            Err(_) if text.is_empty() => format!("{{\"status\": {}}}", status.as_u16()),
            Err(_) => text,
        };
        println!("{shown}");
        Ok(if status.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

fn keys_generate(alg: SigningAlg, out: Option<&Path>, force: bool) -> Result<ExitCode, String> {
    let set = RegistrarKeys::generate(alg).map_err(|e| e.to_string())?;
    let text = pretty(&set)?;
    match out {
        Some(path) => write_private(path, &text, force)?,
        None => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn keys_rotate(path: &Path, alg: SigningAlg) -> Result<ExitCode, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // the current file must load, so that a rotation never produces a broken key set
    RegistrarKeys::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut set: Value = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    let fresh = RegistrarKeys::generate(alg).map_err(|e| e.to_string())?;
    let new_key = fresh["signing"]["keys"][0].clone();
    let new_kid = fresh["signing"]["active"].clone();
    let keys = set["signing"]["keys"]
        .as_array_mut()
        .ok_or("signing.keys is not an array")?;
    keys.push(new_key);
    set["signing"]["active"] = new_kid.clone();
    let text = pretty(&set)?;
    RegistrarKeys::from_json(text.as_bytes())
        .map_err(|e| format!("the rotated key set does not load: {e}"))?;
    // write next to it and rename, so that a reader never sees half a file
    let tmp = path.with_extension("rotating");
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, &text, false)?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{}", new_kid.as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

fn statement_keygen(
    alg: SigningAlg,
    private: &Path,
    jwks: &Path,
    force: bool,
) -> Result<ExitCode, String> {
    let (private_jwk, public_jwks) =
        keys::generate_authority_key(alg).map_err(|e| e.to_string())?;
    write_private(private, &pretty(&private_jwk)?, force)?;
    write_file(jwks, &pretty(&public_jwks)?, force, None)?;
    Ok(ExitCode::SUCCESS)
}

fn statement_sign(
    key: &Path,
    claims: &Path,
    issuer: Option<String>,
    lifetime: Option<u64>,
) -> Result<ExitCode, String> {
    let key_bytes = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let jwk =
        josekit::jwk::Jwk::from_bytes(&key_bytes).map_err(|e| format!("{}: {e}", key.display()))?;
    if jwk.parameter("d").is_none() {
        return Err(format!("{}: not a private key", key.display()));
    }
    let (alg, signer) = keys::signer_for(&jwk).map_err(|e| format!("{}: {e}", key.display()))?;

    let text = if claims == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("standard input: {e}"))?;
        text
    } else {
        std::fs::read_to_string(claims).map_err(|e| format!("{}: {e}", claims.display()))?
    };
    let mut claims: Map<String, Value> = match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err("the claims must be a JSON object".into()),
        Err(e) => return Err(format!("the claims are not JSON: {e}")),
    };
    let now = crate::clock::SystemClock.now().map_err(|e| e.to_string())?;
    if let Some(issuer) = issuer {
        claims.entry("iss").or_insert(Value::String(issuer));
    }
    if !claims.contains_key("iss") {
        return Err("the statement needs an iss: put it in the claims or pass --issuer".into());
    }
    claims.entry("iat").or_insert(Value::from(now));
    if let Some(lifetime) = lifetime {
        let exp = now.checked_add(lifetime).ok_or("--lifetime is too large")?;
        claims.entry("exp").or_insert(Value::from(exp));
    }
    if !claims.contains_key("jti") {
        let jti = crate::jose::random_bytes(16).map_err(|e| e.to_string())?;
        claims.insert("jti".into(), Value::String(crate::jose::base64url(&jti)));
    }
    let mut header = Map::new();
    header.insert("alg".into(), Value::String(alg.into()));
    if let Some(kid) = jwk.key_id() {
        header.insert("kid".into(), Value::String(kid.into()));
    }
    header.insert("typ".into(), Value::String("JWT".into()));
    let payload = serde_json::to_vec(&claims).map_err(|e| e.to_string())?;
    let token =
        crate::jose::sign_compact(&header, &payload, signer.as_ref()).map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn pretty(value: &Value) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|e| e.to_string())
}

fn write_private(path: &Path, text: &str, force: bool) -> Result<(), String> {
    write_file(path, text, force, Some(0o600))
}

fn write_file(path: &Path, text: &str, force: bool, mode: Option<u32>) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{} exists; pass --force to overwrite it", path.display())
        } else {
            format!("{}: {e}", path.display())
        }
    })?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.write_all(b"\n"))
        .map_err(|e| format!("{}: {e}", path.display()))
}
