//! Extractors whose rejections are problem documents, and [`Auth`], the signed-in caller.

use app::api::backend::Principal;
use app::error::AppError;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;

use super::problem::ApiError;

/// A JSON body whose rejections are problem documents. Every body of this API is a JSON
/// object: anything else (an array, which serde would otherwise read into a struct field by
/// field, a number, `null`) is refused with 422.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(ApiError::App(AppError::invalid(
                "body",
                "the body must be a JSON object (see the operation's request schema)",
            )));
        }
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| ApiError::Rejection {
                status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                detail: format!(
                    "Failed to deserialize the JSON body into the target type: {}: {}",
                    e.path(),
                    e.inner()
                ),
            })
    }
}

/// A form body whose rejections are problem documents.
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(ApiError))]
pub struct ApiForm<T>(pub T);

/// A path parameter whose rejections are problem documents.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// A query string whose rejections are problem documents.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The signed-in caller, for handlers: refuses anonymous requests with 401. The
/// authentication layer put it in the request; services authorize it.
pub struct Auth(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| ApiError::App(AppError::unauthenticated()))
    }
}
