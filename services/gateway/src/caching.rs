//! Answers an edge cache (an ingress, a CDN) may keep and revalidate.
//!
//! Search, centre and slot-list answers carry a strong ETag (a digest of
//! the bytes sent) and `Cache-Control: public, max-age=1,
//! stale-while-revalidate=5`. One second is the staleness citizens may see
//! anyway (availability is at most a second old); the five seconds after
//! it let a cache keep answering while one request refreshes the entry, so
//! a crowd asking the same search reaches the gateway about once a second
//! per distinct URL rather than once per person. A request whose
//! `If-None-Match` names the current ETag is answered 304 with no body.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Public answers that change as places are sold.
pub const LIVE: &str = "public, max-age=1, stale-while-revalidate=5";

/// A strong validator of these bytes.
pub fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether the request's `If-None-Match` names `etag` (or `*`). The
/// comparison is weak, as RFC 9110 asks for this header: `W/"x"` matches
/// `"x"`.
pub fn not_modified(request: &HeaderMap, etag: &str) -> bool {
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || bare(tag) == bare(etag))
}

/// `body` as the answer, or 304 when the requester already has it.
pub fn validated(
    request: &HeaderMap,
    body: Bytes,
    content_type: &'static str,
    cache_control: &'static str,
    etag: &str,
) -> Response {
    let mut response = if not_modified(request, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut full = body.into_response();
        full.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        full
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    if let Ok(etag) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, etag);
    }
    response
}

/// A JSON answer an edge cache may keep for a second.
pub fn live_json<T: Serialize>(request: &HeaderMap, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let etag = etag_of(&bytes);
            validated(request, Bytes::from(bytes), "application/json", LIVE, &etag)
        }
        Err(error) => {
            tracing::error!(%error, "an answer did not serialize");
            crate::problem::Problem::new(crate::problem::ProblemKind::Internal, "an internal error occurred")
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asking(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn etags_follow_the_bytes() {
        assert_eq!(etag_of(b"{\"a\":1}"), etag_of(b"{\"a\":1}"));
        assert_ne!(etag_of(b"{\"a\":1}"), etag_of(b"{\"a\":2}"));
        assert!(etag_of(b"x").starts_with('"') && etag_of(b"x").len() == 34);
    }

    #[test]
    fn if_none_match_lists_weak_tags_and_stars() {
        let etag = etag_of(b"body");
        assert!(not_modified(&asking(&etag), &etag));
        assert!(not_modified(&asking(&format!("\"other\", W/{etag}")), &etag));
        assert!(not_modified(&asking("*"), &etag));
        assert!(!not_modified(&asking("\"other\""), &etag));
        assert!(!not_modified(&HeaderMap::new(), &etag));
    }

    #[test]
    fn a_known_answer_is_304_without_a_body() {
        let body = serde_json::json!({"centres": []});
        let first = live_json(&HeaderMap::new(), &body);
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CACHE_CONTROL], LIVE);
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        let again = live_json(&asking(&etag), &body);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag.as_str());
        assert!(again.headers().get(header::CONTENT_TYPE).is_none());
    }
}
