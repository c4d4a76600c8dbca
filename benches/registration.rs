//! The registration pipeline without HTTP, and its parts (docs/benchmarks.md).
//!
//! `cargo bench --bench registration`. Groups:
//! - `register`: `Registrar::register` end to end: with distinct statements and no statement
//!   cache (every registration verifies a signature), and with one statement repeated and the
//!   cache on (the federation case);
//! - `parts`: each step of it, and the two ES256 operations alone.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{Map, Value};
use stateless_dcr::client_id::{self, ClientIdClaims, Provenance};
use stateless_dcr::fetch::Fetcher;
use stateless_dcr::jose::CompactJws;
use stateless_dcr::keys::{RegistrarKeys, VerifierSet};
use stateless_dcr::metadata::{self, ClientMetadata, SubjectType};
use stateless_dcr::statement::{self, TrustedIssuers};
use stateless_dcr::Registrar;

/// Distinct statements cycled through by the benchmarks that must not hit a cache.
const POOL: usize = 2_000;

fn register(c: &mut Criterion) {
    let rt = common::runtime();
    let statements = common::statements(POOL);
    let bodies: Vec<Map<String, Value>> = statements.iter().map(|s| common::body(s)).collect();
    let mut group = c.benchmark_group("register");
    group.throughput(Throughput::Elements(1));

    let uncached = Registrar::without_store(&common::config(0)).unwrap();
    let mut i = 0;
    group.bench_function("distinct_statements", |b| {
        b.iter(|| {
            i = (i + 1) % POOL;
            rt.block_on(uncached.register(black_box(&bodies[i]), None))
                .unwrap()
        })
    });

    let cached = Registrar::without_store(&common::config(10_000)).unwrap();
    group.bench_function("repeated_statement", |b| {
        b.iter(|| {
            rt.block_on(cached.register(black_box(&bodies[0]), None))
                .unwrap()
        })
    });
    group.finish();
}

