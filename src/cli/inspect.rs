//! `stateless-dcr client inspect`: verify a client_id with the configured keys and report its
//! status and metadata, never writing anywhere (docs/operations.md, "client inspect").

use super::*;

pub(super) fn client_inspect(client_id: &str, config: Option<&Path>) -> Result<ExitCode, String> {
    let config = load_config(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        // The client_id alone, then its status record: the store is opened only to read it
        // (never created or written, also while the server runs), and only with
        // management = "full", where update and delete write records.
        let registrar = Registrar::without_store(&config).map_err(|e| e.to_string())?;
        let client = match registrar.verify_client_id(client_id.trim()) {
            Ok(client) => client,
            Err(e) => {
                let report = json!({ "valid": false, "reason": e.to_string() });
                println!("{}", pretty(&report)?);
                return Ok(ExitCode::FAILURE);
            }
        };
        // the metadata as the running server reports it, when it was asked
        let mut served_metadata: Option<Value> = None;
        let (status, client) = if config.management != Management::Full {
            (
                "no status store (management is not full)".to_owned(),
                client,
            )
        } else {
            let keys = KeyRing::new(RegistrarKeys::load(&config.keys).map_err(|e| e.to_string())?);
            match StatusService::open_for_reading(&config.status_store, keys).await {
                // a running single node holds the redb file: ask it instead
                Err(e) => match ask_running_server(&config, client_id.trim()).await {
                    Ok(Some(current)) => {
                        let full = |c: &crate::resolve::VerifiedClient| {
                            serde_json::to_value(c.metadata().json(crate::metadata::Form::Full))
                                .unwrap_or_default()
                        };
                        let status = if current == full(&client) {
                            "active"
                        } else {
                            "updated"
                        };
                        served_metadata = Some(current);
                        (status.to_owned(), client)
                    }
                    // the server answers deleted and untrusted clients alike
                    Ok(None) => ("refused by the running server".to_owned(), client),
                    Err(why) => (format!("status not checked: {e}; {why}"), client),
                },
                Ok(store) => match store.status(client.jti()).await {
                    Ok(status) => match status.as_ref() {
                        ClientStatus::Active => ("active".to_owned(), client),
                        ClientStatus::Revoked => ("deleted".to_owned(), client),
                        ClientStatus::Amended(amendment) => {
                            let current = crate::resolve::VerifiedClient {
                                amendment: Some(amendment.clone()),
                                ..client.as_ref().clone()
                            };
                            ("updated".to_owned(), std::sync::Arc::new(current))
                        }
                    },
                    // a record that does not verify makes the client invalid, as on the server
                    Err(crate::status::StoreError::Corrupt(why)) => {
                        (format!("refused: untrusted status record ({why})"), client)
                    }
                    Err(e) => (format!("status not checked: {e}"), client),
                },
            }
        };
        let deleted = status == "deleted" || status.starts_with("refused");
        let report = json!({
            "valid": !deleted,
            "status": status,
            "jti": client.claims.jti,
            "issuer": client.claims.iss,
            "issued_at": client.claims.iat,
            "expires_at": client.claims.exp,
            "software_statement": client.provenance(),
            "sector": client.sector(),
            // the registrar's list entry: after a backup restore, the highest list id in use
            // tells what `status_lists.first_list` must exceed (docs/operations.md)
            "status_list": client.claims.status.as_ref().map(|claim| &claim.status_list),
            "has_client_secret": client.client_secret_kid().is_some(),
            "metadata": served_metadata
                .unwrap_or_else(|| json!(client.metadata().json(crate::metadata::Form::Full))),
        });
        println!("{}", pretty(&report)?);
        Ok(if deleted {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// The client's current metadata as the running server resolves it (`POST /resolve`, with the
/// first of `resolve_api_tokens`), or `None` when it answers that the client is not valid.
async fn ask_running_server(config: &Config, client_id: &str) -> Result<Option<Value>, String> {
    let token = config
        .resolve_api_tokens
        .first()
        .ok_or("set resolve_api_tokens so that inspect can ask the running server")?;
    let url = format!("{}/resolve", config.public_url.trim_end_matches('/'));
    let answer: Value = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token.expose())
        .json(&json!({ "client_id": client_id }))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("{url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if answer["valid"] != true {
        return Ok(None);
    }
    let mut metadata = answer["client"].clone();
    if let Some(map) = metadata.as_object_mut() {
        map.remove("client_id");
        map.remove("client_id_issued_at");
    }
    Ok(Some(metadata))
}
