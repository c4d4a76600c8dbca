use super::*;
use crate::clock::{BrokenClock, FixedClock};
use crate::keys::{PublishedKeys, RegistrarKeys, SigningAlg, VerifierSet};
use crate::metadata::SubjectType;
use serde_json::{json, Value};

pub(crate) const ISSUER: &str = "https://registrar.test";

pub(crate) fn registrar_keys() -> RegistrarKeys {
    let json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
    RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap()
}

/// A resolver with the published keys of `keys` and their client_secret group.
pub(crate) fn resolver(keys: &RegistrarKeys, clock: SharedClock) -> Resolver {
    Resolver::new(ResolverOptions {
        clock,
        ..options(keys)
    })
}

fn options(keys: &RegistrarKeys) -> ResolverOptions {
    ResolverOptions {
        issuer: ISSUER.into(),
        keys: PublishedKeys::new(VerifierSet::from_jwks(keys.public_jwks()).unwrap(), None).into(),
        status: None,
        fetcher: None,
        audiences: vec!["https://op.test/token".into()],
        cache_entries: 100,
        cache_max_bytes: 1 << 20,
        clock: crate::clock::system(),
        lists: None,
    }
}

/// A client_id for `metadata`, signed by `keys`, expiring at `exp`.
pub(crate) fn mint(keys: &RegistrarKeys, metadata: Value, exp: Option<u64>) -> String {
    let claims = ClientIdClaims {
        iss: ISSUER.into(),
        jti: client_id::new_jti().unwrap(),
        iat: 0,
        exp,
        client_secret_kid: None,
        access_token_kid: None,
        provenance: None,
        sector: None,
        status: None,
        metadata: ClientMetadata::parse(metadata.as_object().unwrap(), SubjectType::Public)
            .unwrap(),
    };
    client_id::mint(keys, &claims, 4096).unwrap()
}

#[test]
fn a_cached_client_id_expires_at_the_exact_second() {
    let keys = registrar_keys();
    let clock = FixedClock::new(999);
    let resolver = resolver(&keys, clock.clone());
    let id = mint(
        &keys,
        json!({"grant_types": ["client_credentials"]}),
        Some(1_000),
    );
    assert!(resolver.verify(&id).is_ok());
    // now in the cache; the cache does not outlive exp
    assert!(resolver.verify(&id).is_ok());
    clock.set(1_000);
    assert!(matches!(
        resolver.verify(&id),
        Err(ResolveError::InvalidClient(InvalidClient::ClientId(
            ClientIdError::Expired
        )))
    ));
}

#[test]
fn the_cache_of_verified_client_ids_is_bounded_by_bytes() {
    let keys = registrar_keys();
    let metadata = json!({"grant_types": ["client_credentials"], "client_name": "n".repeat(2_000)});
    // room for about ten client_ids of this size
    let budget = u64::from(client_weight(&mint(&keys, metadata.clone(), None))) * 10;
    let resolver = Resolver::new(ResolverOptions {
        cache_max_bytes: budget,
        cache_entries: 1_000_000,
        ..options(&keys)
    });
    for _ in 0..100 {
        resolver
            .verify(&mint(&keys, metadata.clone(), None))
            .unwrap();
    }
    resolver.verified.run_pending_tasks();
    assert!(resolver.verified.weighted_size() <= budget);
    assert!(resolver.verified.entry_count() <= 10);
}

#[test]
fn a_clock_that_cannot_tell_the_time_refuses_every_client() {
    let keys = registrar_keys();
    let id = mint(&keys, json!({"grant_types": ["client_credentials"]}), None);
    let resolver = resolver(&keys, Arc::new(BrokenClock));
    assert!(matches!(resolver.verify(&id), Err(ResolveError::Clock(_))));
}
