//! Extractors whose rejections are problem details, so malformed input
//! never reaches a client as plain text.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::{Problem, ProblemKind};

pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(match &rejection {
                JsonRejection::JsonDataError(e) => Problem::validation(e.body_text()),
                JsonRejection::JsonSyntaxError(e) => {
                    Problem::validation(e.body_text()).with_status(StatusCode::BAD_REQUEST)
                }
                JsonRejection::MissingJsonContentType(_) => {
                    Problem::new(ProblemKind::UnsupportedMediaType, "send the body as application/json")
                }
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    Problem::new(ProblemKind::PayloadTooLarge, "the request body is too large")
                }
                other => Problem::validation(other.body_text()).with_status(StatusCode::BAD_REQUEST),
            }),
        }
    }
}

pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection: QueryRejection| Problem::validation(rejection.body_text()))
    }
}
