//! Initial access tokens (RFC 7591 §3): minted by `stateless-dcr iat issue` (here through the
//! library it calls), presented as `Authorization: Bearer` on `POST /register`.

use serde_json::{json, Value};
use stateless_dcr::config::RegistrationRequires;
use stateless_dcr::iat::{self, TokenClaims, TokenPolicy};
use stateless_dcr::keys::{RegistrarKeys, SigningAlg};
use stateless_dcr::metadata::{AuthMethod, GrantType};

use crate::helpers::{now, spawn_app_with, Answer, TestApp};

const ADMIN: &str = "admin-token-admin-token-admin-token-admin";

fn claims(app: &TestApp, policy: TokenPolicy, max_uses: Option<u64>) -> TokenClaims {
    TokenClaims {
        iss: app.url("").trim_end_matches('/').to_owned(),
        jti: stateless_dcr::client_id::new_jti().unwrap(),
        iat: now(),
        exp: now() + 600,
        label: Some("test tokens".into()),
        max_uses,
        policy,
    }
}

fn mint(app: &TestApp, claims: &TokenClaims) -> String {
    let keys = RegistrarKeys::load(&app.config.keys).unwrap();
    iat::issue(keys.signing_key(), claims).unwrap()
}

fn client(redirect_uri: &str) -> Value {
    json!({
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        "scope": "mcp",
    })
}

