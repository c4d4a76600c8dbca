//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, nightly), one per parser that
//! takes network input. Each takes arbitrary bytes and must never panic; where a property holds
//! for every accepted input (metadata survives its compact form), it is asserted, so that a
//! violation is a finding too. `cargo test` replays every stored corpus and crash input through
//! the same functions on stable (tests/api/fuzz_corpus.rs).

use std::sync::{Arc, LazyLock};

use serde_json::{Map, Value};

use crate::clock::{FixedClock, SharedClock};
use crate::config::{Config, Policy, TrustedIssuer};
use crate::documents::{DocumentsConfig, DocumentsMode, MetadataDocuments};
use crate::fetch::{FetchConfig, Fetcher};
use crate::jwks::PublicJwkSet;
use crate::keys::{signer_for, KeyRing, RegistrarKeys, SigningAlg, VerifierSet};
use crate::metadata::{self, redirect, uri, ApplicationType, ClientMetadata, Form, SubjectType};
use crate::registrar::rules::MetadataRules;
use crate::registrar::{Registrar, RegistrationBody};
use crate::resolve::{Credentials, Resolver, ResolverOptions};
use crate::statement::TrustedIssuers;
use crate::status_list::client::StatusListClient;

/// The time every target sees: fixed, so that a stored input replays the same way.
const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://registrar.fuzz.example";
const AUTHORITY: &str = "https://authority.fuzz.example";

/// Keys and services the targets share, made once per process.
struct World {
    runtime: tokio::runtime::Runtime,
    registrar: RegistrarKeys,
    authority: josekit::jwk::Jwk,
    issuers: TrustedIssuers,
    resolver: Resolver,
    documents: MetadataDocuments,
    client_key: josekit::jwk::Jwk,
    /// A registrar (without a store) for signed registration requests, and a statement of the
    /// trusted authority that carries the client key's public set.
    signed_registrar: Registrar,
    client_statement: String,
    _dir: tempfile_dir::Dir,
}

