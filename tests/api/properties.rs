//! Properties over generated inputs (proptest): whatever metadata the validator accepts survives
//! the client_id unchanged, and the merge of a statement and a body never lets the body replace
//! what the statement says (RFC 7591 §2.3, §3.1.1).

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use stateless_dcr::client_id::{self, ClientIdClaims};
use stateless_dcr::config::Policy;
use stateless_dcr::keys::{KeyRing, RegistrarKeys, SigningAlg};
use stateless_dcr::metadata::{self, ClientMetadata, SubjectType};
use stateless_dcr::resolve::{Resolver, ResolverOptions};

const ISSUER: &str = "https://registrar.properties.example";

fn keys() -> RegistrarKeys {
    let json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
    RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap()
}

/// Members drawn from values the rules care about, valid and not, so that a fair share of the
/// generated bodies is accepted.
fn metadata_body() -> impl Strategy<Value = Map<String, Value>> {
    let redirect = prop::sample::select(vec![
        "https://rp.example.com/cb",
        "https://rp.example.com/other?x=1",
        "https://b.rp.example/cb",
        "http://127.0.0.1:8080/cb",
        "http://localhost/cb",
        "com.example.app:/cb",
        "https://localhost./cb",
        "http://rp.example.com/cb",
    ]);
    let grants = prop::sample::subsequence(
        vec![
            "authorization_code",
            "implicit",
            "refresh_token",
            "client_credentials",
        ],
        0..=4,
    );
    let responses = prop::sample::subsequence(
        vec![
            "code",
            "id_token",
            "code id_token",
            "id_token token",
            "token",
        ],
        0..=3,
    );
    let method = prop::sample::select(vec![
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "none",
    ]);
    (
        prop::collection::vec(redirect, 0..4),
        prop::option::of(grants),
        prop::option::of(responses),
        prop::option::of(method),
        prop::option::of(prop::sample::select(vec!["web", "native"])),
        prop::option::of("[a-zA-Z é]{0,20}"),
        prop::option::of(prop::sample::select(vec!["public", "pairwise"])),
        prop::option::of(prop::sample::select(vec![
            "openid",
            "openid profile",
            "a b c",
        ])),
        prop::option::of(0u64..100_000),
        any::<bool>(),
    )
        .prop_map(
            |(uris, grants, responses, method, app, name, subject, scope, age, auth_time)| {
                let mut body = Map::new();
                body.insert("redirect_uris".into(), json!(uris));
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        body.insert(k.into(), v);
                    }
                };
                put("grant_types", grants.map(|g| json!(g)));
                put("response_types", responses.map(|r| json!(r)));
                put("token_endpoint_auth_method", method.map(|m| json!(m)));
                put("application_type", app.map(|a| json!(a)));
                put("client_name", name.map(|n| json!(n)));
                put("subject_type", subject.map(|s| json!(s)));
                put("scope", scope.map(|s| json!(s)));
                put("default_max_age", age.map(|a| json!(a)));
                put("require_auth_time", Some(json!(auth_time)));
                if method == Some("private_key_jwt") {
                    put("jwks_uri", Some(json!("https://rp.example.com/jwks")));
                }
                body
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn accepted_metadata_survives_mint_verify_and_resolve(body in metadata_body()) {
        let Ok(md) = ClientMetadata::parse(&body, SubjectType::Public) else {
            return Ok(());
        };
        if metadata::validate(&md, &Policy::default(), true, &[]).is_err() {
            return Ok(());
        }
        let keys = keys();
        let claims = ClientIdClaims {
            iss: ISSUER.into(),
            jti: client_id::new_jti().unwrap(),
            iat: 1,
            exp: None,
            client_secret_kid: md.needs_secret().then(|| keys.client_secret().active_kid().to_owned()),
            access_token_kid: None,
            provenance: None,
            sector: None,
            status: None,
            metadata: md.clone(),
        };
        let id = client_id::mint(&keys, &claims, 65536).unwrap();
        let verified = client_id::verify(keys.verifiers(), ISSUER, &id, 2).unwrap();
        prop_assert_eq!(&verified.metadata, &md);
        let resolver = Resolver::new(ResolverOptions {
            issuer: ISSUER.into(),
            keys: KeyRing::new(keys).into(),
            status: None,
            fetcher: None,
            audiences: vec![],
            cache_entries: 10,
            cache_max_bytes: 1 << 20,
            clock: stateless_dcr::clock::system(),
            lists: None,
        });
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let resolved = runtime.block_on(resolver.resolve(&id)).unwrap();
        prop_assert_eq!(resolved.metadata(), &md);
    }

    #[test]
    fn a_body_never_replaces_what_the_statement_says(
        statement in metadata_body(),
        body in metadata_body(),
        junk in prop::collection::btree_map("[a-z_#]{1,12}", ".{0,8}", 0..4),
    ) {
        let mut body = body;
        for (k, v) in junk {
            body.insert(k, json!(v));
        }
        let merged = stateless_dcr::statement::merge(&body, Some(&statement));
        for (name, value) in &statement {
            if metadata::is_metadata_member(name) {
                prop_assert_eq!(merged.get(name), Some(value), "{}", name);
            }
        }
        // and nothing that is not metadata gets in
        for name in merged.keys() {
            prop_assert!(metadata::is_metadata_member(name), "{}", name);
        }
    }
}
