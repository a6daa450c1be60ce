//! The pages and their CSS/JS, embedded in the binary: the booth works with
//! no internet and nothing to install. No CDN, no build step.

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const CREATOR_HTML: &str = include_str!("../../../assets/creator.html");
const TECH_HTML: &str = include_str!("../../../assets/tech.html");

/// (file name, content type, bytes). Names are fixed: no path is ever built from the request.
const FILES: &[(&str, &str, &str)] = &[
    ("studiod.css", "text/css; charset=utf-8", include_str!("../../../assets/studiod.css")),
    ("common.js", "text/javascript; charset=utf-8", include_str!("../../../assets/common.js")),
    ("creator.js", "text/javascript; charset=utf-8", include_str!("../../../assets/creator.js")),
    ("tech.js", "text/javascript; charset=utf-8", include_str!("../../../assets/tech.js")),
    ("icon.svg", "image/svg+xml", include_str!("../../../assets/icon.svg")),
];

/// Only our own scripts and styles run; the page cannot be framed (clickjacking
/// a scene button) and the SSE/API calls go to this origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn page(html: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 5] = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (headers, html).into_response()
}

pub async fn creator_page() -> Response {
    page(CREATOR_HTML)
}

pub async fn tech_page() -> Response {
    page(TECH_HTML)
}

pub async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, ctype, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(ctype)),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                // Assets change only with the binary; revalidate cheaply rather than serve stale JS after an upgrade.
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