/// A temporary directory for the authority's key file, removed at exit.
mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[allow(clippy::expect_used)]
static WORLD: LazyLock<World> = LazyLock::new(|| {
    // Set-up failures are the harness's, not the input's: they stop the fuzzer at once.
    let keys_json = RegistrarKeys::generate(SigningAlg::Es256).expect("registrar keys");
    let registrar = RegistrarKeys::from_json(keys_json.to_string().as_bytes()).expect("load");
    let (authority_private, authority_jwks) =
        crate::keys::generate_authority_key(SigningAlg::Es256).expect("authority key");
    let dir = std::env::temp_dir().join(format!("stateless-dcr-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let jwks_file = dir.join("authority.jwks.json");
    std::fs::write(&jwks_file, authority_jwks.to_string()).expect("jwks file");
    let fetcher = Fetcher::new(Default::default()).expect("fetcher");
    let trusted = vec![TrustedIssuer::with_jwks_file(AUTHORITY, jwks_file)];
    let issuers = TrustedIssuers::load(&trusted, 0, &fetcher).expect("issuers");
    let clock: SharedClock = FixedClock::new(NOW);
    let documents = {
        // documents are never fetched here; the URLs inside one (sector, jwks) fail at once
        let fetcher = Fetcher::new(FetchConfig {
            connect_timeout_ms: 1,
            total_timeout_ms: 1,
            ..FetchConfig::default()
        })
        .expect("document fetcher");
        let config = Config {
            client_id_metadata_documents: DocumentsConfig {
                mode: DocumentsMode::On,
                ..DocumentsConfig::default()
            },
            trusted_issuers: trusted.clone(),
            ..Config::default()
        };
        let issuers =
            Arc::new(TrustedIssuers::load(&trusted, 0, &fetcher).expect("document issuers"));
        let lists = Arc::new(StatusListClient::new(fetcher.clone(), None, clock.clone()));
        let rules = Arc::new(MetadataRules::new(&config, issuers, fetcher.clone(), lists));
        MetadataDocuments::new(
            config.client_id_metadata_documents.clone(),
            rules,
            fetcher,
            clock.clone(),
        )
    };
    let ring = KeyRing::new(
        RegistrarKeys::from_json(keys_json.to_string().as_bytes()).expect("load again"),
    );
    let resolver = Resolver::new(ResolverOptions {
        issuer: ISSUER.into(),
        keys: ring.into(),
        status: None,
        fetcher: None,
        audiences: vec![ISSUER.into()],
        cache_entries: 1_000,
        cache_max_bytes: 16 << 20,
        clock,
        lists: None,
    });
    let (client_private, client_jwks) =
        crate::keys::generate_authority_key(SigningAlg::Es256).expect("client key");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let authority_key =
        josekit::jwk::Jwk::from_map(authority_private.as_object().cloned().unwrap_or_default())
            .expect("authority jwk");
    let signed_registrar = {
        let keys_file = dir.join("registrar-keys.json");
        std::fs::write(&keys_file, keys_json.to_string()).expect("registrar key file");
        let config = Config {
            public_url: ISSUER.into(),
            keys: keys_file,
            management: crate::config::Management::None,
            authorization_endpoint: Some(format!("{ISSUER}/authorize")),
            token_endpoint: Some(format!("{ISSUER}/token")),
            trusted_issuers: trusted.clone(),
            fetch: FetchConfig {
                connect_timeout_ms: 1,
                total_timeout_ms: 1,
                ..FetchConfig::default()
            },
            ..Config::default()
        };
        runtime
            .block_on(Registrar::open_with_clock(&config, FixedClock::new(NOW)))
            .expect("registrar")
    };
    let client_statement = sign(
        &authority_key,
        None,
        serde_json::json!({
            "iss": AUTHORITY,
            "software_id": "fuzz-tpp",
            "redirect_uris": ["https://tpp.fuzz.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": client_jwks,
        })
        .to_string()
        .as_bytes(),
    )
    .expect("client statement");
    World {
        runtime,
        registrar,
        authority: authority_key,
        issuers,
        resolver,
        documents,
        client_key: josekit::jwk::Jwk::from_map(
            client_private.as_object().cloned().unwrap_or_default(),
        )
        .expect("client jwk"),
        signed_registrar,
        client_statement,
        _dir: tempfile_dir::Dir(dir),
    }
});

fn json_object(data: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(data) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// Sign `payload` as a JWS with `key` (the harness's own keys, so that the fuzzer reaches the
/// code behind the signature check).
fn sign(key: &josekit::jwk::Jwk, typ: Option<&str>, payload: &[u8]) -> Option<String> {
    let (alg, signer) = signer_for(key).ok()?;
    let mut header = Map::new();
    header.insert("alg".into(), alg.into());
    header.insert("kid".into(), key.key_id()?.into());
    if let Some(typ) = typ {
        header.insert("typ".into(), typ.into());
    }
    crate::jose::sign_compact(&header, payload, signer.as_ref()).ok()
}

/// A registration body: JSON → typed metadata → every validation rule. Whatever is accepted
/// must survive its compact form unchanged (the client_id carries that form).
pub fn registration_body(data: &[u8]) {
    let Some(body) = json_object(data) else {
        return;
    };
    let effective = crate::statement::merge(&body, None);
    let Ok(md) = ClientMetadata::parse(&effective, SubjectType::Public) else {
        return;
    };
    let accepted = metadata::validate(&md, &Policy::default(), true, &[]).is_ok();
    let compact = md.to_json(Form::Compact);
    let again = ClientMetadata::parse(&compact, SubjectType::Public);
    assert!(
        again.as_ref() == Ok(&md),
        "metadata changed through its compact form (accepted: {accepted})"
    );
    let _ = md.to_json(Form::Full);
}

/// A software statement as it arrives: any string.
pub fn software_statement(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let world = &*WORLD;
    let _ = world
        .runtime
        .block_on(world.issuers.verify(text, NOW, 60, 16 * 1024));
}

/// A software statement whose payload is the input, signed by the trusted authority: the claims
/// parsing, the times and the merge behind a valid signature.
pub fn signed_statement(data: &[u8]) {
    let world = &*WORLD;
    let Some(statement) = sign(&world.authority, Some("JWT"), data) else {
        return;
    };
    if let Ok(verified) =
        world
            .runtime
            .block_on(world.issuers.verify(&statement, NOW, 60, 64 * 1024))
    {
        let merged = crate::statement::merge(&Map::new(), Some(&verified.metadata));
        let _ = ClientMetadata::parse(&merged, SubjectType::Public);
    }
}

/// A client_id as presented: any string.
pub fn client_id(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let world = &*WORLD;
    let _ = crate::client_id::verify(world.registrar.verifiers(), ISSUER, text, NOW);
    let _ = world.resolver.verify(text);
}

/// A client_id whose claims are the input, signed by the registrar: claims and embedded
/// metadata parsing behind a valid signature.
pub fn signed_client_id(data: &[u8]) {
    let world = &*WORLD;
    let key = world.registrar.signing_key();
    let Ok(token) = crate::jose::sign_typed(key, crate::client_id::CLIENT_ID_TYP, data) else {
        return;
    };
    let _ = crate::client_id::verify(world.registrar.verifiers(), ISSUER, &token, NOW);
}

/// A status record as read from the store: any string, and one signed by the registrar.
pub fn status_record(data: &[u8]) {
    let world = &*WORLD;
    let verifiers = world.registrar.verifiers();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::status::record::verify(verifiers, "jti", text);
    }
    let key = world.registrar.signing_key();
    if let Ok(signed) = crate::jose::sign_typed(key, crate::status::record::STATUS_TYP, data) {
        let _ = crate::status::record::verify(verifiers, "jti", &signed);
    }
}

/// A redirect URI: the registration rules under every application type, its locality, and
/// matching against itself and a variant.
pub fn redirect_uri(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for application_type in [ApplicationType::Web, ApplicationType::Native] {
        for uses_implicit in [false, true] {
            let rules = redirect::RedirectRules {
                application_type,
                uses_implicit,
                allow_native_https: true,
                private_use_schemes: &[],
            };
            let _ = redirect::check(text, rules);
        }
        // a string always matches itself
        assert!(redirect::matches(text, text, application_type));
        let _ = redirect::matches(text, "http://127.0.0.1:1/cb", application_type);
        let _ = redirect::matches("http://127.0.0.1/cb", text, application_type);
    }
    let _ = uri::redirect_syntax_error(text);
    if let Some(url) = redirect::parse_strict(text) {
        if let Some(host) = url.host() {
            let _ = uri::locality(&host);
        }
    }
}

/// An `Authorization` header value.
pub fn authorization_header(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(token) = crate::http::bearer_credentials(text) {
            assert!(!token.is_empty());
        }
    }
}

/// A client assertion (RFC 7523) presented for a private_key_jwt client: any string, and one
/// signed with the client's key whose claims are the input.
pub fn client_assertion(data: &[u8]) {
    let world = &*WORLD;
    static CLIENT: LazyLock<Option<(String, Arc<crate::resolve::VerifiedClient>)>> =
        LazyLock::new(|| {
            let world = &*WORLD;
            let public = world.client_key.to_public_key().ok()?;
            let mut public: Map<String, Value> = public.into();
            public.insert("kid".into(), world.client_key.key_id()?.into());
            public.insert("alg".into(), "ES256".into());
            let md = serde_json::json!({
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": {"keys": [public]},
            });
            let claims = crate::client_id::ClientIdClaims {
                iss: ISSUER.into(),
                jti: "fuzz-client".into(),
                iat: NOW,
                exp: None,
                client_secret_kid: None,
                access_token_kid: None,
                provenance: None,
                sector: None,
                status: None,
                metadata: ClientMetadata::parse(md.as_object()?, SubjectType::Public).ok()?,
            };
            let id = crate::client_id::mint(&world.registrar, &claims, 8192).ok()?;
            let client = world.resolver.verify(&id).ok()?;
            Some((id, client))
        });
    let Some((_, client)) = CLIENT.as_ref() else {
        return;
    };
    let mut presented = Vec::new();
    if let Ok(text) = std::str::from_utf8(data) {
        presented.push(text.to_owned());
    }
    presented.extend(sign(&world.client_key, None, data));
    for assertion in presented {
        let _ = world.runtime.block_on(
            world
                .resolver
                .authenticate(client, Credentials::Assertion(&assertion)),
        );
    }
}

/// A `sector_identifier_uri` document as fetched.
pub fn sector_document(data: &[u8]) {
    if let Ok(doc) = serde_json::from_slice::<Value>(data) {
        if let Ok(listed) = crate::fetch::sector_redirect_uris(&doc) {
            let _ = crate::fetch::check_sector(&listed, &listed);
        }
    }
}

/// A JWK Set document: a client's `jwks`, a fetched `jwks_uri`, an issuer's keys.
pub fn jwk_set(data: &[u8]) {
    if let Ok(doc) = serde_json::from_slice::<Value>(data) {
        if let Ok(set) = PublicJwkSet::parse(&doc) {
            let _ = set.check_registrable(10);
            let _ = VerifierSet::from_set(&set);
        }
    }
}

/// A `POST /resolve` request body.
pub fn resolve_query(data: &[u8]) {
    if let Some(body) = json_object(data) {
        let _ = crate::http::resolve_api::ResolveQuery::from_json(&body);
    }
}

/// A Status List Token as fetched (draft-ietf-oauth-status-list-18 §5.1): any string, one
/// signed by the registrar whose claims are the input, and the input as a raw `lst`. Whatever
/// decodes must answer for every index without a panic, and round-trip through `encode`.
pub fn status_list_token(data: &[u8]) {
    use crate::status_list::{token, Bits, StatusArray};
    const URI: &str = "https://registrar.fuzz.example/status-lists/0";
    let world = &*WORLD;
    let verifiers = world.registrar.verifiers();
    let check = |list: &StatusArray| {
        let len = list.len();
        for idx in [0, 1, len / 2, len.saturating_sub(1), len, u64::MAX] {
            let _ = list.get(idx);
        }
        let encoded = list.encode();
        if let Ok(lst) = encoded {
            let again = StatusArray::decode(list.bits(), &lst, 1 << 20);
            assert_eq!(
                again.as_ref(),
                Ok(list),
                "a decoded list re-encodes to itself"
            );
        }
    };
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(verified) = token::verify(text, URI, verifiers, NOW, 60, 1 << 20) {
            check(&verified.array);
        }
        for bits in [1, 2, 4, 8] {
            if let Ok(list) =
                StatusArray::decode(Bits::new(bits).unwrap_or(Bits::TWO), text, 1 << 20)
            {
                check(&list);
            }
        }
    }
    let key = world.registrar.signing_key();
    if let Ok(signed) = crate::jose::sign_typed(key, token::TYP, data) {
        if let Ok(verified) = token::verify(&signed, URI, verifiers, NOW, 60, 1 << 20) {
            check(&verified.array);
        }
    }
}

/// A `status` claim (§6.2) as found in a software statement.
pub fn status_reference(data: &[u8]) {
    if let Ok(claim) = serde_json::from_slice::<Value>(data) {
        if let Ok(reference) = crate::status_list::StatusReference::from_claim(&claim) {
            assert!(url::Url::parse(&reference.uri).is_ok());
        }
    }
}

/// An admin API withdrawal request body, and a withdrawal record as read from the store.
pub fn withdrawal(data: &[u8]) {
    if let Some(body) = json_object(data) {
        let _ = crate::registrar::WithdrawalRequest::from_json(&body);
    }
    let world = &*WORLD;
    let verifiers = world.registrar.verifiers();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::status::withdrawal::verify(verifiers, text);
    }
    let key = world.registrar.signing_key();
    let typ = crate::status::withdrawal::WITHDRAWAL_TYP;
    if let Ok(signed) = crate::jose::sign_typed(key, typ, data) {
        let _ = crate::status::withdrawal::verify(verifiers, &signed);
    }
}

