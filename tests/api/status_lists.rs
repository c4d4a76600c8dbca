//! Token Status Lists (draft-ietf-oauth-status-list-18): the registrar's lists of its
//! client_ids (§5.1, §6.2, §8), index allocation that never hands out an index twice (§13.3),
//! and a node that holds only the JWKS and reads the lists (§8.3).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use stateless_dcr::keys::VerifierSet;
use stateless_dcr::status_list::{token, StatusArray};

use crate::helpers::{
    client_id_payload, deployment, free_port, now, spawn_app_with, spawn_deployment, update_body,
    web_claims, Api, ServerProcess,
};

/// The (list URI, index) a client information response's client_id carries.
pub fn reference(information: &Value) -> (String, u64) {
    let reference = &client_id_payload(information)["status"]["status_list"];
    (
        reference["uri"].as_str().unwrap().to_owned(),
        reference["idx"].as_u64().unwrap(),
    )
}

/// Fetch a list, check its answer, verify it with the registrar's published keys.
pub async fn fetch_list(api: &Api, uri: &str) -> StatusArray {
    let response = api.client.get(uri).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/statuslist+jwt"
    );
    let cache_control = headers.get("cache-control").unwrap().to_str().unwrap();
    assert!(
        cache_control.starts_with("public, max-age="),
        "{cache_control}"
    );
    let token = response.text().await.unwrap();
    let verifiers = VerifierSet::from_jwks(&api.jwks().await).unwrap();
    let verified = token::verify(&token, uri, &verifiers, now(), 0, 16 << 20).unwrap();
    // the caching header agrees with the token (§8.2): never longer than its ttl
    let max_age: u64 = cache_control["public, max-age=".len()..].parse().unwrap();
    assert!(max_age <= verified.ttl.unwrap());
    assert!(verified.exp.unwrap() > now());
    verified.array
}

