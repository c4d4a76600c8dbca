//! Resolving a client_id, and checking a client_secret (docs/benchmarks.md).
//!
//! `cargo bench --bench resolve`:
//! - `resolve/verify_uncached`: signature, claims, embedded metadata parsed (what a cache miss
//!   costs: the metadata is parsed with the claims);
//! - `resolve/verify_cached`, `resolve/resolve_cached`: `Resolver::verify` / `Resolver::resolve`
//!   of a client_id already in the cache of verified client_ids (no status store);
//! - `resolve/client_secret_check`: `Resolver::authenticate` with `client_secret_basic`.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stateless_dcr::client_id;
use stateless_dcr::keys::RegistrarKeys;
use stateless_dcr::resolve::Credentials;
use stateless_dcr::Registrar;

fn resolve(c: &mut Criterion) {
    let rt = common::runtime();
    let config = common::config(10_000);
    let registrar = Registrar::without_store(&config).unwrap();
    let statement = common::statements(1).remove(0);
    let registered = rt
        .block_on(registrar.register(&common::body(&statement)))
        .unwrap();
    let client_id = registered.client_id().to_owned();
    let secret = registered.client_secret().unwrap().expose().to_owned();
    let keys = RegistrarKeys::load(&config.keys).unwrap();
    let issuer = config.issuer().to_owned();
    let resolver = registrar.resolver();
    let mut group = c.benchmark_group("resolve");
    group.throughput(Throughput::Elements(1));

    group.bench_function("verify_uncached", |b| {
        b.iter(|| {
            client_id::verify(
                keys.verifiers(),
                &issuer,
                black_box(&client_id),
                common::now(),
            )
            .unwrap()
        })
    });
    resolver.verify(&client_id).unwrap();
    group.bench_function("verify_cached", |b| {
        b.iter(|| resolver.verify(black_box(&client_id)).unwrap())
    });
    group.bench_function("resolve_cached", |b| {
        b.iter(|| {
            rt.block_on(resolver.resolve(black_box(&client_id)))
                .unwrap()
        })
    });
    let client = resolver.verify(&client_id).unwrap();
    group.bench_function("client_secret_check", |b| {
        b.iter(|| {
            rt.block_on(
                resolver.authenticate(&client, Credentials::SecretBasic(black_box(&secret))),
            )
            .unwrap()
        })
    });
    group.bench_function("client_secret_derive", |b| {
        let csk = client.client_secret_kid().unwrap().to_owned();
        b.iter(|| {
            client_id::client_secret(keys.client_secret(), &csk, black_box(client.jti())).unwrap()
        })
    });
    let wrong: String = secret.chars().rev().collect();
    group.bench_function("client_secret_check_wrong", |b| {
        b.iter(|| {
            rt.block_on(resolver.authenticate(&client, Credentials::SecretBasic(black_box(&wrong))))
                .unwrap_err()
        })
    });
    group.finish();
}

criterion_group!(benches, resolve);
criterion_main!(benches);
