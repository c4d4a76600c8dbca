//! The operator's admin API (`/admin/withdrawals`), protected like `POST /resolve`: bearer
//! tokens from `admin_api_tokens`; without any, the API does not exist (404). docs/api.md.

use actix_web::{web, HttpRequest, HttpResponse};

use super::errors::{no_store, ApiError, ProtectedApi};
use super::handlers::{json_body_of, require_token};
use super::AppState;
use crate::registrar::{WithdrawalError, WithdrawalRequest};

/// The caller must present one of the admin tokens, and the registrar must keep a status store.
fn authorize(request: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let tokens = &state.registrar.config().admin_api_tokens;
    if tokens.is_empty() || state.registrar.status_service().is_none() {
        return Err(ApiError::NotFound);
    }
    require_token(request, tokens, ProtectedApi::Admin)
}

fn refused(e: WithdrawalError) -> ApiError {
    match e {
        WithdrawalError::Invalid(m) => ApiError::InvalidRequest(m),
        WithdrawalError::NotFound => ApiError::NotFound,
        WithdrawalError::Permanent => ApiError::Conflict(e.to_string()),
        WithdrawalError::Registration(e) => e.into(),
    }
}

fn answer(
    mut builder: actix_web::HttpResponseBuilder,
    body: &impl serde::Serialize,
) -> HttpResponse {
    no_store(&mut builder);
    builder.json(body)
}

/// `GET /admin/withdrawals`: every withdrawal in force.
pub async fn list(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&request, &state)?;
    let all = state.registrar.withdrawals().await.map_err(refused)?;
    Ok(answer(
        HttpResponse::Ok(),
        &serde_json::json!({ "withdrawals": all }),
    ))
}

/// `POST /admin/withdrawals`: withdraw the clients of a `software_id` or of a statement.
pub async fn create(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&request, &state)?;
    let body = json_body_of(&request, payload, &state)
        .await
        .map_err(|e| match e {
            ApiError::UnsupportedMediaType | ApiError::MalformedJson(_) => {
                ApiError::InvalidRequest(e.to_string())
            }
            other => other,
        })?;
    let withdrawal_request = WithdrawalRequest::from_json(&body).map_err(refused)?;
    let withdrawal = state
        .registrar
        .withdraw(withdrawal_request)
        .await
        .map_err(refused)?;
    Ok(answer(HttpResponse::Created(), &withdrawal))
}

/// `DELETE /admin/withdrawals/{id}`: lift a suspension.
pub async fn lift(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&request, &state)?;
    let id = request.match_info().get("id").unwrap_or_default();
    state.registrar.lift_withdrawal(id).await.map_err(refused)?;
    let mut response = HttpResponse::NoContent();
    no_store(&mut response);
    Ok(response.finish())
}

/// Any other method: 404 while the API is off (it does not exist), else 405 with `Allow`.
pub async fn collection_method_not_allowed(
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    not_allowed(&state, "GET, HEAD, POST")
}

pub async fn item_method_not_allowed(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    not_allowed(&state, "DELETE")
}

fn not_allowed(state: &AppState, allow: &'static str) -> Result<HttpResponse, ApiError> {
    if state.registrar.config().admin_api_tokens.is_empty()
        || state.registrar.status_service().is_none()
    {
        return Err(ApiError::NotFound);
    }
    Err(ApiError::MethodNotAllowed { allow })
}