fn parts(c: &mut Criterion) {
    let rt = common::runtime();
    let config = common::config(0);
    let fetcher = Fetcher::new(config.fetch.clone()).unwrap();
    let statements = common::statements(POOL);
    let statement = statements[0].as_str();
    let now = common::now();
    let mut group = c.benchmark_group("parts");
    group.throughput(Throughput::Elements(1));

    // the request body as the HTTP layer receives it
    let body_bytes = serde_json::to_vec(&common::body(statement)).unwrap();
    group.bench_function("request_json_parse", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&body_bytes)).unwrap())
    });

    // statement verification: parse, issuer, key, signature, times
    let issuers = TrustedIssuers::load(&config.trusted_issuers, 0, &fetcher).unwrap();
    let mut i = 0;
    group.bench_function("statement_verify_uncached", |b| {
        b.iter(|| {
            i = (i + 1) % POOL;
            rt.block_on(issuers.verify(black_box(&statements[i]), now, 60, 16 * 1024))
                .unwrap()
        })
    });
    let cached_issuers = TrustedIssuers::load(&config.trusted_issuers, 10_000, &fetcher).unwrap();
    group.bench_function("statement_verify_cached", |b| {
        b.iter(|| {
            rt.block_on(cached_issuers.verify(black_box(statement), now, 60, 16 * 1024))
                .unwrap()
        })
    });
    let authority = VerifierSet::from_jwks(
        &serde_json::from_slice(&std::fs::read("keys/dev-authority.jwks.json").unwrap()).unwrap(),
    )
    .unwrap();
    let jws = CompactJws::parse(statement).unwrap();
    let verifier = authority.select(jws.kid(), "ES256").unwrap();
    group.bench_function("es256_verify_josekit", |b| {
        b.iter(|| black_box(&jws).verify(verifier).unwrap())
    });
    group.bench_function("jws_parse", |b| {
        b.iter(|| CompactJws::parse(black_box(statement)).unwrap())
    });

    // merge, types and defaults, validation
    let verified = rt
        .block_on(issuers.verify(statement, now, 60, 16 * 1024))
        .unwrap();
    let request = common::body(statement);
    group.bench_function("merge_parse_validate", |b| {
        b.iter(|| {
            let effective = statement::merge(black_box(&request), Some(&verified.metadata));
            let md = ClientMetadata::parse(&effective, SubjectType::Public).unwrap();
            metadata::validate(&md, &config.policy, true, &[]).unwrap();
            md
        })
    });

    // minting: claims, payload JSON, ES256 signature
    let keys = RegistrarKeys::load(&config.keys).unwrap();
    let effective = statement::merge(&request, Some(&verified.metadata));
    let md = ClientMetadata::parse(&effective, SubjectType::Public).unwrap();
    let claims = ClientIdClaims {
        iss: config.issuer().to_owned(),
        jti: client_id::new_jti().unwrap(),
        iat: now,
        exp: verified.exp,
        client_secret_kid: Some(keys.client_secret().active_kid().to_owned()),
        access_token_kid: Some(keys.registration_access_token().active_kid().to_owned()),
        provenance: Some(Provenance {
            iss: verified.issuer.clone(),
            jti: verified.jti.clone(),
            sha256: None,
            fixed: verified.metadata.keys().cloned().collect(),
            status: None,
            org_id: None,
            org_name: None,
            software_roles: Vec::new(),
        }),
        sector: None,
        status: None,
        metadata: md,
    };
    group.bench_function("mint_client_id", |b| {
        b.iter(|| client_id::mint(&keys, black_box(&claims), 4096).unwrap())
    });
    let signing_input = client_id::mint(&keys, &claims, 4096).unwrap();
    let signing_input = &signing_input[..signing_input.rfind('.').unwrap()];
    let signer = &keys.signing_key().signer;
    group.bench_function("es256_sign_josekit", |b| {
        b.iter(|| signer.sign(black_box(signing_input.as_bytes())).unwrap())
    });
    // the same two operations through OpenSSL's low-level ECDSA (ECDSA_do_sign/do_verify over a
    // SHA-256 digest), as `openssl speed ecdsap256` measures them: the floor josekit's EVP path
    // is compared with
    let authority_jwk =
        josekit::jwk::Jwk::from_map(common::read_json(common::AUTHORITY_KEY)).unwrap();
    let pem = josekit::jwk::alg::ec::EcKeyPair::from_jwk(&authority_jwk)
        .unwrap()
        .to_traditional_pem_private_key();
    let ec = openssl::ec::EcKey::private_key_from_pem(&pem).unwrap();
    group.bench_function("es256_sign_openssl_lowlevel", |b| {
        b.iter(|| {
            let digest = openssl::sha::sha256(black_box(signing_input.as_bytes()));
            openssl::ecdsa::EcdsaSig::sign(&digest, &ec).unwrap()
        })
    });
    let digest = openssl::sha::sha256(signing_input.as_bytes());
    let signature = openssl::ecdsa::EcdsaSig::sign(&digest, &ec).unwrap();
    group.bench_function("es256_verify_openssl_lowlevel", |b| {
        b.iter(|| {
            let digest = openssl::sha::sha256(black_box(signing_input.as_bytes()));
            assert!(signature.verify(&digest, &ec).unwrap())
        })
    });
    // and through ring (already in the tree for HMAC and rustls), to see whether its P-256 is
    // faster than OpenSSL's on this machine
    let mut context = openssl::bn::BigNumContext::new().unwrap();
    let point = ec
        .public_key()
        .to_bytes(
            ec.group(),
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut context,
        )
        .unwrap();
    let scalar = ec.private_key().to_vec_padded(32).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let ring_key = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &scalar,
        &point,
        &rng,
    )
    .unwrap();
    group.bench_function("es256_sign_ring", |b| {
        b.iter(|| {
            ring_key
                .sign(&rng, black_box(signing_input.as_bytes()))
                .unwrap()
        })
    });
    let ring_signature = ring_key.sign(&rng, signing_input.as_bytes()).unwrap();
    let ring_public =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point);
    group.bench_function("es256_verify_ring", |b| {
        b.iter(|| {
            ring_public
                .verify(black_box(signing_input.as_bytes()), ring_signature.as_ref())
                .unwrap()
        })
    });
    group.bench_function("new_jti", |b| b.iter(|| client_id::new_jti().unwrap()));
    let csk = keys.client_secret().active_kid().to_owned();
    let rtk = keys.registration_access_token().active_kid().to_owned();
    group.bench_function("derive_secret_and_token", |b| {
        b.iter(|| {
            (
                client_id::client_secret(keys.client_secret(), &csk, black_box(&claims.jti))
                    .unwrap(),
                client_id::registration_access_token(
                    keys.registration_access_token(),
                    &rtk,
                    black_box(&claims.jti),
                    0,
                )
                .unwrap(),
            )
        })
    });

    // the response as the HTTP layer writes it
    let response = rt
        .block_on(
            Registrar::without_store(&config)
                .unwrap()
                .register(&common::body(statement), None),
        )
        .unwrap();
    group.bench_function("response_json_write", |b| {
        b.iter(|| serde_json::to_vec(black_box(&response)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, register, parts);
criterion_main!(benches);