async fn register_with(app: &TestApp, token: Option<&str>, body: &Value) -> Answer {
    let mut request = app.client.post(app.url("/register")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Answer::from(request.send().await.unwrap()).await
}

fn token_required(c: &mut stateless_dcr::config::Config) {
    c.registration_requires = Some(RegistrationRequires::InitialAccessToken);
    c.admin_api_tokens = vec![ADMIN.into()];
}

fn assert_unauthorized(answer: &Answer, with_error: bool) {
    answer.assert_error(401, "invalid_token");
    let challenge = answer.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert_eq!(
        challenge.contains("error=\"invalid_token\""),
        with_error,
        "{challenge}"
    );
}

#[tokio::test]
async fn a_required_token_is_verified_and_its_absence_or_forgery_is_401() {
    let app = spawn_app_with(token_required).await;
    let body = client("http://127.0.0.1:3000/cb");
    // RFC 6750 §3.1: no credentials, no error code in the challenge
    assert_unauthorized(&register_with(&app, None, &body).await, false);

    let good = mint(&app, &claims(&app, TokenPolicy::default(), None));
    let info = register_with(&app, Some(&good), &body)
        .await
        .assert_created()
        .clone();
    // no use limit: the token keeps working, and registration wrote nothing
    register_with(&app, Some(&good), &body)
        .await
        .assert_created();
    assert!(info.get("software_statement").is_none());

    // expired
    let mut expired = claims(&app, TokenPolicy::default(), None);
    expired.exp = now() - 1;
    let expired = mint(&app, &expired);
    // another registrar's key
    let other = RegistrarKeys::from_json(
        RegistrarKeys::generate(SigningAlg::Es256)
            .unwrap()
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let forged = iat::issue(
        other.signing_key(),
        &claims(&app, TokenPolicy::default(), None),
    )
    .unwrap();
    // alg none, and a client_id presented as a token (another typ of the same key)
    let none = format!(
        "{}.{}.",
        stateless_dcr::jose::base64url(br#"{"alg":"none","typ":"initial-access-token+jwt"}"#),
        stateless_dcr::jose::base64url(
            &serde_json::to_vec(&claims(&app, TokenPolicy::default(), None)).unwrap()
        )
    );
    let client_id = info["client_id"].as_str().unwrap().to_owned();
    // another registrar's issuer
    let mut elsewhere = claims(&app, TokenPolicy::default(), None);
    elsewhere.iss = "https://other-registrar.example".into();
    let elsewhere = mint(&app, &elsewhere);
    for bad in [
        expired,
        forged,
        none,
        client_id,
        elsewhere,
        "garbage".into(),
    ] {
        assert_unauthorized(&register_with(&app, Some(&bad), &body).await, true);
    }
    // the server still answers
    register_with(&app, Some(&good), &body)
        .await
        .assert_created();
}

#[tokio::test]
async fn each_rule_of_a_token_policy_is_enforced() {
    let app = spawn_app_with(token_required).await;
    let policy = TokenPolicy {
        redirect_uri_prefixes: Some(vec!["http://127.0.0.1:".into()]),
        grant_types: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
        scopes: Some(vec!["mcp".into()]),
        token_endpoint_auth_methods: Some(vec![AuthMethod::None]),
        max_client_lifetime_secs: Some(3600),
        software_id: Some("mcp-fleet".into()),
    };
    let token = mint(&app, &claims(&app, policy, None));
    let info = register_with(&app, Some(&token), &client("http://127.0.0.1:3000/cb"))
        .await
        .assert_created()
        .clone();
    // the fixed software_id is registered
    assert_eq!(info["software_id"], "mcp-fleet");
    let payload = crate::helpers::client_id_payload(&info);
    let exp = payload["exp"].as_u64().unwrap();
    assert!(exp <= now() + 3600, "{payload}");

    let base = client("http://127.0.0.1:3000/cb");
    let with = |member: &str, value: Value| {
        let mut body = base.clone();
        body[member] = value;
        body
    };
    for (body, code) in [
        (
            with("redirect_uris", json!(["https://elsewhere.example/cb"])),
            "invalid_redirect_uri",
        ),
        (
            with("grant_types", json!(["client_credentials"])),
            "invalid_client_metadata",
        ),
        (with("scope", json!("mcp admin")), "invalid_client_metadata"),
        (
            with("token_endpoint_auth_method", json!("client_secret_basic")),
            "invalid_client_metadata",
        ),
        (
            with("software_id", json!("another-app")),
            "invalid_client_metadata",
        ),
    ] {
        register_with(&app, Some(&token), &body)
            .await
            .assert_error(400, code);
    }
}

#[tokio::test]
async fn a_token_of_n_uses_allows_n_registrations_and_a_withdrawn_token_none() {
    let app = spawn_app_with(token_required).await;
    let body = client("http://127.0.0.1:3000/cb");
    let limited = mint(&app, &claims(&app, TokenPolicy::default(), Some(2)));
    // a refused registration takes no use
    let mut bad = body.clone();
    bad["redirect_uris"] = json!(["http://rp.example/cb"]);
    register_with(&app, Some(&limited), &bad)
        .await
        .assert_error(400, "invalid_redirect_uri");
    for _ in 0..2 {
        register_with(&app, Some(&limited), &body)
            .await
            .assert_created();
    }
    let exhausted = register_with(&app, Some(&limited), &body).await;
    assert_unauthorized(&exhausted, true);
    assert!(
        exhausted.body["error_description"]
            .as_str()
            .unwrap()
            .contains("as many times"),
        "{}",
        exhausted.body
    );

    // withdrawn through the admin API, with the registrar's own issuer
    let open_ended = claims(&app, TokenPolicy::default(), None);
    let token = mint(&app, &open_ended);
    register_with(&app, Some(&token), &body)
        .await
        .assert_created();
    let withdrawal = app
        .client
        .post(app.url("/admin/withdrawals"))
        .bearer_auth(ADMIN)
        .json(&json!({"issuer": open_ended.iss, "statement_jti": open_ended.jti}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        withdrawal.status(),
        201,
        "{}",
        withdrawal.text().await.unwrap()
    );
    let refused = register_with(&app, Some(&token), &body).await;
    assert_unauthorized(&refused, true);
    assert!(refused.body["error_description"]
        .as_str()
        .unwrap()
        .contains("withdrawn"));
}

#[tokio::test]
async fn registration_may_require_a_statement_a_token_either_or_both() {
    let body = client("http://127.0.0.1:3000/cb");
    let statement_claims = json!({
        "redirect_uris": ["http://127.0.0.1:3000/cb"],
        "token_endpoint_auth_method": "none",
    });
    for (requires, none, token_only, statement_only, both) in [
        (RegistrationRequires::SoftwareStatement, 400, 400, 201, 201),
        (RegistrationRequires::InitialAccessToken, 401, 201, 401, 201),
        (RegistrationRequires::Either, 401, 201, 201, 201),
        (RegistrationRequires::Both, 401, 400, 401, 201),
        (RegistrationRequires::Nothing, 201, 201, 201, 201),
    ] {
        let app = spawn_app_with(|c| {
            c.registration_requires = Some(requires);
            c.rate_limits.unlimited_open_registration = true;
        })
        .await;
        let token = mint(&app, &claims(&app, TokenPolicy::default(), None));
        let statement = app.authority.sign(statement_claims.clone());
        let mut with_statement = body.clone();
        with_statement["software_statement"] = json!(statement);
        for (expected, token, body) in [
            (none, None, &body),
            (token_only, Some(token.as_str()), &body),
            (statement_only, None, &with_statement),
            (both, Some(token.as_str()), &with_statement),
        ] {
            let answer = register_with(&app, token, body).await;
            assert_eq!(
                answer.status.as_u16(),
                expected,
                "{requires:?} token={} statement={}: {}",
                token.is_some(),
                body.get("software_statement").is_some(),
                answer.body
            );
        }
        let discovery = app.get_json("/.well-known/openid-configuration").await;
        assert_eq!(
            discovery["initial_access_token_required"],
            requires.token(),
            "{requires:?}"
        );
    }
}
