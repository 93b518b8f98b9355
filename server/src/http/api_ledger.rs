//! The JSON API of the audit ledger: entries, signed checkpoints, proofs, export and
//! verification (secops and administrators).

use app::api::backend::LedgerBackend;
use app::error::AppError;
use app::types::{
    LedgerCheckpoint, LedgerConsistency, LedgerEntry, LedgerFilter, LedgerPage, LedgerProof,
    LedgerStatus, LedgerVerification,
};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{ApiPath, ApiQuery, Auth};
use super::problem::{ApiError, Problem};
use crate::services::ledger_store::LedgerStore;

type ApiResult<T> = Result<Json<T>, ApiError>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ledger_status))
        .routes(routes!(ledger_entries))
        .routes(routes!(ledger_entry))
        .routes(routes!(ledger_entry_proof))
        .routes(routes!(list_checkpoints, create_checkpoint))
        .routes(routes!(latest_checkpoint))
        .routes(routes!(consistency_proof))
        .routes(routes!(export))
        .routes(routes!(verify))
}

const PROBLEM: &str = "application/problem+json";

/// The ledger at a glance: size, newest checkpoint, last verification.
#[utoipa::path(get, path = "/api/v1/ledger", tag = "ledger",
    responses((status = 200, body = LedgerStatus), (status = 403, body = Problem, content_type = PROBLEM)))]
async fn ledger_status(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<LedgerStatus> {
    Ok(Json(s.ledger.ledger_status(&who).await?))
}

/// Entries matching the filters, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/ledger/entries", tag = "ledger", params(LedgerFilter),
    responses((status = 200, body = LedgerPage), (status = 422, body = Problem, content_type = PROBLEM)))]
async fn ledger_entries(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiQuery(filter): ApiQuery<LedgerFilter>,
) -> ApiResult<LedgerPage> {
    Ok(Json(s.ledger.ledger_entries(&who, filter).await?))
}

/// One entry.
#[utoipa::path(get, path = "/api/v1/ledger/entries/{seq}", tag = "ledger",
    params(("seq" = u64, Path, description = "Entry position, from 0")),
    responses((status = 200, body = LedgerEntry), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn ledger_entry(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(seq): ApiPath<u64>,
) -> ApiResult<LedgerEntry> {
    Ok(Json(s.ledger.entry(&who, seq).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ProofQuery {
    /// The checkpoint size to prove inclusion in (default: the newest checkpoint).
    size: Option<u64>,
}

/// An entry with its inclusion proof in a signed checkpoint: a bundle that
/// `stellar ledger verify --proof` checks offline. An entry no checkpoint covers yet is a
/// conflict (409): reading never signs.
#[utoipa::path(get, path = "/api/v1/ledger/entries/{seq}/proof", tag = "ledger",
    params(("seq" = u64, Path, description = "Entry position, from 0"), ProofQuery),
    responses((status = 200, body = LedgerProof), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn ledger_entry_proof(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(seq): ApiPath<u64>,
    ApiQuery(q): ApiQuery<ProofQuery>,
) -> ApiResult<LedgerProof> {
    Ok(Json(s.ledger.ledger_proof(&who, seq, q.size).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// How many, newest first (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

/// Signed checkpoints, newest first.
#[utoipa::path(get, path = "/api/v1/ledger/checkpoints", tag = "ledger", params(ListQuery),
    responses((status = 200, body = [LedgerCheckpoint])))]
async fn list_checkpoints(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Vec<LedgerCheckpoint>> {
    Ok(Json(
        s.ledger.checkpoints(&who, q.limit.unwrap_or(100)).await?,
    ))
}

/// Signs a checkpoint of the current ledger now (answers the newest one, 200, if the ledger
/// has not grown since).
#[utoipa::path(post, path = "/api/v1/ledger/checkpoints", tag = "ledger",
    responses((status = 201, body = LedgerCheckpoint), (status = 200, body = LedgerCheckpoint),
        (status = 409, body = Problem, content_type = PROBLEM)))]
async fn create_checkpoint(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> Result<(StatusCode, Json<LedgerCheckpoint>), ApiError> {
    let signed = s.ledger.checkpoint(&who).await?;
    let status = if signed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(signed.checkpoint)))
}

/// The newest signed checkpoint (404 when none has been signed yet: reading never signs).
#[utoipa::path(get, path = "/api/v1/ledger/checkpoint", tag = "ledger",
    responses((status = 200, body = LedgerCheckpoint), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn latest_checkpoint(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<LedgerCheckpoint> {
    Ok(Json(s.ledger.latest_checkpoint(&who).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencyQuery {
    /// The older checkpoint's size.
    old: u64,
    /// The newer checkpoint's size.
    new: u64,
}

/// A consistency proof between two signed checkpoints: a bundle that
/// `stellar ledger verify --proof` checks offline.
#[utoipa::path(get, path = "/api/v1/ledger/proofs/consistency", tag = "ledger", params(ConsistencyQuery),
    responses((status = 200, body = LedgerConsistency), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn consistency_proof(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> ApiResult<LedgerConsistency> {
    Ok(Json(s.ledger.consistency(&who, q.old, q.new).await?))
}

/// The whole ledger as JSON Lines: a header (format, origin, size, every signed checkpoint),
/// then one entry per line. Streamed; `stellar ledger verify --export` checks it offline.
#[utoipa::path(get, path = "/api/v1/ledger/export", tag = "ledger",
    responses((status = 200, description = "JSON Lines", content_type = "application/x-ndjson")))]
async fn export(State(s): State<AppState>, Auth(who): Auth) -> Result<Response, ApiError> {
    let ledger = s.ledger.export(&who)?.clone();
    let header = ledger.export_header().await?;
    let first = serde_json::to_string(&header).map_err(|e| AppError::internal(e.to_string()))?;
    let size = header.size;
    let stream = futures_util::stream::unfold(
        (ledger, Some(first), 0u64),
        move |(ledger, first, from): (LedgerStore, Option<String>, u64)| async move {
            if let Some(line) = first {
                return Some((Ok(format!("{line}\n")), (ledger, None, from)));
            }
            if from >= size {
                return None;
            }
            match ledger.range(from, 2000.min(size - from)).await {
                Ok(page) if !page.is_empty() => {
                    let next = page.last().map_or(size, |e| e.seq + 1);
                    let mut chunk = String::new();
                    for e in page.iter().filter(|e| e.seq < size) {
                        chunk.push_str(&serde_json::to_string(e).unwrap_or_default());
                        chunk.push('\n');
                    }
                    Some((Ok(chunk), (ledger, None, next)))
                }
                Ok(_) => None,
                Err(e) => Some((
                    Err(std::io::Error::other(e.to_string())),
                    (ledger, None, size),
                )),
            }
        },
    );
    let mut res = Body::from_stream(stream).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"stellar-ledger.jsonl\""),
    );
    Ok(res)
}

/// Verifies the whole ledger now against the registered checkpoint keys and records the
/// outcome (shown in the portal).
#[utoipa::path(post, path = "/api/v1/ledger/verifications", tag = "ledger",
    responses((status = 200, body = LedgerVerification)))]
async fn verify(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<LedgerVerification> {
    Ok(Json(s.ledger.verify_ledger(&who).await?))
}
