use axum::response::Html;

/// A landing page until the citizen web UI exists: what the API offers.
pub async fn index() -> Html<&'static str> {
    Html(include_str!("home.html"))
}
