//! Signed registration requests (`application/jwt`, `application/jose`; UK Open Banking DCR,
//! FAPI): verified with the keys the software statement fixes, with real signatures, and each
//! way a request can fail answered with its documented code while the server keeps answering.
//! Also the per-issuer policies federations use: signed requests required or refused, the
//! statement's `aud`, allowed authentication methods, algorithms and response types.

use serde_json::{json, Map, Value};
use stateless_dcr::config::{Config, SignedRequests};
use stateless_dcr::jose;
use stateless_dcr::keys::{self, SigningAlg};

use crate::helpers::https::{json_reply, TestServer};
use crate::helpers::{now, spawn_app_with, Answer, TestApp};

const SOFTWARE_ID: &str = "ob-software-1";

/// A client's own key pair: the statement carries its public set, the client signs with it.
pub(crate) struct ClientKey {
    private: josekit::jwk::Jwk,
    pub(crate) public: Value,
}

impl ClientKey {
    pub(crate) fn new(alg: SigningAlg) -> Self {
        let (private, public) = keys::generate_authority_key(alg).unwrap();
        ClientKey {
            private: josekit::jwk::Jwk::from_map(private.as_object().unwrap().clone()).unwrap(),
            public,
        }
    }

    pub(crate) fn kid(&self) -> String {
        self.private.key_id().unwrap().to_owned()
    }

    pub(crate) fn sign_with_kid(&self, kid: &str, claims: &Value) -> String {
        let (alg, signer) = keys::signer_for(&self.private).unwrap();
        let mut header = Map::new();
        header.insert("alg".into(), alg.into());
        header.insert("kid".into(), kid.into());
        header.insert("typ".into(), "JWT".into());
        jose::sign_compact(&header, claims.to_string().as_bytes(), signer.as_ref()).unwrap()
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.sign_with_kid(&self.kid(), claims)
    }
}

async fn app(change: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(change).await
}

