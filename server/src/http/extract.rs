//! Extractors whose rejections are problem documents, and [`Auth`], the signed-in caller.

use app::api::backend::Principal;
use app::error::AppError;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;

use super::problem::ApiError;

/// A JSON body whose rejections are problem documents.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

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
