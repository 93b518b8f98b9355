//! The one error type that crosses the wire between server and portal.
//!
//! Every variant carries a message written for the person who reads it: what went wrong and what
//! to do about it. Internal details never travel; the server logs them with the request id.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

/// What every internal error says to callers.
pub const INTERNAL_MESSAGE: &str =
    "the server failed to answer: try again, and report the request id if it persists";

/// An error a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppError {
    /// No valid session or token: sign in again.
    #[error("{message}")]
    Unauthenticated { message: String },
    /// Signed in, but the role does not allow this.
    #[error("{message}")]
    Forbidden { message: String },
    /// Absent, or not visible to the caller (the two are indistinguishable on purpose).
    #[error("{message}")]
    NotFound { message: String },
    /// The input is wrong; `field` names the input at fault when there is one.
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    /// The change conflicts with what exists (a duplicate name, say).
    #[error("{message}")]
    Conflict { message: String },
    /// Too many attempts; retry after the given number of seconds.
    #[error("{message}")]
    TooManyRequests {
        retry_after_secs: u64,
        message: String,
    },
    /// Something failed on the server. The message is the same for every internal error (the
    /// request id says which); the detail stays on the server: it goes to the log, and to
    /// whatever the server records for its operators, never over the wire.
    #[error("{message}")]
    Internal {
        message: String,
        #[serde(skip)]
        detail: String,
    },
    /// The request did not reach the server or its answer could not be read.
    #[error("{message}")]
    Transport { message: String },
}

impl AppError {
    pub fn unauthenticated() -> Self {
        AppError::Unauthenticated {
            message: "sign in to continue: the session is missing or has expired".into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden {
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        AppError::NotFound {
            message: message.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        AppError::Conflict {
            message: message.into(),
        }
    }

    /// An internal error: `detail` is logged (with the request id, on the server) and kept
    /// for the server's own records; callers see only a fixed message.
    pub fn internal(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        #[cfg(feature = "ssr")]
        tracing::error!(%detail, "internal error");
        AppError::Internal {
            message: INTERNAL_MESSAGE.into(),
            detail,
        }
    }

    /// What went wrong, in full: the detail of an internal error (for the server's records,
    /// such as a failed analysis), the message of any other.
    pub fn detail(&self) -> String {
        match self {
            AppError::Internal { detail, .. } if !detail.is_empty() => detail.clone(),
            other => other.to_string(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated { .. } => 401,
            AppError::Forbidden { .. } => 403,
            AppError::NotFound { .. } => 404,
            AppError::Invalid { .. } => 422,
            AppError::Conflict { .. } => 409,
            AppError::TooManyRequests { .. } => 429,
            AppError::Internal { .. } => 500,
            AppError::Transport { .. } => 502,
        }
    }

    /// The input field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Invalid { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => AppError::Invalid {
                field: None,
                message: format!("the form could not be read: {m}"),
            },
            other => AppError::Transport {
                message: format!("the server could not be reached or answered oddly: {other}"),
            },
        }
    }
}
