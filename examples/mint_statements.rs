//! Benchmark helper: sign COUNT distinct software statements with a federation authority's key and
//! write them as registration request bodies, one JSON object per line
//! (`{"software_statement":"..."}`), for a wrk script that POSTs one line per request
//! (scripts/bench-registration.sh, scripts/bench-memory.sh with scripts/bench-bodies-limit.lua).
//!
//! ```sh
//! cargo run --release --example mint_statements -- --count 200000 --out /tmp/bodies.jsonl
//! ```
//!
//! Every statement carries the claims of `--claims` (default keys/example-statement.json), `iat`
//! = now, `exp` = now + `--lifetime` (default 86400 s) and its own random `jti`, so no two
//! statements are the same text and no cache of verified statements can answer for another.
//! `--count 1` with `--repeat N` writes the same statement N times (the federation case).
//! The work is split over the machine's cores.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use stateless_dcr::{jose, keys};

struct Args {
    count: usize,
    repeat: usize,
    out: PathBuf,
    key: PathBuf,
    claims: PathBuf,
    lifetime: u64,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        count: 10_000,
        repeat: 1,
        out: PathBuf::from("bodies.jsonl"),
        key: PathBuf::from("keys/dev-authority.private.jwk.json"),
        claims: PathBuf::from("keys/example-statement.json"),
        lifetime: 86_400,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--count" => args.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--repeat" => args.repeat = value()?.parse().map_err(|e| format!("--repeat: {e}"))?,
            "--out" => args.out = value()?.into(),
            "--key" => args.key = value()?.into(),
            "--claims" => args.claims = value()?.into(),
            "--lifetime" => {
                args.lifetime = value()?.parse().map_err(|e| format!("--lifetime: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.count == 0 || args.repeat == 0 {
        return Err("--count and --repeat must be at least 1".into());
    }
    Ok(args)
}

fn read_json(path: &PathBuf) -> Result<Map<String, Value>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    match serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))? {
        Value::Object(map) => Ok(map),
        _ => Err(format!("{}: not a JSON object", path.display())),
    }
}

/// `count` bodies, each with a fresh statement.
fn mint(
    key: &josekit::jwk::Jwk,
    claims: &Map<String, Value>,
    lifetime: u64,
    count: usize,
) -> Result<Vec<String>, String> {
    let (alg, signer) = keys::signer_for(key)?;
    let mut header = Map::new();
    header.insert("alg".into(), alg.into());
    if let Some(kid) = key.key_id() {
        header.insert("kid".into(), kid.into());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let mut claims = claims.clone();
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + lifetime).into());
    (0..count)
        .map(|_| {
            let jti = jose::random_bytes(16).map_err(|e| e.to_string())?;
            claims.insert("jti".into(), jose::base64url(&jti).into());
            let payload = serde_json::to_vec(&claims).map_err(|e| e.to_string())?;
            let statement = jose::sign_compact(&header, &payload, signer.as_ref())
                .map_err(|e| e.to_string())?;
            Ok(format!("{{\"software_statement\":\"{statement}\"}}"))
        })
        .collect()
}

fn run() -> Result<(), String> {
    let args = args()?;
    let key = josekit::jwk::Jwk::from_map(read_json(&args.key)?).map_err(|e| e.to_string())?;
    let claims = read_json(&args.claims)?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(args.count);
    let per_thread = args.count.div_ceil(threads);
    let batches = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let n = per_thread.min(args.count - (i * per_thread).min(args.count));
                let (key, claims) = (&key, &claims);
                scope.spawn(move || mint(key, claims, args.lifetime, n))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| "a minting thread panicked".to_owned())?
            })
            .collect::<Result<Vec<_>, String>>()
    })?;
    let file =
        std::fs::File::create(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let mut out = BufWriter::new(file);
    for _ in 0..args.repeat {
        for body in batches.iter().flatten() {
            writeln!(out, "{body}").map_err(|e| e.to_string())?;
        }
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mint_statements: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
