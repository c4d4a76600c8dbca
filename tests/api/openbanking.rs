//! The `openbanking-uk` statement profile end to end: an SSA from a test Directory key, a
//! registration request signed with the key behind the SSA's `software_jwks_endpoint` (served
//! by the local https test server), a `tls_client_auth` client with a subject DN, and then the
//! OP's `POST /resolve` with the client's certificate (made with rcgen). Each rule of the
//! profile refused with its documented code.

use rcgen::DnType;
use serde_json::{json, Value};
use stateless_dcr::config::{Config, StatementProfile};
use stateless_dcr::keys::SigningAlg;

use crate::helpers::https::{json_reply, TestServer};
use crate::helpers::{now, spawn_app_with, Answer, TestApp, RESOLVE_API_TOKEN};
use crate::mtls::{certificate, der_base64, thumbprint};
use crate::signed_requests::{post_signed, put_signed, rand_suffix, ClientKey};

const SOFTWARE_ID: &str = "ZqvcCzPoy9uL7MJ5B7Hm3R";
const ORG_ID: &str = "0015800001041RHAAY";
const SUBJECT_DN: &str = "CN=ZqvcCzPoy9uL7MJ5B7Hm3R,OU=0015800001041RHAAY,O=OpenBanking,C=GB";

struct Ob {
    app: TestApp,
    server: TestServer,
    client: ClientKey,
}

async fn ob() -> Ob {
    ob_with(|_| {}).await
}

/// A registrar whose first issuer has the OB profile, with `change` applied to its config, and
/// the TPP's key set served at the SSA's `software_jwks_endpoint`.
async fn ob_with(change: impl FnOnce(&mut Config)) -> Ob {
    let server = TestServer::start().await;
    let client = ClientKey::new(SigningAlg::Es256);
    server.route("/tpp/software.jwks", json_reply(&client.public));
    let fetch = server.config();
    let app = spawn_app_with(move |c| {
        c.fetch = fetch;
        c.resolve_api_tokens = vec![RESOLVE_API_TOKEN.into()];
        c.trusted_issuers[0].profile = StatementProfile::OpenbankingUk;
        change(c);
    })
    .await;
    Ob {
        app,
        server,
        client,
    }
}

impl Ob {
    /// An SSA as the OB Directory writes one, with `changes` (null removes a claim).
    fn ssa(&self, changes: Value) -> String {
        let mut claims = json!({
            "jti": rand_suffix(),
            "software_environment": "sandbox",
            "software_mode": "Test",
            "software_id": SOFTWARE_ID,
            "software_client_id": SOFTWARE_ID,
            "software_client_name": "Budget App",
            "software_client_description": "Budgets from your accounts",
            "software_version": 1.1,
            "software_client_uri": "https://tpp.example.com",
            "software_redirect_uris": ["https://tpp.example.com/cb", "https://tpp.example.com/cb2"],
            "software_roles": ["AISP"],
            "software_logo_uri": "https://tpp.example.com/logo.png",
            "software_policy_uri": "https://tpp.example.com/privacy",
            "software_tos_uri": "https://tpp.example.com/terms",
            "software_jwks_endpoint": self.server.url("/tpp/software.jwks"),
            "org_status": "Active",
            "org_id": ORG_ID,
            "org_name": "TPP Ltd",
            "org_jwks_endpoint": self.server.url("/tpp/org.jwks"),
        });
        edit(&mut claims, changes);
        self.app.authority.sign(claims)
    }

    /// The OB DCR 3.3 registration request around `ssa`, signed with the software's key.
    fn request(&self, ssa: String, changes: Value) -> String {
        let iat = now();
        let mut claims = json!({
            "iss": SOFTWARE_ID,
            "aud": self.app.config.issuer(),
            "iat": iat,
            "exp": iat + 300,
            "jti": rand_suffix(),
            "software_statement": ssa,
            "software_id": SOFTWARE_ID,
            "redirect_uris": ["https://tpp.example.com/cb"],
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": SUBJECT_DN,
            "tls_client_certificate_bound_access_tokens": true,
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "response_types": ["code"],
            "scope": "openid accounts",
            "application_type": "web",
            "id_token_signed_response_alg": "PS256",
            "request_object_signing_alg": "PS256",
        });
        edit(&mut claims, changes);
        self.client.sign(&claims)
    }

    async fn register(&self, request: &str) -> Answer {
        post_signed(&self.app, "application/jwt", request).await
    }
}

fn edit(claims: &mut Value, changes: Value) {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
}