/// An initial access token as presented in `Authorization: Bearer` (any string), one whose
/// claims are the input behind a valid signature, its policy against a parsed metadata body,
/// and a use record as read from the store.
pub fn initial_access_token(data: &[u8]) {
    let world = &*WORLD;
    let verifiers = world.registrar.verifiers();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::iat::verify(verifiers, ISSUER, text, NOW);
        let _ = crate::iat::verify_use_record(verifiers, "iat:fuzz", text);
    }
    let key = world.registrar.signing_key();
    if let Ok(signed) = crate::jose::sign_typed(key, crate::iat::IAT_TYP, data) {
        if let Ok(claims) = crate::iat::verify(verifiers, ISSUER, &signed, NOW) {
            let body = serde_json::json!({
                "redirect_uris": ["http://127.0.0.1:3000/cb"],
                "scope": "mcp openid",
                "token_endpoint_auth_method": "none",
            });
            if let Some(body) = body.as_object() {
                if let Ok(md) = ClientMetadata::parse(body, SubjectType::Public) {
                    let _ = claims.policy.check(&md);
                }
            }
        }
    }
}

/// A client ID metadata document as fetched (any bytes), and its client identifier URL: the
/// input as a URL, then as the body of the document at a fixed URL through every rule a
/// document meets.
pub fn client_metadata_document(data: &[u8]) {
    const URL: &str = "https://mcp-client.fuzz.example/client.json";
    let world = &*WORLD;
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::documents::url::parse(text);
        let _ = crate::documents::url::host_allowed(text, &["*.fuzz.example".to_owned()]);
    }
    let Ok(document) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let outcome = world
        .runtime
        .block_on(world.documents.validate(URL, &document, NOW));
    if let Ok(client) = outcome {
        // what was accepted is a client without a secret, under its URL
        assert!(
            !client.metadata().needs_secret(),
            "a document client needs a secret"
        );
        assert_eq!(&*client.client_id, URL);
    }
}

