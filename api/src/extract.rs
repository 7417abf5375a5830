//! Request extractors that answer bad input with problem details rather than axum's plain-text
//! rejections:
//!
//! - [`Input`]: a command body, JSON or form-encoded by its `Content-Type`; unknown fields are
//!   refused (the request types say `deny_unknown_fields`) and the field at fault is named.
//! - [`Params`]: query-string parameters, parsed the same way.
//! - [`IdempotencyKey`]: the optional `Idempotency-Key` header of a creating POST.
//! - [`PathParams`]: path parameters, a malformed one named as the field at fault.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The largest request body accepted, in bytes (bulk content ingestion is the largest user).
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Form,
}

impl Encoding {
    /// From a `Content-Type` header; none means JSON.
    fn of(content_type: Option<&str>) -> Result<Self, ApiError> {
        let essence = content_type
            .map(|ct| {
                ct.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        match essence.as_str() {
            "" | "application/json" => Ok(Self::Json),
            "application/x-www-form-urlencoded" => Ok(Self::Form),
            other => Err(ApiError::field(
                "Content-Type",
                format!("'{other}' is not accepted; send application/json or application/x-www-form-urlencoded"),
            )),
        }
    }
}

/// Decodes `bytes` as `T`, naming the field at fault on failure.
pub fn decode<T: DeserializeOwned>(encoding: Encoding, bytes: &[u8]) -> Result<T, ApiError> {
    match encoding {
        Encoding::Json => {
            let de = &mut serde_json::Deserializer::from_slice(bytes);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let reason = e.into_inner().to_string();
                ApiError::field(if path == "." { "body".into() } else { path }, reason)
            })
        }
        Encoding::Form => {
            serde_urlencoded::from_bytes(bytes).map_err(|e| ApiError::field("body", e.to_string()))
        }
    }
}

/// Reads the whole body within [`BODY_LIMIT`].
pub async fn body_bytes(request: Request) -> Result<(Encoding, Bytes), ApiError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(format!("the body is larger than {BODY_LIMIT} bytes"))
        })?;
    let encoding = if bytes.is_empty() {
        Encoding::Json
    } else {
        Encoding::of(content_type.as_deref())?
    };
    Ok((encoding, bytes))
}

/// A command body: JSON or form-encoded.
#[derive(Debug)]
pub struct Input<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Input<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let (encoding, bytes) = body_bytes(request).await?;
        if bytes.is_empty() {
            return Err(ApiError::field("body", "a request body is required"));
        }
        decode(encoding, &bytes).map(Input)
    }
}

/// Query-string parameters.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(Params)
            .map_err(|e| ApiError::field("query", e.to_string()))
    }
}

/// The client's `Idempotency-Key`: a creating POST repeated with the same key answers the
/// first outcome and appends nothing.
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        match parts.headers.get("idempotency-key") {
            None => Ok(Self(None)),
            Some(value) => value
                .to_str()
                .map(|key| Self(Some(key.to_string())))
                .map_err(|_| ApiError::field("Idempotency-Key", "must be visible ASCII")),
        }
    }
}

impl IdempotencyKey {
    /// The id of a resource a POST creates: derived from the key (and the caller and `scope`,
    /// so two callers' keys never meet) when there is one, so a repeated request addresses the
    /// same stream and the store answers it with the first outcome; random otherwise.
    pub fn new_id(&self, principal: &crate::auth::Principal, scope: &str) -> uuid::Uuid {
        match &self.0 {
            Some(key) => uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_OID,
                format!("{scope}\n{}\n{key}", principal.actor()).as_bytes(),
            ),
            None => uuid::Uuid::new_v4(),
        }
    }
}

/// Path parameters, parsed as axum's `Path` does, refused as problem details.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let reason = e.body_text();
                Err(match e.into_kind() {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::DeserializeError { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key } => ApiError::field(key, reason),
                    _ => ApiError::bad_request(reason),
                })
            }
            Err(other) => Err(ApiError::Internal(other.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Enroll {
        username: String,
        course_id: String,
    }

    #[test]
    fn json_and_forms_decode_alike() {
        let json: Enroll = decode(
            Encoding::Json,
            br#"{"username": "ann", "course_id": "course-v1:a+b+c"}"#,
        )
        .unwrap();
        let form: Enroll = decode(
            Encoding::Form,
            b"username=ann&course_id=course-v1%3Aa%2Bb%2Bc",
        )
        .unwrap();
        assert_eq!(json, form);
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let unknown = decode::<Enroll>(
            Encoding::Json,
            br#"{"username": "ann", "course_id": "x", "admin": true}"#,
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("admin"), "{unknown}");
        let missing = decode::<Enroll>(Encoding::Json, br#"{"username": "ann"}"#).unwrap_err();
        assert!(missing.to_string().contains("course_id"), "{missing}");
        let wrong_type =
            decode::<Enroll>(Encoding::Json, br#"{"username": 5, "course_id": "x"}"#).unwrap_err();
        match wrong_type {
            ApiError::BadRequest { fields, .. } => assert_eq!(fields[0].field, "username"),
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn other_content_types_are_refused() {
        assert!(Encoding::of(Some("text/plain")).is_err());
        assert_eq!(
            Encoding::of(Some("application/json; charset=utf-8")).unwrap(),
            Encoding::Json
        );
        assert_eq!(Encoding::of(None).unwrap(), Encoding::Json);
    }
}
