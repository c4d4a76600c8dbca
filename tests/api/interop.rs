//! A real third-party client registers: the `openidconnect` crate's dynamic registration, with the
//! software statement carried as extension metadata (it has no field of its own there).

use openidconnect::core::{
    CoreApplicationType, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreProviderMetadata,
    CoreRegisterErrorResponseType, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::registration::{
    AdditionalClientMetadata, ClientRegistrationError, ClientRegistrationRequest,
    EmptyAdditionalClientRegistrationResponse,
};
use openidconnect::{IssuerUrl, RedirectUrl, ResponseTypes};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::helpers::spawn_app_with;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StatementMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    software_statement: Option<String>,
}
impl AdditionalClientMetadata for StatementMetadata {}

type Request = ClientRegistrationRequest<
    StatementMetadata,
    EmptyAdditionalClientRegistrationResponse,
    CoreApplicationType,
    CoreClientAuthMethod,
    CoreRegisterErrorResponseType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

#[tokio::test]
async fn openidconnect_crate_discovers_and_registers() {
    let app = spawn_app_with(|c| {
        c.authorization_endpoint = Some("https://op.example.com/authorize".into());
        c.token_endpoint = Some("https://op.example.com/token".into());
    })
    .await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let provider =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.address.clone()).unwrap(), &http)
            .await
            .expect("discovery document accepted by openidconnect");
    let endpoint = provider
        .registration_endpoint()
        .expect("registration_endpoint")
        .clone();

    let statement = app.authority.sign(json!({
        "software_id": "oidc-rs",
        "client_name": "openidconnect-rs client",
        "redirect_uris": ["https://rp.example.com/cb"],
    }));
    let request = Request::new(
        vec![RedirectUrl::new("https://rp.example.com/cb".into()).unwrap()],
        StatementMetadata {
            software_statement: Some(statement.clone()),
        },
    )
    .set_grant_types(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
    ]))
    .set_response_types(Some(vec![ResponseTypes::new(vec![CoreResponseType::Code])]))
    .set_application_type(Some(CoreApplicationType::Web))
    .set_token_endpoint_auth_method(Some(CoreClientAuthMethod::ClientSecretBasic));
    let response = request
        .register_async(&endpoint, &http)
        .await
        .expect("registration accepted");
    assert!(response.client_secret().is_some());
    assert!(response.registration_access_token().is_some());
    assert!(response.registration_client_uri().is_some());
    assert_eq!(
        response.additional_metadata().software_statement.as_deref(),
        Some(statement.as_str())
    );
    assert_eq!(
        response
            .client_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some("openidconnect-rs client")
    );

    // an error reaches the client as a typed RFC 7591 error
    let bad = Request::new(
        vec![RedirectUrl::new("http://rp.example.com/cb".into()).unwrap()],
        StatementMetadata {
            software_statement: Some(app.authority.sign(json!({"software_id": "oidc-rs"}))),
        },
    );
    match bad.register_async(&endpoint, &http).await {
        Err(ClientRegistrationError::ServerResponse(e)) => {
            assert_eq!(
                *e.error(),
                CoreRegisterErrorResponseType::InvalidRedirectUri
            )
        }
        other => panic!("expected invalid_redirect_uri, got {other:?}"),
    }
}
