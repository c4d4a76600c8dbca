//! A minimal authorization-endpoint front door for an edge node: it validates `client_id`,
//! `redirect_uri` and `response_type` offline with the registrar's public JWKS, and then either
//! refuses with an error page, redirects back with an error, or hands over to the sign-in page.
//!
//! It needs nothing but the registrar's address: discovery gives its `issuer` and `jwks_uri`.
//!
//! ```sh
//! cargo run --example front_door -- --registrar http://127.0.0.1:8080 --listen 127.0.0.1:9000
//! # then open http://127.0.0.1:9000/authorize?client_id=...&redirect_uri=...&response_type=code
//! ```
//!
//! RFC 6749 §4.1.2.1: if the client_id is invalid or the redirect URI does not match a registered
//! one, the user is shown an error and is NOT redirected; other errors go back to the client's
//! redirect URI with `error` and `state`.

use std::collections::HashMap;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::Value;
use stateless_dcr::keys::{PublishedKeys, VerifierSet};
use stateless_dcr::resolve::{Resolver, ResolverOptions};

struct Args {
    registrar: String,
    listen: String,
}

fn args() -> Result<Args, String> {
    let mut registrar = None;
    let mut listen = "127.0.0.1:9000".to_owned();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--registrar" => registrar = it.next(),
            "--listen" => listen = it.next().ok_or("--listen needs an address")?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        registrar: registrar.ok_or("--registrar URL is required")?,
        listen,
    })
}

/// The registrar's issuer and public keys, from its discovery document. The registrar's address
/// is the operator's own configuration, so it is fetched directly (plain http is fine on a
/// loopback development setup).
async fn load_resolver(registrar: &str) -> Result<Resolver, String> {
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move {
            http.get(&url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| format!("{url}: {e}"))?
                .json::<Value>()
                .await
                .map_err(|e| format!("{url}: {e}"))
        }
    };
    let discovery = get(format!(
        "{}/.well-known/openid-configuration",
        registrar.trim_end_matches('/')
    ))
    .await?;
    let issuer = discovery["issuer"]
        .as_str()
        .ok_or("discovery has no issuer")?
        .to_owned();
    let jwks_uri = discovery["jwks_uri"]
        .as_str()
        .ok_or("discovery has no jwks_uri")?
        .to_owned();
    let jwks = get(jwks_uri).await?;
    let verifiers = VerifierSet::from_jwks(&jwks).map_err(|e| format!("{jwks}: {e}"))?;
    Ok(Resolver::new(ResolverOptions {
        issuer,
        keys: PublishedKeys::new(verifiers, None).into(),
        status: None,
        fetcher: None,
        audiences: Vec::new(),
        cache_entries: 10_000,
        cache_max_bytes: 64 << 20,
        clock: stateless_dcr::clock::system(),
        lists: None,
    }))
}

fn error_page(message: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><title>Sign-in error</title><h1>Sign-in error</h1><p>{}</p>",
            html_escape(message)
        ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// 302 back to the client with an error (RFC 6749 §4.1.2.1), keeping `state`.
fn redirect_error(redirect_uri: &str, error: &str, state: Option<&String>) -> HttpResponse {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return error_page("the redirect URI cannot carry an error");
    };
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("error", error);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    HttpResponse::Found()
        .insert_header(("Location", url.as_str()))
        .finish()
}

async fn authorize(
    query: web::Query<HashMap<String, String>>,
    resolver: web::Data<Resolver>,
) -> HttpResponse {
    let Some(client_id) = query.get("client_id") else {
        return error_page("client_id is missing");
    };
    let client = match resolver.resolve(client_id).await {
        Ok(client) => client,
        Err(_) => return error_page("unknown or invalid client"),
    };
    // OIDC requires redirect_uri; plain OAuth allows leaving it out when exactly one is
    // registered (RFC 6749 §3.1.2.3).
    let redirect_uri = match query.get("redirect_uri") {
        Some(uri) if client.redirect_uri_matches(uri) => uri.clone(),
        Some(_) => return error_page("the redirect_uri is not registered for this client"),
        None if client.metadata().redirect_uris.len() == 1 => {
            client.metadata().redirect_uris[0].clone()
        }
        None => return error_page("redirect_uri is missing"),
    };
    let state = query.get("state");
    let Some(response_type) = query.get("response_type") else {
        return redirect_error(&redirect_uri, "invalid_request", state);
    };
    if !client.allows_response_type(response_type) {
        return redirect_error(&redirect_uri, "unsupported_response_type", state);
    }
    // Everything checks out: the OP's sign-in takes over from here.
    let name = client.metadata().client_name().unwrap_or(client_id);
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><title>Sign in</title><h1>Sign in to continue to {}</h1>",
            html_escape(name)
        ))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = args().map_err(std::io::Error::other)?;
    let resolver = web::Data::new(
        load_resolver(&args.registrar)
            .await
            .map_err(std::io::Error::other)?,
    );
    println!("front door listening on {}", args.listen);
    HttpServer::new(move || {
        App::new()
            .app_data(resolver.clone())
            .route("/authorize", web::get().to(authorize))
    })
    .workers(1)
    .bind(&args.listen)?
    .run()
    .await
}
