//! Software statement verification (RFC 7591 §2.3, §3.1.1, §3.2.2; RFC 7515 §4.1.11, §7.1;
//! RFC 7519 §4.1.1, §4.1.4, §4.1.5, §4.1.6; RFC 8725 §3.1, §3.2, §3.10).

use serde_json::{json, Map, Value};
use stateless_dcr::clock::FixedClock;
use stateless_dcr::config::TrustedIssuer;
use stateless_dcr::jose;
use stateless_dcr::keys::SigningAlg;

use crate::helpers::{
    deployment, now, spawn_app, spawn_app_with, spawn_deployment, spawn_deployment_at, web_claims,
    Authority, ISSUER,
};

fn header(alg: &str, kid: &str) -> Map<String, Value> {
    let mut h = Map::new();
    h.insert("alg".into(), alg.into());
    h.insert("kid".into(), kid.into());
    h
}

fn claims() -> Value {
    let mut c = web_claims();
    c["iss"] = ISSUER.into();
    c["iat"] = now().into();
    c
}

#[tokio::test]
async fn statements_that_are_not_acceptable_are_invalid_software_statement() {
    let app = spawn_app().await;
    let kid = app.authority.kid();
    let payload = jose::base64url(claims().to_string().as_bytes());

    // RFC 8725 §3.2: alg none, with and without a signature part
    // (conformance: statement-alg-none-refused)
    let none_header = jose::base64url(br#"{"alg":"none"}"#);
    // RFC 8725 §3.1, §3.2: a MAC, even one keyed with the issuer's public key bytes
    // (conformance: statement-mac-refused)
    let hs_header = jose::base64url(format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#).as_bytes());
    // crit is honoured: an extension we do not understand
    let crit = app.authority.sign_with_header(
        {
            let mut h = header("ES256", &kid);
            h.insert("crit".into(), json!(["urn:example:ext"]));
            h.insert("urn:example:ext".into(), json!(true));
            h
        },
        &claims(),
    );
    // RFC 7591 §2.3; RFC 7519 §4.1.1: no iss (conformance: statement-iss-required)
    let mut no_iss = claims();
    no_iss.as_object_mut().unwrap().remove("iss");
    let no_iss = app
        .authority
        .sign_with_header(header("ES256", &kid), &no_iss);
    // a key the issuer does not have, under the issuer's kid (wrong signature)
    let impostor = Authority::new(ISSUER, SigningAlg::Es256);
    let wrong_key = impostor.sign_with_header(header("ES256", &kid), &claims());
    // unknown kid
    let unknown_kid = impostor.sign_with_header(header("ES256", "not-a-kid"), &claims());
    // an embedded jwk / jku pointing at the attacker's key is never followed
    let embedded = impostor.sign_with_header(
        {
            let mut h = header("ES256", &impostor.kid());
            h.insert("jku".into(), "https://attacker.example/jwks".into());
            h.insert(
                "jwk".into(),
                Value::Object(impostor.private.to_public_key().unwrap().into()),
            );
            h
        },
        &claims(),
    );
    // alg confusion: the right key's kid with another alg
    let wrong_alg = app
        .authority
        .sign_with_header(header("ES384", &kid), &claims());
    // times
    let mut expired = claims();
    expired["exp"] = (now() - 3600).into();
    let mut not_yet = claims();
    not_yet["nbf"] = (now() + 3600).into();
    let mut future_iat = claims();
    future_iat["iat"] = (now() + 3600).into();
    let mut bad_exp = claims();
    bad_exp["exp"] = "tomorrow".into();
    let statements: Vec<Value> = vec![
        format!("{none_header}.{payload}.").into(),
        format!("{none_header}.{payload}.c2ln").into(),
        format!("{hs_header}.{payload}.c2ln").into(),
        crit.into(),
        no_iss.into(),
        wrong_key.into(),
        unknown_kid.into(),
        embedded.into(),
        wrong_alg.into(),
        app.authority.sign(expired).into(),
        app.authority.sign(not_yet).into(),
        app.authority.sign(future_iat).into(),
        app.authority.sign(bad_exp).into(),
        "".into(),
        "not-a-jwt".into(),
        "a.b.c".into(),
        "....".into(),
        "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln".into(),
        json!(42),
        json!({"iss": ISSUER}),
        json!(["x"]),
        "x".repeat(20_000).into(),
    ];
    for statement in statements {
        let answer = app
            .post_register(&json!({ "software_statement": statement }))
            .await;
        answer.assert_error(400, "invalid_software_statement");
    }
}

#[tokio::test]
async fn an_untrusted_issuer_is_unapproved() {
    let app = spawn_app().await;
    let stranger = Authority::new("https://stranger.example", SigningAlg::Es256);
    let answer = app
        .post_register(&json!({ "software_statement": stranger.sign(web_claims()) }))
        .await;
    answer.assert_error(400, "unapproved_software_statement");
}

#[tokio::test]
async fn times_within_the_clock_skew_are_accepted() {
    let app = spawn_app().await;
    let mut c = web_claims();
    c["iat"] = (now() + 30).into();
    c["nbf"] = (now() + 30).into();
    c["exp"] = (now() + 3600).into();
    let statement = app.authority.sign(c);
    let body = app
        .post_register(&json!({ "software_statement": statement }))
        .await
        .assert_created()
        .clone();
    // RFC 7591 §3.2.1, §5; docs/design.md: the client_id expires with the statement, and so
    // does the secret (conformance: client-id-expiry, client-secret-expiry-present)
    assert_eq!(body["client_secret_expires_at"], now_plus(&body, 3600));
}

fn now_plus(body: &Value, secs: u64) -> Value {
    // the statement's exp was set from the same clock a moment before registering
    let issued = body["client_id_issued_at"].as_u64().unwrap();
    let exp = body["client_secret_expires_at"].as_u64().unwrap();
    assert!(
        exp > issued && exp <= issued + secs + 1,
        "exp {exp}, issued {issued}"
    );
    Value::from(exp)
}

#[tokio::test]
async fn the_maximum_client_lifetime_caps_the_expiry() {
    let app = spawn_app_with(|c| c.max_client_lifetime_secs = 600).await;
    let body = app.register_web_client().await;
    let issued = body["client_id_issued_at"].as_u64().unwrap();
    assert_eq!(
        body["client_secret_expires_at"].as_u64().unwrap(),
        issued + 600
    );
}

#[tokio::test]
async fn every_supported_statement_algorithm_verifies() {
    // ES256, ES384, EdDSA here; RS256 and PS256 with one RSA key below
    let mut d = deployment();
    let mut authorities = Vec::new();
    for (i, alg) in [SigningAlg::Es256, SigningAlg::Es384, SigningAlg::EdDsa]
        .into_iter()
        .enumerate()
    {
        let issuer = format!("https://issuer-{i}.example");
        let authority = Authority::new(&issuer, alg);
        let jwks = authority.jwks.clone();
        let path = d.dir.path().join(format!("issuer-{i}.json"));
        std::fs::write(&path, jwks.to_string()).unwrap();
        d.config
            .trusted_issuers
            .push(TrustedIssuer::with_jwks_file(issuer, path));
        authorities.push(authority);
    }
    // an RSA issuer whose JWK does not pin alg: RS256 and PS256 both verify
    let rsa = josekit::jwk::Jwk::generate_rsa_key(2048).unwrap();
    let mut rsa_private = rsa.clone();
    rsa_private.set_key_id("rsa-1");
    let mut rsa_public = rsa.to_public_key().unwrap();
    rsa_public.set_key_id("rsa-1");
    let path = d.dir.path().join("rsa.json");
    std::fs::write(
        &path,
        json!({"keys": [Value::Object(rsa_public.into())]}).to_string(),
    )
    .unwrap();
    d.config
        .trusted_issuers
        .push(TrustedIssuer::with_jwks_file("https://rsa.example", path));
    let app = spawn_deployment(d, |_| {}).await;
    for authority in &authorities {
        let answer = app
            .post_register(&json!({ "software_statement": authority.sign(web_claims()) }))
            .await;
        answer.assert_created();
    }
    for alg in ["RS256", "PS256"] {
        let signer: Box<dyn josekit::jws::JwsSigner> = match alg {
            "RS256" => Box::new(josekit::jws::RS256.signer_from_jwk(&rsa_private).unwrap()),
            _ => Box::new(josekit::jws::PS256.signer_from_jwk(&rsa_private).unwrap()),
        };
        let mut c = web_claims();
        c["iss"] = "https://rsa.example".into();
        let token = jose::sign_compact(
            &header(alg, "rsa-1"),
            c.to_string().as_bytes(),
            signer.as_ref(),
        )
        .unwrap();
        app.post_register(&json!({ "software_statement": token }))
            .await
            .assert_created();
    }
}

#[tokio::test]
async fn a_repeated_statement_still_yields_distinct_clients_and_rechecks_expiry() {
    // the verified-statement cache must not change outcomes: each registration gets its own
    // client, and a statement served from the cache still expires on time
    let start = now();
    let clock = FixedClock::new(start);
    let app = spawn_deployment_at(deployment(), clock.clone(), |c| {
        c.statement_cache_entries = 100;
    })
    .await;
    let exp = start + 300;
    let mut claims = web_claims();
    claims["exp"] = json!(exp);
    claims["iat"] = json!(start);
    let request = json!({ "software_statement": app.authority.sign(claims) });
    let mut ids = std::collections::HashSet::new();
    for _ in 0..5 {
        let body = app.post_register(&request).await.assert_created().clone();
        assert!(ids.insert(body["client_id"].as_str().unwrap().to_owned()));
        assert_eq!(body["client_secret_expires_at"], exp);
    }
    // the last second before exp: still accepted from the cache
    clock.set(exp - 1);
    app.post_register(&request).await.assert_created();
    // at exp the client_id would be dead on arrival (RFC 7519 §4.1.4: on or after exp)
    clock.set(exp);
    app.post_register(&request)
        .await
        .assert_error(400, "invalid_software_statement");
}
