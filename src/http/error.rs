//! What the connect server answers when it cannot go on: a small HTML page
//! with a status an admin's browser shows and a sentence they can act on.
//! Pages never echo the request (no signature, no state, no key).
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::signed::LinkError;
use crate::store::{StateRejected, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("connect state rejected: {0:?}")]
    State(StateRejected),
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Logged with its detail; the page only says something went wrong.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        HttpError::Internal(e.to_string())
    }
}

impl HttpError {
    fn status_and_text(&self) -> (StatusCode, &'static str, String) {
        match self {
            HttpError::Link(LinkError::BadSignature) => (
                StatusCode::FORBIDDEN,
                "This link is not valid",
                "Plumm did not sign this link. Open Tech > Company App > Store in Plumm and \
                 click the button again."
                    .into(),
            ),
            HttpError::Link(LinkError::Expired | LinkError::TooFarAhead) => (
                StatusCode::FORBIDDEN,
                "This link has expired",
                "Links from the Store are valid for a few minutes. Go back to the Store in \
                 Plumm and click the button again."
                    .into(),
            ),
            HttpError::Link(LinkError::Malformed(what)) => (
                StatusCode::BAD_REQUEST,
                "This link is incomplete",
                format!("{what}. Go back to the Store in Plumm and click the button again."),
            ),
            HttpError::State(why) => (
                StatusCode::BAD_REQUEST,
                "This sign-in cannot be completed",
                match why {
                    StateRejected::Unknown => "This answer from Microsoft does not belong to a \
                        Connect started here."
                        .to_string(),
                    StateRejected::Used => "This answer from Microsoft was already used (the \
                        page was reloaded, or Back was pressed)."
                        .to_string(),
                    StateRejected::Expired => "More than a few minutes passed between clicking \
                        Connect and granting consent."
                        .to_string(),
                } + " Nothing was changed. Go back to the Store in Plumm and click Connect again.",
            ),
            HttpError::BadRequest(what) => (
                StatusCode::BAD_REQUEST,
                "This request cannot be completed",
                format!("{what}. Go back to the Store in Plumm and try again."),
            ),
            HttpError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The connection could not be completed. Try again in a minute; if it keeps \
                 failing, contact Plumm support."
                    .into(),
            ),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, title, text) = self.status_and_text();
        if status.is_server_error() {
            tracing::error!("connect server: {self}");
        } else {
            tracing::info!(
                status = status.as_u16(),
                "connect server refused a request: {self}"
            );
        }
        let mut r = (status, page(title, &text)).into_response();
        harden(&mut r);
        r
    }
}

/// Headers on every answer: nothing cached (links and states are one-shot),
/// no Referer carrying a state onward, no sniffing, no scripts.
pub(crate) fn harden(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
}

/// A minimal page; `title` and `text` are escaped.
pub(crate) fn page(title: &str, text: &str) -> axum::response::Html<String> {
    axum::response::Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;\
         padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}</style></head>\
         <body><h1>{t}</h1><p>{x}</p></body></html>",
        t = escape(title),
        x = escape(text)
    ))
}

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
