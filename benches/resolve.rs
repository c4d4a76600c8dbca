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
        .block_on(registrar.register(&common::body(&statement), None))
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

/// `resolve/resolve_cached_with_status_list`: `Resolver::resolve` on a node without the status
/// store (an edge node), the client_id cached, its registrar's status list cached: the list
/// lookup every resolve makes (draft-ietf-oauth-status-list-18 §8.3).
fn resolve_with_status_list(c: &mut Criterion) {
    use stateless_dcr::fetch::{FetchConfig, Fetcher};
    use stateless_dcr::keys::{PublishedKeys, VerifierSet};
    use stateless_dcr::resolve::{ListChecks, Resolver, ResolverOptions};
    use stateless_dcr::status_list::client::{DirectLists, StatusListClient};
    use std::sync::Arc;

    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let config = stateless_dcr::Config {
        public_url: address.clone(),
        listen: listener.local_addr().unwrap(),
        workers: Some(1),
        status_store: stateless_dcr::status::StatusStoreConfig {
            path: dir.path().join("status.redb"),
            ..Default::default()
        },
        ..common::config(10_000)
    };
    let config = stateless_dcr::Config {
        management: stateless_dcr::config::Management::Full,
        ..config
    };
    let issuer = config.issuer().to_owned();
    let (registrar, client_id) = rt.block_on(async {
        let app = stateless_dcr::Application::with_listener(config, listener)
            .await
            .unwrap();
        let registrar = app.registrar();
        tokio::spawn(app.run_until_stopped());
        let statement = common::statements(1).remove(0);
        let registered = registrar
            .register(&common::body(&statement), None)
            .await
            .unwrap();
        (registrar, registered.client_id().to_owned())
    });
    let base = format!("{address}/status-lists/");
    let lists = StatusListClient::new(
        Fetcher::new(FetchConfig::default()).unwrap(),
        Some(
            DirectLists::new(base.clone(), base.parse().unwrap(), &FetchConfig::default()).unwrap(),
        ),
        stateless_dcr::clock::system(),
    );
    let resolver = Resolver::new(ResolverOptions {
        issuer,
        keys: PublishedKeys::new(VerifierSet::from_jwks(&registrar.jwks()).unwrap(), None).into(),
        status: None,
        fetcher: None,
        audiences: vec![],
        cache_entries: 10_000,
        cache_max_bytes: 64 << 20,
        clock: stateless_dcr::clock::system(),
        lists: Some(ListChecks {
            client: Arc::new(lists),
            registrar_lists: true,
            issuers: None,
            amendments: None,
        }),
    });
    // the first resolve fetches the list; every later one finds it in memory
    rt.block_on(resolver.resolve(&client_id)).unwrap();
    let mut group = c.benchmark_group("resolve");
    group.throughput(Throughput::Elements(1));
    group.bench_function("resolve_cached_with_status_list", |b| {
        b.iter(|| {
            rt.block_on(resolver.resolve(black_box(&client_id)))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, resolve, resolve_with_status_list);
criterion_main!(benches);
