//! Several nodes sharing one view through a real redis-server (started here on a free port in a
//! temporary directory). Without redis-server on PATH these tests say so and skip, except under
//! CI (`CI=true`), where its absence is a failure: .ci/run installs it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use stateless_dcr::status::{StatusStoreConfig, StoreKind};

use crate::helpers::{deployment, free_port, spawn_config, update_body, web_claims, TestApp};

pub struct RedisServer {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Start a redis-server of our own, or `None` (with a message) when it is not installed.
    pub async fn start() -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("redis-server is not installed, and CI must run the Redis tests");
            }
            eprintln!("SKIPPED: redis-server is not on PATH; install it to run the Redis tests");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
            _dir: dir,
        };
        for _ in 0..200 {
            if ping(port).await {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start");
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn ping(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).await.is_ok() && &buf == b"+PONG\r\n"
}

pub fn redis_store(url: &str, cache_ttl_secs: u64) -> StatusStoreConfig {
    StatusStoreConfig {
        kind: StoreKind::Redis,
        redis_url: Some(url.into()),
        cache_ttl_secs,
        redis_timeout_ms: 500,
        ..Default::default()
    }
}

/// Two nodes with the same keys and issuers on one Redis. Their caches keep entries for an hour,
/// so only the pub/sub notification can make a change visible quickly.
async fn two_nodes(redis: &RedisServer) -> (TestApp, TestApp, crate::helpers::Deployment) {
    let d = deployment();
    let mut config = d.config.clone();
    config.status_store = redis_store(&redis.url, 3600);
    // one registrar identity behind several addresses, as behind a load balancer
    config.issuer = Some("https://registrar.test.example".into());
    let a = spawn_config(config.clone(), &d).await;
    let b = spawn_config(config, &d).await;
    // the deployment's key files must outlive both nodes
    (a, b, d)
}

/// Poll `check` until it holds; the documented bound is far shorter than this deadline, which
/// only keeps a broken build from hanging.
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..600 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn an_update_on_one_node_is_read_on_the_other() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, b, _files) = two_nodes(&redis).await;
    let info = a.register_web_client().await;
    let uri_on = |node: &TestApp| {
        info["registration_client_uri"]
            .as_str()
            .unwrap()
            .replace(&a.address, &node.address)
    };
    let token = info["registration_access_token"].as_str().unwrap();
    // A has looked the client up, so its cache holds "no record"
    assert_eq!(a.get_config(&uri_on(&a), Some(token)).await.status, 200);

    let mut body = update_body(&info);
    body["contacts"] = json!(["updated-on-b@rp.example.com"]);
    let updated = b.put_config(&uri_on(&b), Some(token), &body).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let new_token = updated.body["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let seen = eventually(async || {
        let read = a.get_config(&uri_on(&a), Some(&new_token)).await;
        read.status == 200 && read.body["contacts"] == json!(["updated-on-b@rp.example.com"])
    })
    .await;
    assert!(seen, "node A never saw the update made on node B");
    a.get_config(&uri_on(&a), Some(token))
        .await
        .assert_error(401, "invalid_token");
}

#[tokio::test]
async fn a_delete_on_one_node_is_refused_by_the_other() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, b, _files) = two_nodes(&redis).await;
    let info: Value = a.register_web_client().await;
    let token = info["registration_access_token"].as_str().unwrap();
    let uri_a = info["registration_client_uri"].as_str().unwrap().to_owned();
    let uri_b = uri_a.replace(&a.address, &b.address);
    // B caches the client as active first
    assert_eq!(b.get_config(&uri_b, Some(token)).await.status, 200);
    assert_eq!(a.delete_config(&uri_a, Some(token)).await.status, 204);
    let refused = eventually(async || b.get_config(&uri_b, Some(token)).await.status == 401).await;
    assert!(refused, "node B still serves a client deleted on node A");
    // and an update cannot bring it back from either node
    b.put_config(&uri_b, Some(token), &update_body(&info))
        .await
        .assert_error(401, "invalid_token");
}

#[tokio::test]
async fn without_redis_update_and_delete_fail_with_503_and_registration_goes_on() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let (a, _b, _files) = two_nodes(&redis).await;
    let info = a.register_web_client().await;
    let token = info["registration_access_token"].as_str().unwrap();
    let uri = info["registration_client_uri"].as_str().unwrap();
    redis.stop();
    let answer = a.put_config(uri, Some(token), &update_body(&info)).await;
    answer.assert_error(503, "temporarily_unavailable");
    assert!(answer.header("retry-after").is_some());
    a.delete_config(uri, Some(token))
        .await
        .assert_error(503, "temporarily_unavailable");
    // registration needs no store
    a.register(web_claims(), json!({})).await.assert_created();
}

