//! Response bodies in Microsoft's error formats.

use chrono::Utc;
use serde_json::{json, Value};

use super::util::{graph_date, new_guid};

/// Content type Graph uses for OData JSON payloads (see the batch response
/// sample in https://learn.microsoft.com/graph/json-batching).
pub(crate) const ODATA_JSON: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

#[derive(Debug, Clone)]
pub(crate) enum Body {
    None,
    Json(Value),
    Text(String),
    Error {
        code: String,
        message: String,
        details: Option<Value>,
    },
}

/// A Graph answer before request ids are attached.
#[derive(Debug, Clone)]
pub(crate) struct GraphResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl GraphResp {
    pub(super) fn json(status: u16, v: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Json(v),
        }
    }

    pub(super) fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::None,
        }
    }

    /// Graph's error object: https://learn.microsoft.com/graph/errors
    pub(super) fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Error {
                code: code.into(),
                message: message.into(),
                details: None,
            },
        }
    }

    pub(super) fn with_details(mut self, d: Value) -> Self {
        if let Body::Error { details, .. } = &mut self.body {
            *details = Some(d);
        }
        self
    }

    pub(super) fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    /// The JSON body with `innerError` filled in (casing as in the samples of
    /// https://learn.microsoft.com/graph/errors and the batching page).
    pub(super) fn body_json(&self, request_id: &str, client_request_id: &str) -> Option<Value> {
        match &self.body {
            Body::None => None,
            Body::Json(v) => Some(v.clone()),
            Body::Text(t) => Some(Value::String(t.clone())),
            Body::Error {
                code,
                message,
                details,
            } => {
                let mut err = json!({
                    "code": code,
                    "message": message,
                    "innerError": {
                        "date": graph_date(Utc::now()),
                        "request-id": request_id,
                        "client-request-id": client_request_id,
                    }
                });
                if let (Some(d), Some(obj)) = (details, err.as_object_mut()) {
                    obj.insert("details".into(), d.clone());
                }
                Some(json!({ "error": err }))
            }
        }
    }

    pub(super) fn content_type(&self) -> Option<&'static str> {
        match &self.body {
            Body::None => None,
            Body::Json(_) => Some(ODATA_JSON),
            Body::Text(_) => Some("text/plain"),
            Body::Error { .. } => Some("application/json"),
        }
    }
}

/// Error code Graph uses for a bare status (injected faults).
/// A write naming a property the resource does not have (users and groups
/// answer alike).
pub(crate) fn unknown_property(key: &str) -> GraphResp {
    GraphResp::error(
        400,
        "BadRequest",
        format!("Property '{key}' does not exist as a declared property or extension property."),
    )
}

pub(crate) fn code_for_status(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "InvalidAuthenticationToken",
        403 => "Authorization_RequestDenied",
        404 => "Request_ResourceNotFound",
        409 => "Conflict",
        // https://learn.microsoft.com/graph/throttling (sample 429 response)
        429 => "TooManyRequests",
        503 => "serviceNotAvailable",
        _ => "generalException",
    }
}

pub(crate) fn message_for_status(status: u16) -> &'static str {
    match status {
        429 => "Please retry again later.",
        503 => "The service is temporarily unavailable. Try the request again after a delay.",
        504 => "The server did not receive a timely response from an upstream server.",
        _ => "An unspecified error has occurred.",
    }
}

/// Token endpoint error, in the shape documented at
/// https://learn.microsoft.com/entra/identity-platform/reference-error-codes#handling-error-codes-in-your-application
pub(crate) fn login_error(error: &str, code: u32, description: &str) -> Value {
    let trace_id = new_guid();
    let correlation_id = new_guid();
    let ts = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {ts}"
        ),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    })
}