/// The statement's claims: the client's keys inline unless `keys` says otherwise.
fn statement_claims(keys: Value) -> Value {
    let mut claims = json!({
        "software_id": SOFTWARE_ID,
        "client_name": "Open banking TPP",
        "redirect_uris": ["https://tpp.example.com/cb"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "grant_types": ["authorization_code", "client_credentials"],
    });
    for (k, v) in keys.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

/// The request's claims around `statement`, for `audience`, valid for five minutes.
fn request_claims(app: &TestApp, statement: String, changes: Value) -> Value {
    let iat = now();
    let mut claims = json!({
        "iss": SOFTWARE_ID,
        "aud": app.config.issuer(),
        "iat": iat,
        "exp": iat + 300,
        "jti": format!("jti-{}", rand_suffix()),
        "software_statement": statement,
        "redirect_uris": ["https://tpp.example.com/cb"],
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

pub(crate) fn rand_suffix() -> String {
    jose::base64url(&jose::random_id::<12>().unwrap())
}

pub(crate) async fn post_signed(app: &TestApp, content_type: &str, body: &str) -> Answer {
    let response = app
        .client
        .post(app.url("/register"))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    Answer::from(response).await
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2) with a signed request as its body.
pub(crate) async fn put_signed(app: &TestApp, uri: &str, token: &str, body: String) -> Answer {
    let response = app
        .client
        .put(uri)
        .bearer_auth(token)
        .header("content-type", "application/jwt")
        .body(body)
        .send()
        .await
        .unwrap();
    Answer::from(response).await
}

#[tokio::test]
async fn a_request_signed_with_the_statements_key_registers() {
    let app = app(|_| {}).await;
    let client = ClientKey::new(SigningAlg::Es256);
    let statement = app
        .authority
        .sign(statement_claims(json!({"jwks": client.public})));
    for content_type in [
        "application/jwt",
        "application/jose",
        "application/JWT; charset=utf-8",
    ] {
        let jws = client.sign(&request_claims(&app, statement.clone(), json!({})));
        let answer = post_signed(&app, content_type, &jws).await;
        let body = answer.assert_created();
        assert_eq!(body["software_id"], SOFTWARE_ID);
        assert_eq!(body["token_endpoint_auth_method"], "private_key_jwt");
        // the statement is echoed unchanged (RFC 7591 §3.2.1); the request's JWT claims are not
        // client metadata
        assert_eq!(body["software_statement"], statement.as_str());
        for claim in ["iss", "aud", "iat", "exp", "jti"] {
            assert!(body.get(claim).is_none(), "{claim} in {body}");
        }
    }
}

#[tokio::test]
async fn every_bad_signed_request_is_refused_with_its_code() {
    let app = app(|_| {}).await;
    let client = ClientKey::new(SigningAlg::Es256);
    let other = ClientKey::new(SigningAlg::Es256);
    let statement = app
        .authority
        .sign(statement_claims(json!({"jwks": client.public})));
    let claims = |changes: Value| request_claims(&app, statement.clone(), changes);
    let t = now();
    let unsigned = {
        let header = jose::base64url(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = jose::base64url(claims(json!({})).to_string().as_bytes());
        format!("{header}.{payload}.")
    };
    let no_statement = client.sign(&claims(json!({"software_statement": null})));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "another key under the statement's kid",
            other.sign_with_kid(&client.kid(), &claims(json!({}))),
            "invalid_client_metadata",
        ),
        ("alg none", unsigned, "invalid_client_metadata"),
        (
            "the aud of another server",
            client.sign(&claims(json!({"aud": "https://other-registrar.example"}))),
            "invalid_client_metadata",
        ),
        (
            "no aud",
            client.sign(&claims(json!({"aud": null}))),
            "invalid_client_metadata",
        ),
        (
            "expired",
            client.sign(&claims(json!({"iat": t - 1000, "exp": t - 500}))),
            "invalid_client_metadata",
        ),
        (
            "too long-lived",
            client.sign(&claims(json!({"iat": t, "exp": t + 7200}))),
            "invalid_client_metadata",
        ),
        (
            "issued in the future",
            client.sign(&claims(json!({"iat": t + 3600, "exp": t + 3700}))),
            "invalid_client_metadata",
        ),
        (
            "a kid the statement's set lacks",
            client.sign_with_kid("not-in-the-set", &claims(json!({}))),
            "invalid_client_metadata",
        ),
        (
            "an iss that is not the software_id",
            client.sign(&claims(json!({"iss": "someone-else"}))),
            "invalid_client_metadata",
        ),
        (
            "no jti",
            client.sign(&claims(json!({"jti": null}))),
            "invalid_client_metadata",
        ),
        ("no statement", no_statement, "invalid_software_statement"),
        (
            "a forged statement",
            client.sign(&claims(json!({"software_statement": other.sign(&statement_claims(json!({"jwks": client.public})))}))),
            "invalid_software_statement",
        ),
        ("not a JWS", "not-a-jws".to_owned(), "invalid_client_metadata"),
        ("empty", String::new(), "invalid_client_metadata"),
        (
            "a JSON body sent as a JWT",
            json!({"redirect_uris": ["https://tpp.example.com/cb"]}).to_string(),
            "invalid_client_metadata",
        ),
    ];
    for (case, body, code) in cases {
        let answer = post_signed(&app, "application/jwt", &body).await;
        assert_eq!(answer.status, 400, "{case}: {}", answer.body);
        assert_eq!(answer.body["error"], code, "{case}: {}", answer.body);
        assert!(answer.body["error_description"].is_string(), "{case}");
    }
    // not UTF-8
    let response = app
        .client
        .post(app.url("/register"))
        .header("content-type", "application/jose")
        .body(vec![0xff, 0xfe, 0x00])
        .send()
        .await
        .unwrap();
    Answer::from(response)
        .await
        .assert_error(400, "invalid_client_metadata");

    // replayed: the first use registers, the second is refused
    let jws = client.sign(&claims(json!({})));
    post_signed(&app, "application/jwt", &jws)
        .await
        .assert_created();
    let replayed = post_signed(&app, "application/jwt", &jws).await;
    replayed.assert_error(400, "invalid_client_metadata");
    assert!(replayed.body["error_description"]
        .as_str()
        .unwrap()
        .contains("seen before"));

    // the server still answers
    let discovery = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["issuer"], app.config.issuer());
}

#[tokio::test]
async fn the_keys_behind_software_jwks_endpoint_verify_the_request() {
    let server = TestServer::start().await;
    let client = ClientKey::new(SigningAlg::Es256);
    server.route("/tpp/jwks", json_reply(&client.public));
    let fetch = server.config();
    let app = app(move |c| c.fetch = fetch).await;
    // UK Open Banking names the keys software_jwks_endpoint; as client metadata (for
    // private_key_jwt) the statement also sets jwks_uri, and one fetch serves both
    let statement = app.authority.sign(statement_claims(json!({
        "software_jwks_endpoint": server.url("/tpp/jwks"),
        "jwks_uri": server.url("/tpp/jwks"),
    })));
    let jws = client.sign(&request_claims(&app, statement.clone(), json!({})));
    post_signed(&app, "application/jwt", &jws)
        .await
        .assert_created();
    assert_eq!(server.requests("/tpp/jwks"), 1);
    // a key the endpoint does not serve
    let stranger = ClientKey::new(SigningAlg::Es256);
    let jws = stranger.sign(&request_claims(&app, statement, json!({})));
    post_signed(&app, "application/jwt", &jws)
        .await
        .assert_error(400, "invalid_client_metadata");
}

#[tokio::test]
async fn an_issuer_may_require_or_refuse_signed_requests() {
    let client = ClientKey::new(SigningAlg::Es256);
    let required =
        app(|c| c.trusted_issuers[0].signed_requests = Some(SignedRequests::Required)).await;
    let statement = required
        .authority
        .sign(statement_claims(json!({"jwks": client.public})));
    // a JSON body with the same statement is refused
    let answer = required
        .post_register(&json!({
            "software_statement": statement,
            "redirect_uris": ["https://tpp.example.com/cb"],
        }))
        .await;
    answer.assert_error(400, "invalid_client_metadata");
    assert!(answer.body["error_description"]
        .as_str()
        .unwrap()
        .contains("signed request"));
    let jws = client.sign(&request_claims(&required, statement.clone(), json!({})));
    let registered = post_signed(&required, "application/jwt", &jws).await;
    let information = registered.assert_created().clone();

    // the update of such a client is signed too (RFC 7592 §2.2 with the same form)
    let uri = information["registration_client_uri"].as_str().unwrap();
    let token = information["registration_access_token"].as_str().unwrap();
    let unsigned = required
        .put_config(
            uri,
            Some(token),
            &json!({
                "client_id": information["client_id"],
                "redirect_uris": ["https://tpp.example.com/cb"],
            }),
        )
        .await;
    unsigned.assert_error(400, "invalid_client_metadata");
    let update = client.sign(&request_claims(
        &required,
        statement.clone(),
        json!({
            "client_id": information["client_id"],
            "client_name": "Renamed TPP",
        }),
    ));
    let updated = put_signed(&required, uri, token, update).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    // the statement's client_name takes precedence over the request's
    assert_eq!(updated.body["client_name"], "Open banking TPP");

    let refused =
        app(|c| c.trusted_issuers[0].signed_requests = Some(SignedRequests::Refused)).await;
    let statement = refused
        .authority
        .sign(statement_claims(json!({"jwks": client.public})));
    let jws = client.sign(&request_claims(&refused, statement, json!({})));
    post_signed(&refused, "application/jwt", &jws)
        .await
        .assert_error(400, "invalid_client_metadata");
}

#[tokio::test]
async fn an_issuer_may_scope_its_statements_to_this_registrar() {
    let app =
        app(|c| c.trusted_issuers[0].audience = Some("https://registrar.ob.example".into())).await;
    let mut claims = statement_claims(json!({}));
    let answer = app.register(claims.clone(), json!({})).await;
    answer.assert_error(400, "invalid_software_statement");
    assert!(answer.body["error_description"]
        .as_str()
        .unwrap()
        .contains("aud"));
    claims["aud"] = json!(["https://other.example", "https://registrar.ob.example"]);
    claims["token_endpoint_auth_method"] = json!("client_secret_basic");
    claims
        .as_object_mut()
        .unwrap()
        .remove("token_endpoint_auth_signing_alg");
    app.register(claims, json!({})).await.assert_created();
}

#[tokio::test]
async fn fapi_policies_of_an_issuer_limit_methods_algorithms_and_response_types() {
    let app = app(|c| {
        let issuer = &mut c.trusted_issuers[0];
        issuer.allowed_token_endpoint_auth_methods =
            Some(vec![stateless_dcr::metadata::AuthMethod::PrivateKeyJwt]);
        issuer.allowed_signing_algs = Some(vec!["PS256".into(), "ES256".into()]);
        issuer.allowed_response_types =
            Some(vec![
                stateless_dcr::metadata::ResponseType::parse("code").unwrap()
            ]);
    })
    .await;
    let client = ClientKey::new(SigningAlg::Es256);
    let base =
        statement_claims(json!({"jwks": client.public, "id_token_signed_response_alg": "PS256"}));
    app.register(base.clone(), json!({})).await.assert_created();
    for (change, needle) in [
        (
            json!({"token_endpoint_auth_method": "client_secret_basic", "token_endpoint_auth_signing_alg": null}),
            "token_endpoint_auth_method",
        ),
        (json!({"token_endpoint_auth_signing_alg": "RS256"}), "RS256"),
        (
            json!({"id_token_signed_response_alg": "RS256"}),
            "id_token_signed_response_alg",
        ),
        (
            json!({"response_types": ["code id_token"], "grant_types": ["authorization_code", "implicit"]}),
            "response type",
        ),
    ] {
        let mut claims = base.clone();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        let answer = app.register(claims, json!({})).await;
        answer.assert_error(400, "unapproved_software_statement");
        let description = answer.body["error_description"].as_str().unwrap();
        assert!(description.contains(needle), "{needle}: {description}");
    }
    // a request signed with an algorithm the issuer does not allow
    let p384 = ClientKey::new(SigningAlg::Es384);
    let statement = app.authority.sign(statement_claims(
        json!({"jwks": p384.public, "id_token_signed_response_alg": "PS256"}),
    ));
    let jws = p384.sign(&request_claims(&app, statement, json!({})));
    let answer = post_signed(&app, "application/jwt", &jws).await;
    answer.assert_error(400, "invalid_client_metadata");
    assert!(answer.body["error_description"]
        .as_str()
        .unwrap()
        .contains("ES384"));
}