#[tokio::test]
async fn each_client_id_references_the_list_that_shows_its_deletion_and_update() {
    let app = spawn_app_with(|c| {
        c.status_lists.ttl_secs = 2;
        c.status_lists.sign_interval_secs = 1;
        c.status_lists.lifetime_secs = 60;
    })
    .await;
    let kept = app.register_web_client().await;
    let deleted = app.register_web_client().await;
    let updated = app.register_web_client().await;
    let list_uri = app.url("/status-lists/0");
    let indexes: Vec<u64> = [&kept, &deleted, &updated]
        .iter()
        .map(|info| {
            let (uri, idx) = reference(info);
            assert_eq!(uri, list_uri);
            idx
        })
        .collect();
    assert_eq!(indexes.iter().collect::<HashSet<_>>().len(), 3);
    // discovery points to the aggregation of every list (§9.1, §9.3)
    let discovery: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["status_list_aggregation_endpoint"],
        app.url("/status-lists")
    );
    let aggregation = app.get_json("/status-lists").await;
    assert_eq!(aggregation, json!({"status_lists": [list_uri]}));

    let list = fetch_list(&app, &list_uri).await;
    // a fixed size whatever the number of clients (§12.4: outsiders learn nothing from it)
    assert_eq!(list.len(), 1 << 20);
    for idx in &indexes {
        assert_eq!(list.get(*idx), Some(0), "VALID before any change");
    }
    let token = |info: &Value| {
        info["registration_access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let uri = |info: &Value| info["registration_client_uri"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete_config(&uri(&deleted), Some(&token(&deleted)))
            .await
            .status,
        204
    );
    let mut body = update_body(&updated);
    body["contacts"] = json!(["ops@rp.example.com"]);
    assert_eq!(
        app.put_config(&uri(&updated), Some(&token(&updated)), &body)
            .await
            .status,
        200
    );
    // a changed list is signed again once sign_interval_secs have passed since the last one
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let list = fetch_list(&app, &list_uri).await;
    assert_eq!(list.get(indexes[0]), Some(0), "VALID");
    assert_eq!(list.get(indexes[1]), Some(1), "INVALID after the delete");
    assert_eq!(list.get(indexes[2]), Some(3), "AMENDED after the update");

    // content negotiation (§8.1): only the JWT form is offered
    for accept in [
        "application/statuslist+jwt",
        "application/*",
        "*/*",
        "text/html, */*;q=0.1",
    ] {
        let response = app
            .client
            .get(&list_uri)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{accept}");
    }
    for accept in [
        "application/statuslist+cwt",
        "application/json",
        "application/statuslist+jwt;q=0",
    ] {
        let response = app
            .client
            .get(&list_uri)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        let answer = crate::helpers::Answer::from(response).await;
        answer.assert_error(406, "invalid_request");
    }
    // HEAD like GET; lists that were never started, and other spellings, are 404
    let head = app.client.head(&list_uri).send().await.unwrap();
    assert_eq!(head.status(), 200);
    for path in [
        "/status-lists/1",
        "/status-lists/00",
        "/status-lists/x",
        "/status-lists/-1",
    ] {
        let answer =
            crate::helpers::Answer::from(app.client.get(app.url(path)).send().await.unwrap()).await;
        answer.assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn without_full_management_client_ids_carry_no_status_and_no_list_is_served() {
    use stateless_dcr::config::Management;
    let app = spawn_app_with(|c| c.management = Management::ReadOnly).await;
    let info = app.register_web_client().await;
    assert!(client_id_payload(&info).get("status").is_none());
    let response = app
        .client
        .get(app.url("/status-lists/0"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let off = spawn_app_with(|c| c.status_lists.enabled = false).await;
    let info = off.register_web_client().await;
    assert!(client_id_payload(&info).get("status").is_none());
}

#[tokio::test]
async fn an_index_is_never_handed_out_twice_across_restarts_and_a_kill_9() {
    let d = deployment();
    let port = free_port();
    let config = d.write_config_file(port, "[status_lists]\nblock_size = 8\ncapacity = 16\n");
    let mut seen = HashSet::new();
    for round in 0..3 {
        let server = ServerProcess::start(&config, port).await;
        let api = server.api(&d.authority);
        for _ in 0..3 {
            let info = api.register_web_client().await;
            assert!(seen.insert(reference(&info)), "round {round}: reused");
        }
        // a crash loses the rest of the block, never hands its indexes out again
        server.kill9();
    }
    // blocks of 8 in lists of 16: the first block of each start, then a new list
    let mut all: Vec<_> = seen.into_iter().collect();
    all.sort();
    let expected: Vec<(String, u64)> = [
        (0, 0),
        (0, 1),
        (0, 2),
        (0, 8),
        (0, 9),
        (0, 10),
        (1, 0),
        (1, 1),
        (1, 2),
    ]
    .iter()
    .map(|(list, idx)| (format!("http://127.0.0.1:{port}/status-lists/{list}"), *idx))
    .collect();
    assert_eq!(all, expected);
}

const OP_TOKEN: &str = "edge-op-token-edge-op-token-edge-op-token";
const EDGE_TOKEN: &str = "edge-to-registrar-token-edge-to-registrar";

/// `stateless-dcr edge` as a real process: the registrar's address, where to read its lists,
/// a token for its `/resolve`; lists cached for their ttl (at least 1 s).
async fn spawn_edge(
    dir: &std::path::Path,
    registrar_url: &str,
    lists_url: &str,
    registrar_token: &str,
    more_fetch_options: &str,
) -> ServerProcess {
    let port = free_port();
    let config = dir.join(format!("edge-{port}.toml"));
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nregistrar_url = {registrar_url:?}\nstatus_lists_url = {lists_url:?}\nresolve_api_tokens = [{OP_TOKEN:?}]\nregistrar_resolve_token = {registrar_token:?}\nworkers = 1\n[fetch]\nstatus_list_min_cache_secs = 1\n{more_fetch_options}\n",
        ),
    )
    .unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stateless-dcr"));
    command
        .args(["edge", "--config"])
        .arg(&config)
        .stderr(std::process::Stdio::null());
    ServerProcess::spawn(command, port).await
}

/// Ask an edge node about a client (`POST /resolve`).
async fn edge_resolve(edge: &ServerProcess, client_id: &Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/resolve", edge.address))
        .bearer_auth(OP_TOKEN)
        .json(&json!({"client_id": client_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()
}

#[tokio::test]
async fn a_node_with_only_the_jwks_and_the_lists_sees_deletes_and_updates() {
    let ttl = 2;
    let sign_interval = 1;
    let registrar = spawn_deployment(deployment(), |c| {
        c.status_lists.ttl_secs = ttl;
        c.status_lists.sign_interval_secs = sign_interval;
        c.status_lists.lifetime_secs = 60;
        c.resolve_api_tokens = vec![EDGE_TOKEN.into()];
    })
    .await;
    let kept = registrar.register_web_client().await;
    let deleted = registrar.register_web_client().await;
    let updated = registrar.register_web_client().await;

    // the edge node: the registrar's address, the lists' address, and tokens; nothing else
    let edge = spawn_edge(
        registrar.dir.path(),
        &registrar.address,
        &registrar.url("/status-lists/"),
        EDGE_TOKEN,
        "",
    )
    .await;
    // another one that may use a last good list for 60 s when a new one cannot be fetched
    let lenient = spawn_edge(
        registrar.dir.path(),
        &registrar.address,
        &registrar.url("/status-lists/"),
        EDGE_TOKEN,
        "status_list_grace_secs = 60",
    )
    .await;
    let resolve = |info: &Value| {
        let client_id = info["client_id"].clone();
        let edge = &edge;
        async move { edge_resolve(edge, &client_id).await }
    };
    for info in [&kept, &deleted, &updated] {
        assert_eq!(resolve(info).await["valid"], true);
    }
    assert_eq!(
        edge_resolve(&lenient, &kept["client_id"]).await["valid"],
        true
    );

    let token = |info: &Value| {
        info["registration_access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let uri = |info: &Value| info["registration_client_uri"].as_str().unwrap().to_owned();
    registrar
        .delete_config(&uri(&deleted), Some(&token(&deleted)))
        .await;
    let mut body = update_body(&updated);
    body["contacts"] = json!(["ops@rp.example.com"]);
    registrar
        .put_config(&uri(&updated), Some(&token(&updated)), &body)
        .await;
    // The bound: the registrar signs a changed list within sign_interval_secs of the change,
    // the edge keeps a list for its ttl. Waiting the bound makes the outcome certain.
    tokio::time::sleep(Duration::from_secs(ttl + sign_interval) + Duration::from_millis(500)).await;
    let answer = resolve(&deleted).await;
    assert_eq!(answer["valid"], false, "{answer}");
    assert_eq!(answer["error"], "invalid_client");
    let answer = resolve(&updated).await;
    assert_eq!(answer["valid"], true, "{answer}");
    assert_eq!(answer["client"]["contacts"], json!(["ops@rp.example.com"]));
    assert_eq!(resolve(&kept).await["valid"], true);
    assert_eq!(
        edge_resolve(&lenient, &kept["client_id"]).await["valid"],
        true
    );
    // SIGHUP fetches the registrar's keys again; the node keeps serving
    edge.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(resolve(&kept).await["valid"], true);
    // garbage is refused as on the registrar
    let answer = resolve(&json!({"client_id": "not-a-client-id"})).await;
    assert_eq!(answer["valid"], false);

    // Lists that cannot be fetched any more: once the last one is stale, nothing can be said
    // about the client, and the edge fails closed (the default grace is 0).
    let http = registrar.client.clone();
    drop(registrar);
    tokio::time::sleep(Duration::from_secs(ttl) + Duration::from_millis(500)).await;
    let response = http
        .post(format!("{}/resolve", edge.address))
        .bearer_auth(OP_TOKEN)
        .json(&json!({"client_id": kept["client_id"]}))
        .send()
        .await
        .unwrap();
    let answer = crate::helpers::Answer::from(response).await;
    answer.assert_error(503, "temporarily_unavailable");
    assert!(answer.body["error_description"]
        .as_str()
        .unwrap()
        .contains("status list"));
    // within its grace, the lenient node still answers from the last good list
    assert_eq!(
        edge_resolve(&lenient, &kept["client_id"]).await["valid"],
        true
    );
}

/// A list of `entries` 1-bit statuses signed by the federation authority, as it would serve it
/// at `uri`.
pub fn authority_list(
    authority: &crate::helpers::Authority,
    uri: &str,
    entries: u64,
    invalid: &[u64],
) -> String {
    let mut list = StatusArray::new(stateless_dcr::status_list::Bits::new(1).unwrap(), entries);
    for idx in invalid {
        list.set(*idx, 1).unwrap();
    }
    let mut header = serde_json::Map::new();
    header.insert("alg".into(), "ES256".into());
    header.insert("kid".into(), authority.kid().into());
    header.insert("typ".into(), "statuslist+jwt".into());
    authority.sign_with_header(
        header,
        &json!({
            "sub": uri, "iat": now(), "exp": now() + 3600, "ttl": 1,
            "status_list": {"bits": 1, "lst": list.encode().unwrap()},
        }),
    )
}

#[tokio::test]
async fn registrations_from_many_nodes_on_one_redis_never_share_an_index() {
    use crate::redis::{redis_store, RedisServer};
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let d = deployment();
    let mut config = d.config.clone();
    config.status_store = redis_store(&redis.url, 3600);
    config.issuer = Some("https://registrar.test.example".into());
    // small blocks and lists, so that the nodes race for many blocks and cross lists
    config.status_lists.block_size = 16;
    config.status_lists.capacity = 512;
    config.status_lists.sign_interval_secs = 1;
    let a = crate::helpers::spawn_config(config.clone(), &d).await;
    let b = crate::helpers::spawn_config(config, &d).await;
    let register_many = |node: &crate::helpers::TestApp| {
        let api = Api::new(&node.address, &d.authority);
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            let api = std::sync::Arc::new(api);
            for _ in 0..8 {
                let api = api.clone();
                tasks.spawn(async move {
                    let mut got = Vec::new();
                    for _ in 0..160 {
                        let answer = api.register(web_claims(), json!({})).await;
                        got.push(reference(answer.assert_created()));
                    }
                    got
                });
            }
            let mut all = Vec::new();
            while let Some(batch) = tasks.join_next().await {
                all.extend(batch.unwrap());
            }
            all
        }
    };
    let (from_a, from_b) = tokio::join!(register_many(&a), register_many(&b));
    let all: Vec<_> = from_a.into_iter().chain(from_b).collect();
    assert_eq!(all.len(), 2_560);
    let distinct: HashSet<_> = all
        .iter()
        .map(|(uri, idx)| (uri.rsplit('/').next().unwrap().to_owned(), *idx))
        .collect();
    assert_eq!(distinct.len(), all.len(), "an index was handed out twice");
    assert!(distinct.iter().all(|(_, idx)| *idx < 512));
    assert!(
        distinct.iter().any(|(list, _)| list != "0"),
        "several lists were started"
    );
    // the aggregation names each list in use, read from Redis's allocation
    let aggregation = b.get_json("/status-lists").await;
    let aggregated: HashSet<String> = aggregation["status_lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|uri| uri.as_str().unwrap().rsplit('/').next().unwrap().to_owned())
        .collect();
    let used: HashSet<String> = distinct.iter().map(|(list, _)| list.clone()).collect();
    // (a spare block may have started a list no registration has used yet)
    assert!(
        used.is_subset(&aggregated),
        "{used:?} not in {aggregated:?}"
    );

    // a delete on A shows in the list as B serves it: the bits live in Redis
    let info = a.register_web_client().await;
    let (list_uri, idx) = reference(&info);
    // the nodes here have addresses of their own; behind a load balancer they share one
    let on_b = list_uri.replace(&a.address, &b.address);
    a.delete_config(
        info["registration_client_uri"].as_str().unwrap(),
        info["registration_access_token"].as_str(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let list = fetch_list(&b, &on_b).await;
    assert_eq!(list.get(idx), Some(1));
}

#[tokio::test]
async fn an_edge_node_reading_one_registrar_node_sees_a_delete_made_on_another() {
    use crate::redis::{redis_store, RedisServer};
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let d = deployment();
    let mut config = d.config.clone();
    config.status_store = redis_store(&redis.url, 3600);
    config.status_lists.ttl_secs = 2;
    config.status_lists.sign_interval_secs = 1;
    config.status_lists.lifetime_secs = 60;
    config.resolve_api_tokens = vec![EDGE_TOKEN.into()];
    let a = crate::helpers::spawn_config(config.clone(), &d).await;
    // one public URL for both nodes, as behind a load balancer: the lists' URIs are the same
    let shared = a.address.clone();
    let b = spawn_deployment(
        crate::helpers::Deployment {
            dir: tempfile::tempdir().unwrap(),
            authority: d.authority.clone(),
            config,
        },
        move |c| c.public_url = shared,
    )
    .await;
    let info = a.register_web_client().await;
    // the edge reads B, and B's lists
    let edge = spawn_edge(
        d.dir.path(),
        &b.address,
        &b.url("/status-lists/"),
        EDGE_TOKEN,
        "",
    )
    .await;
    assert_eq!(edge_resolve(&edge, &info["client_id"]).await["valid"], true);
    a.delete_config(
        info["registration_client_uri"].as_str().unwrap(),
        info["registration_access_token"].as_str(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3) + Duration::from_millis(500)).await;
    let answer = edge_resolve(&edge, &info["client_id"]).await;
    assert_eq!(answer["valid"], false, "{answer}");
}