#[tokio::test]
async fn without_redis_registration_still_meets_the_withdrawals_last_read() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    const ADMIN: &str = "admin-token-admin-token-admin-token-admin";
    let d = deployment();
    let mut config = d.config.clone();
    // the withdrawals in memory are stale after a second: registration must read the store
    config.status_store = redis_store(&redis.url, 1);
    config.admin_api_tokens = vec![ADMIN.into()];
    let app = spawn_config(config, &d).await;
    let posted = app
        .client
        .post(app.url("/admin/withdrawals"))
        .bearer_auth(ADMIN)
        .json(&json!({"issuer": app.authority.issuer, "software_id": "withdrawn-app"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    let claims = |software_id: &str| {
        let mut claims = web_claims();
        claims["software_id"] = software_id.into();
        claims
    };
    // read once while Redis is up, then Redis goes and the set in memory goes stale
    app.register(claims("withdrawn-app"), json!({}))
        .await
        .assert_error(400, "unapproved_software_statement");
    redis.stop();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    app.register(claims("withdrawn-app"), json!({}))
        .await
        .assert_error(400, "unapproved_software_statement");
    app.register(claims("another-app"), json!({}))
        .await
        .assert_created();
}

#[tokio::test]
async fn an_edge_node_resolves_with_the_public_jwks_the_shared_store_and_the_secret_keys_only() {
    use stateless_dcr::keys::{DerivationKeys, PublishedKeys, RegistrarKeys, VerifierSet};
    use stateless_dcr::resolve::{
        Credentials, InvalidClient, ResolveError, Resolver, ResolverOptions,
    };
    use stateless_dcr::status::StatusService;

    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, _b, files) = two_nodes(&redis).await;
    // what an edge node is given: the published JWKS, read access to Redis, and a file holding
    // only the client_secret key group
    let jwks = a.jwks().await;
    let key_set: Value =
        serde_json::from_slice(&std::fs::read(&files.config.keys).unwrap()).unwrap();
    let secret_only = files.dir.path().join("client-secret-keys.json");
    std::fs::write(
        &secret_only,
        json!({"client_secret": key_set["client_secret"]}).to_string(),
    )
    .unwrap();
    let secret_keys = DerivationKeys::load_client_secret_keys(&secret_only).unwrap();
    let published = PublishedKeys::new(VerifierSet::from_jwks(&jwks).unwrap(), Some(secret_keys));
    let status = StatusService::open_for_reading(&redis_store(&redis.url, 3600), published.clone())
        .await
        .unwrap();
    let edge = Resolver::new(ResolverOptions {
        issuer: "https://registrar.test.example".into(),
        keys: published.into(),
        status: Some(status.clone()),
        fetcher: None,
        audiences: vec![],
        cache_entries: 100,
        cache_max_bytes: 1 << 20,
        clock: stateless_dcr::clock::system(),
        lists: None,
    });

    let info = a.register_web_client().await;
    let id = info["client_id"].as_str().unwrap();
    let client = edge.resolve(id).await.unwrap();
    let secret = info["client_secret"].as_str().unwrap();
    edge.authenticate(&client, Credentials::SecretBasic(secret))
        .await
        .unwrap();
    assert!(edge
        .authenticate(&client, Credentials::SecretBasic("wrong"))
        .await
        .is_err());
    // a node that opened the store for reading cannot write records, even holding the keys
    let registrar_keys = RegistrarKeys::load(&files.config.keys).unwrap();
    assert!(status
        .write(
            &registrar_keys,
            client.jti(),
            0,
            &stateless_dcr::status::ClientStatus::Revoked,
            None,
            None
        )
        .await
        .is_err());

    // deleted on the registrar: the edge node refuses it (pub/sub drops its cached status)
    let uri = info["registration_client_uri"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    assert_eq!(a.delete_config(uri, Some(token)).await.status, 204);
    let refused = eventually(async || {
        matches!(
            edge.resolve(id).await,
            Err(ResolveError::InvalidClient(InvalidClient::Revoked))
        )
    })
    .await;
    assert!(refused, "the edge node still resolves a deleted client");
}

#[tokio::test]
async fn a_record_the_registrar_signed_but_cannot_read_is_a_server_error_not_a_refusal() {
    // a fault of the server answers 500 server_error; a record that does not verify stays a
    // refusal of the client (RFC 6749 §5.2: invalid_client)
    use stateless_dcr::keys::RegistrarKeys;
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let token = "op-token-0123456789-0123456789-0123456789";
    let d = deployment();
    let mut config = d.config.clone();
    config.status_store = redis_store(&redis.url, 3600);
    config.resolve_api_tokens = vec![token.into()];
    let app = spawn_config(config, &d).await;
    let info = app.register_web_client().await;
    let jti = crate::helpers::client_id_payload(&info)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let resolve = || async {
        let response = app
            .client
            .post(app.url("/resolve"))
            .bearer_auth(token)
            .json(&json!({"client_id": info["client_id"]}))
            .send()
            .await
            .unwrap();
        crate::helpers::Answer::from(response).await
    };
    let mut redis_client = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut put_record = async |signed: String| {
        let _: () = redis::cmd("HSET")
            .arg(format!("stateless-dcr:status:{jti}"))
            .arg("state")
            .arg("amended")
            .arg("gen")
            .arg(1)
            .arg("record")
            .arg(signed)
            .query_async(&mut redis_client)
            .await
            .unwrap();
        let _: i64 = redis::cmd("PUBLISH")
            .arg("stateless-dcr:changes")
            .arg(&jti)
            .query_async(&mut redis_client)
            .await
            .unwrap();
    };

    // signed by the registrar's own key, with metadata this version cannot read
    let keys = RegistrarKeys::load(&d.config.keys).unwrap();
    let payload = json!({
        "jti": jti, "iat": 1, "status": "amended",
        "amendment": {"gen": 1, "metadata": {"grant_types": ["not-a-grant"]}},
    });
    let unreadable = stateless_dcr::jose::sign_typed(
        keys.signing_key(),
        "client-status+jwt",
        payload.to_string().as_bytes(),
    )
    .unwrap();
    put_record(unreadable).await;
    let answer = eventually(async || resolve().await.status == 500).await;
    assert!(
        answer,
        "an unreadable record of the registrar's own is a 500"
    );
    resolve().await.assert_error(500, "server_error");

    // a record that does not verify refuses the client
    put_record("eyJhbGciOiJFUzI1NiJ9.e30.c2lnbmF0dXJl".into()).await;
    let refused = eventually(async || resolve().await.body["valid"] == false).await;
    assert!(refused);
    assert_eq!(resolve().await.body["error"], "invalid_client");
}

#[tokio::test]
async fn a_node_with_a_stale_view_cannot_delete_with_a_rotated_token() {
    // RFC 7592 §2.3: only the current token deletes. Node B last saw generation 0; node A has
    // since recorded an update (generation 1). B's delete, made with the generation it saw, is
    // refused by the conditional write in Redis itself, whatever B's cache says.
    use stateless_dcr::keys::RegistrarKeys;
    use stateless_dcr::status::{Amendment, ClientStatus, StatusService, WriteOutcome};
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let d = deployment();
    let keys = RegistrarKeys::load(&d.config.keys).unwrap();
    let ring = stateless_dcr::keys::KeyRing::new(RegistrarKeys::load(&d.config.keys).unwrap());
    let store = redis_store(&redis.url, 3600);
    let clock = stateless_dcr::clock::system();
    let node_a = StatusService::open(&store, ring.clone(), clock.clone())
        .await
        .unwrap();
    let node_b = StatusService::open(&store, ring, clock).await.unwrap();
    let jti = "stale-view-client";
    assert_eq!(
        *node_b.status(jti).await.unwrap(),
        ClientStatus::Active,
        "B caches generation 0"
    );
    let metadata = stateless_dcr::metadata::ClientMetadata::parse(
        json!({"grant_types": ["client_credentials"]})
            .as_object()
            .unwrap(),
        stateless_dcr::metadata::SubjectType::Public,
    )
    .unwrap();
    let amendment = ClientStatus::Amended(std::sync::Arc::new(Amendment {
        generation: 1,
        metadata,
        sector: None,
        client_secret_kid: None,
        provenance: None,
        request: None,
    }));
    let written = node_a
        .write(&keys, jti, 0, &amendment, None, None)
        .await
        .unwrap();
    assert_eq!(written, WriteOutcome::Written);
    let stale = node_b
        .write(&keys, jti, 0, &ClientStatus::Revoked, None, None)
        .await
        .unwrap();
    assert_eq!(stale, WriteOutcome::Conflict);
    // with the current generation the delete goes through, and nothing undoes it
    let current = node_b
        .write(&keys, jti, 1, &ClientStatus::Revoked, None, None)
        .await
        .unwrap();
    assert_eq!(current, WriteOutcome::Written);
    let undo = node_a
        .write(&keys, jti, 1, &amendment, None, None)
        .await
        .unwrap();
    assert_eq!(undo, WriteOutcome::AlreadyRevoked);
}

#[tokio::test]
async fn the_uses_of_a_limited_initial_access_token_are_counted_across_nodes() {
    // RFC 7591 §3 tokens of N uses: one count in the shared store, taken by compare-and-set
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, b, _d) = two_nodes(&redis).await;
    let keys = stateless_dcr::keys::RegistrarKeys::load(&a.config.keys).unwrap();
    let claims = stateless_dcr::iat::TokenClaims {
        iss: "https://registrar.test.example".into(),
        jti: stateless_dcr::client_id::new_jti().unwrap(),
        iat: crate::helpers::now(),
        exp: crate::helpers::now() + 600,
        label: None,
        max_uses: Some(3),
        policy: Default::default(),
    };
    let token = stateless_dcr::iat::issue(keys.signing_key(), &claims).unwrap();
    let body = json!({
        "redirect_uris": ["http://127.0.0.1:3000/cb"],
        "token_endpoint_auth_method": "none",
        "software_statement": a.authority.sign(web_claims()),
    });
    // eight registrations at once, half on each node
    let attempts = (0..8).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        let request = node
            .client
            .post(node.url("/register"))
            .bearer_auth(&token)
            .json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let mut statuses = futures_util::future::join_all(attempts).await;
    statuses.sort();
    assert_eq!(statuses, [201, 201, 201, 401, 401, 401, 401, 401]);
}