/// A signed registration request (`application/jwt`) as it arrives (any text), and the input as
/// the claims of a request signed with the key its statement fixes, with that statement added
/// when the input has none: parse, statement, signature, claims, then the registration.
pub fn signed_registration_request(data: &[u8]) {
    let world = &*WORLD;
    let register = |jws: &str| {
        let _ = world.runtime.block_on(
            world
                .signed_registrar
                .register_body(RegistrationBody::Signed(jws), None),
        );
    };
    if let Ok(text) = std::str::from_utf8(data) {
        register(text);
    }
    if let Some(mut claims) = json_object(data) {
        claims
            .entry("software_statement")
            .or_insert_with(|| Value::String(world.client_statement.clone()));
        let payload = Value::Object(claims).to_string();
        if let Some(signed) = sign(&world.client_key, Some("JWT"), payload.as_bytes()) {
            register(&signed);
        }
    }
}

/// A distinguished name as registered in `tls_client_auth_subject_dn` (RFC 4514): parsed, and
/// compared with itself, which must match, and with a fixed name.
pub fn distinguished_name(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = crate::metadata::dn::DistinguishedName::parse(text) {
        assert!(
            name.matches(&name),
            "a name that does not match itself: {text:?}"
        );
        if let Ok(fixed) = crate::metadata::dn::DistinguishedName::parse("CN=a,O=b") {
            let _ = name.matches(&fixed);
        }
    }
}