#[tokio::test]
async fn an_open_banking_registration_resolves_with_the_clients_certificate() {
    let ob = ob().await;
    let answer = ob.register(&ob.request(ob.ssa(json!({})), json!({}))).await;
    let body = answer.assert_created().clone();
    // the SSA's claims under their RFC 7591 names
    assert_eq!(body["client_name"], "Budget App");
    assert_eq!(body["software_id"], SOFTWARE_ID);
    assert_eq!(body["software_version"], "1.1");
    assert_eq!(body["logo_uri"], "https://tpp.example.com/logo.png");
    assert_eq!(body["tos_uri"], "https://tpp.example.com/terms");
    assert_eq!(body["jwks_uri"], ob.server.url("/tpp/software.jwks"));
    // the request chose one of the SSA's redirect URIs
    assert_eq!(body["redirect_uris"], json!(["https://tpp.example.com/cb"]));
    assert_eq!(body["tls_client_auth_subject_dn"], SUBJECT_DN);
    assert!(body.get("client_secret").is_none(), "{body}");

    // the OP resolves it with the certificate its TLS terminator accepted
    let (presented, _) = certificate(
        &[
            (DnType::CountryName, "GB"),
            (DnType::OrganizationName, "OpenBanking"),
            (DnType::OrganizationalUnitName, ORG_ID),
            (DnType::CommonName, SOFTWARE_ID),
        ],
        vec![],
    );
    let resolved = ob
        .app
        .resolve_api(json!({
            "client_id": body["client_id"],
            "grant_type": "client_credentials",
            "client_certificate": der_base64(&presented),
        }))
        .await;
    assert_eq!(resolved.body["valid"], true, "{}", resolved.body);
    assert_eq!(resolved.body["authenticated"], true);
    assert_eq!(resolved.body["cnf"]["x5t#S256"], thumbprint(&presented));
    let provenance = &resolved.body["software_statement"];
    assert_eq!(provenance["org_id"], ORG_ID);
    assert_eq!(provenance["org_name"], "TPP Ltd");
    assert_eq!(provenance["software_roles"], json!(["AISP"]));

    // a certificate of another subject (another organisation unit) is not the client
    let (other, _) = certificate(
        &[
            (DnType::CountryName, "GB"),
            (DnType::OrganizationName, "OpenBanking"),
            (DnType::OrganizationalUnitName, "0015800001ZZZZZZZZ"),
            (DnType::CommonName, SOFTWARE_ID),
        ],
        vec![],
    );
    let refused = ob
        .app
        .resolve_api(json!({"client_id": body["client_id"], "client_certificate": other.pem()}))
        .await;
    assert_eq!(refused.body["valid"], false, "{}", refused.body);
    assert_eq!(refused.body["error"], "invalid_client");

    // an update presents the SSA again, signed; a JSON body is refused
    let uri = body["registration_client_uri"].as_str().unwrap();
    let token = body["registration_access_token"].as_str().unwrap();
    let unsigned = ob
        .app
        .put_config(
            uri,
            Some(token),
            &json!({"client_id": body["client_id"], "redirect_uris": ["https://tpp.example.com/cb2"]}),
        )
        .await;
    unsigned.assert_error(400, "invalid_client_metadata");
    let update = ob.request(
        ob.ssa(json!({})),
        json!({"client_id": body["client_id"], "redirect_uris": ["https://tpp.example.com/cb2"]}),
    );
    let updated = put_signed(&ob.app, uri, token, update).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(
        updated.body["redirect_uris"],
        json!(["https://tpp.example.com/cb2"])
    );
}

#[tokio::test]
async fn every_rule_of_the_profile_is_refused_with_its_code() {
    let ob = ob().await;
    let ssa = || ob.ssa(json!({}));
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "a redirect URI the SSA does not list",
            ob.request(
                ssa(),
                json!({"redirect_uris": ["https://tpp.example.com/cb", "https://evil.example/cb"]}),
            ),
            400,
            "invalid_redirect_uri",
        ),
        (
            "payments without the PISP role",
            ob.request(ssa(), json!({"scope": "openid accounts payments"})),
            400,
            "invalid_client_metadata",
        ),
        (
            "another software_id",
            ob.request(ssa(), json!({"software_id": "another-software"})),
            400,
            "invalid_client_metadata",
        ),
        (
            "a request without iss",
            ob.request(ssa(), json!({"iss": null})),
            400,
            "invalid_client_metadata",
        ),
        (
            "an SSA without org_id",
            ob.request(ob.ssa(json!({"org_id": null})), json!({})),
            400,
            "invalid_software_statement",
        ),
        (
            "an SSA without software_jwks_endpoint",
            ob.request(ob.ssa(json!({"software_jwks_endpoint": null})), json!({})),
            400,
            "invalid_software_statement",
        ),
        (
            "an organisation that is not active",
            ob.request(ob.ssa(json!({"org_status": "Revoked"})), json!({})),
            400,
            "unapproved_software_statement",
        ),
        (
            "keys of its own beside the SSA's",
            ob.request(
                ssa(),
                json!({"jwks": {"keys": [ob.client.public["keys"][0]]}}),
            ),
            400,
            "invalid_client_metadata",
        ),
    ];
    for (what, request, status, code) in cases {
        let answer = ob.register(&request).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        assert_eq!(answer.error(), code, "{what}: {}", answer.body);
    }
    // with the PISP role, payments is fine; and a JSON body is refused (signed requests are
    // the profile's default)
    let with_pisp = ob.ssa(json!({"software_roles": ["AISP", "PISP"]}));
    ob.register(&ob.request(
        with_pisp.clone(),
        json!({"scope": "openid accounts payments"}),
    ))
    .await
    .assert_created();
    let json_body = ob
        .app
        .post_register(&json!({
            "software_statement": with_pisp,
            "redirect_uris": ["https://tpp.example.com/cb"],
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": SUBJECT_DN,
        }))
        .await;
    json_body.assert_error(400, "invalid_client_metadata");
    // and the server still answers
    ob.register(&ob.request(ssa(), json!({})))
        .await
        .assert_created();
}

#[tokio::test]
async fn bound_tokens_can_be_required_by_the_issuer() {
    let ob = ob_with(|c| c.trusted_issuers[0].require_certificate_bound_access_tokens = true).await;
    let unbound = ob.request(
        ob.ssa(json!({})),
        json!({"tls_client_certificate_bound_access_tokens": null}),
    );
    ob.register(&unbound)
        .await
        .assert_error(400, "unapproved_software_statement");
    ob.register(&ob.request(ob.ssa(json!({})), json!({})))
        .await
        .assert_created();
}
