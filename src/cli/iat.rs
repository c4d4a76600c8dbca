//! `stateless-dcr iat issue`: mint an initial access token (RFC 7591 §3; `crate::iat`) with the
//! configured registrar keys, printed on standard output. Nothing is written: the token is
//! verified offline like a client_id (docs/mcp.md, "Initial access tokens").

use super::*;
use crate::iat::{TokenClaims, TokenPolicy};
use crate::metadata::{AuthMethod, GrantType};

#[derive(clap::Args, Debug)]
pub(super) struct IssueArgs {
    /// The server's configuration: its keys and issuer sign the token.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 86_400)]
    expires_in: u64,
    /// Shown in the audit events of registrations made with the token.
    #[arg(long)]
    label: Option<String>,
    /// How many registrations the token allows (needs management = "full": each use is
    /// recorded in the status store). Default: any number until it expires.
    #[arg(long)]
    max_uses: Option<u64>,
    /// Every redirect URI must start with one of these (repeatable).
    #[arg(long = "redirect-uri-prefix")]
    redirect_uri_prefixes: Vec<String>,
    /// The only grant types a client may register (repeatable).
    #[arg(long = "grant-type")]
    grant_types: Vec<String>,
    /// The only scope values a client may register (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// The only token_endpoint_auth_method values a client may register (repeatable).
    #[arg(long = "auth-method")]
    auth_methods: Vec<String>,
    /// The client_id of a client registered with the token expires at most this many seconds
    /// after registration.
    #[arg(long)]
    max_client_lifetime: Option<u64>,
    /// The software_id every client registered with the token has.
    #[arg(long)]
    software_id: Option<String>,
}

fn named<T>(
    values: &[String],
    parse: fn(&str) -> Option<T>,
    what: &str,
) -> Result<Option<Vec<T>>, String> {
    if values.is_empty() {
        return Ok(None);
    }
    values
        .iter()
        .map(|v| parse(v).ok_or_else(|| format!("unknown {what} {v:?}")))
        .collect::<Result<Vec<T>, String>>()
        .map(Some)
}

pub(super) fn iat_issue(args: IssueArgs) -> Result<ExitCode, String> {
    let config = load_config(args.config.as_deref())?;
    config.validate().map_err(|e| e.to_string())?;
    if args.max_uses.is_some() && config.management != Management::Full {
        return Err(
            "--max-uses needs management = \"full\": uses are counted in the status store".into(),
        );
    }
    if args.max_uses == Some(0) || args.expires_in == 0 {
        return Err("--max-uses and --expires-in must be at least 1".into());
    }
    let keys = RegistrarKeys::load(&config.keys).map_err(|e| e.to_string())?;
    let now = crate::clock::SystemClock.now().map_err(|e| e.to_string())?;
    let claims = TokenClaims {
        iss: config.issuer().to_owned(),
        jti: crate::client_id::new_jti().map_err(|e| e.to_string())?,
        iat: now,
        exp: now.saturating_add(args.expires_in),
        label: args.label,
        max_uses: args.max_uses,
        policy: TokenPolicy {
            redirect_uri_prefixes: (!args.redirect_uri_prefixes.is_empty())
                .then_some(args.redirect_uri_prefixes),
            grant_types: named(&args.grant_types, GrantType::parse, "grant type")?,
            scopes: (!args.scopes.is_empty()).then_some(args.scopes),
            token_endpoint_auth_methods: named(
                &args.auth_methods,
                AuthMethod::parse,
                "token_endpoint_auth_method",
            )?,
            max_client_lifetime_secs: args.max_client_lifetime,
            software_id: args.software_id,
        },
    };
    let token = crate::iat::issue(keys.signing_key(), &claims).map_err(|e| e.to_string())?;
    // the token on stdout, what it allows on stderr (for the operator, not for scripts)
    eprintln!(
        "initial access token {} (expires at {}): {}",
        claims.jti,
        claims.exp,
        serde_json::to_string(&claims.policy).unwrap_or_default()
    );
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
