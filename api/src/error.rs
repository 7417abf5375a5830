//! Errors as the API answers them: RFC 9457 problem details (`application/problem+json` with
//! `type`, `title`, `status`, `detail` and, for bad input, the fields at fault).
//!
//! Every failure a handler can meet converts into [`ApiError`] here, once: a domain refusal by
//! its kind, a store failure by its class. A 500 is only ever an internal fault (a corrupt
//! event, an unexpected database error), logged with its cause and answered without it.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::error::{DomainError, Invalid};
use serde::Serialize;
use store::error::FailureKind;
use store::services::customers::CustomerServiceError;
use store::services::enrollments::EnrollError;
use store::services::learners::LearnerServiceError;
use store::services::redemption::RedemptionError;
use store::{CommandError, Failure};

/// One input field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

/// Why a request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The input is malformed: unknown, missing or invalid fields.
    #[error("{detail}")]
    BadRequest {
        detail: String,
        fields: Vec<FieldError>,
    },
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the role this request needs.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with the current state (a duplicate, a limit, a lost race).
    #[error("{0}")]
    Conflict(String),
    /// The request is well formed but not allowed in the current state.
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The database cannot be reached, or a read model did not catch up in time.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of the service itself; the cause goes to the log, not to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest {
            detail: detail.into(),
            fields: Vec::new(),
        }
    }

    /// A single field at fault.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let (field, reason) = (field.into(), reason.into());
        Self::BadRequest {
            detail: format!("{field}: {reason}"),
            fields: vec![FieldError { field, reason }],
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A domain or store failure with its message, mapped by kind.
    fn from_kind(kind: FailureKind, field: Option<&str>, message: String) -> Self {
        match kind {
            FailureKind::Validation => match field {
                Some(field) => {
                    let reason = message
                        .strip_prefix(&format!("{field}: "))
                        .unwrap_or(&message)
                        .to_string();
                    Self::field(field, reason)
                }
                None => Self::bad_request(message),
            },
            FailureKind::NotFound => Self::NotFound(message),
            FailureKind::Conflict => Self::Conflict(message),
            FailureKind::ForbiddenTransition => Self::Unprocessable(message),
            FailureKind::Unavailable => Self::Unavailable(message),
            FailureKind::Internal => Self::Internal(message),
        }
    }
}

/// The problem-details body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                "the service failed to handle the request; it has been logged".to_string()
            }
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "unavailable");
                cause.clone()
            }
            other => other.to_string(),
        };
        let errors = match self {
            Self::BadRequest { fields, .. } => fields,
            _ => Vec::new(),
        };
        let title = status.canonical_reason().unwrap_or("Error").to_string();
        let kind = format!(
            "https://enterprise.example/problems/{}",
            title.to_lowercase().replace(' ', "-")
        );
        let body = Problem {
            kind,
            title,
            status: status.as_u16(),
            detail,
            errors,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            bytes,
        )
            .into_response()
    }
}

impl<E: DomainError> From<CommandError<E>> for ApiError {
    fn from(err: CommandError<E>) -> Self {
        Self::from_kind(err.kind(), err.field(), err.to_string())
    }
}

impl From<CustomerServiceError> for ApiError {
    fn from(err: CustomerServiceError) -> Self {
        match err {
            CustomerServiceError::Slug(e) => e.into(),
            CustomerServiceError::Customer(e) => e.into(),
        }
    }
}

impl From<LearnerServiceError> for ApiError {
    fn from(err: LearnerServiceError) -> Self {
        match err {
            LearnerServiceError::Membership(e) => e.into(),
            other => Self::from_kind(other.kind(), None, other.to_string()),
        }
    }
}

impl From<EnrollError> for ApiError {
    fn from(err: EnrollError) -> Self {
        Self::from_kind(err.kind(), err.field(), err.to_string())
    }
}

impl From<RedemptionError> for ApiError {
    fn from(err: RedemptionError) -> Self {
        Self::from_kind(err.kind(), None, err.to_string())
    }
}

impl From<Failure> for ApiError {
    fn from(err: Failure) -> Self {
        let field = match &err {
            Failure::Invalid(invalid) => Some(invalid.field),
            _ => None,
        };
        Self::from_kind(err.kind(), field, err.to_string())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        Failure::from_sqlx(err).into()
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        Self::field(invalid.field, invalid.reason)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_kind_has_its_status() {
        let cases = [
            (FailureKind::Validation, StatusCode::BAD_REQUEST),
            (FailureKind::NotFound, StatusCode::NOT_FOUND),
            (FailureKind::Conflict, StatusCode::CONFLICT),
            (
                FailureKind::ForbiddenTransition,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (FailureKind::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            (FailureKind::Internal, StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (kind, status) in cases {
            assert_eq!(ApiError::from_kind(kind, None, "x".into()).status(), status);
        }
    }

    #[test]
    fn a_validation_failure_names_its_field_once() {
        let err = ApiError::from_kind(
            FailureKind::Validation,
            Some("slug"),
            "slug: must be lowercase".into(),
        );
        match err {
            ApiError::BadRequest { fields, .. } => assert_eq!(
                fields,
                vec![FieldError {
                    field: "slug".into(),
                    reason: "must be lowercase".into()
                }]
            ),
            other => panic!("expected a bad request, got {other:?}"),
        }
    }
}