/// A client certificate as the OP passes it to `POST /resolve` (RFC 8705): the input as DER
/// and as text (PEM or base64), then every comparison the resolver makes with a parsed one.
pub fn client_certificate(data: &[u8]) {
    use crate::metadata::TlsSubject;
    use crate::resolve::ClientCertificate;
    let parsed = [
        ClientCertificate::from_der(data).ok(),
        std::str::from_utf8(data)
            .ok()
            .and_then(|text| ClientCertificate::parse(text).ok()),
    ];
    for certificate in parsed.iter().flatten() {
        assert_eq!(certificate.thumbprint().len(), 43, "a SHA-256 in base64url");
        for subject in [
            TlsSubject::SubjectDn("CN=a,O=b+OU=c,C=GB".into()),
            TlsSubject::SanDns("a.example".into()),
            TlsSubject::SanUri("https://a.example/".into()),
            TlsSubject::SanIp("192.0.2.1".into()),
            TlsSubject::SanEmail("a@a.example".into()),
        ] {
            let _ = certificate.matches_subject(&subject);
        }
        let _ = certificate.matches_keys(&serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AA"},
        ]}));
    }
}

/// A fuzz target: bytes in, a panic is a finding.
pub type Target = fn(&[u8]);

/// Every target by its name in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [(&str, Target); 20] = [
    ("registration_body", registration_body),
    ("software_statement", software_statement),
    ("signed_statement", signed_statement),
    ("client_id", client_id),
    ("signed_client_id", signed_client_id),
    ("status_record", status_record),
    ("redirect_uri", redirect_uri),
    ("authorization_header", authorization_header),
    ("client_assertion", client_assertion),
    ("sector_document", sector_document),
    ("jwk_set", jwk_set),
    ("resolve_query", resolve_query),
    ("status_list_token", status_list_token),
    ("status_reference", status_reference),
    ("withdrawal", withdrawal),
    ("initial_access_token", initial_access_token),
    ("client_metadata_document", client_metadata_document),
    ("signed_registration_request", signed_registration_request),
    ("distinguished_name", distinguished_name),
    ("client_certificate", client_certificate),
];
