//! What Graph answered, and what it means for the caller. Pure.
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::pacing::LimitShare;

/// A Graph response, whatever its status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Graph's `request-id`, for the audit log and Microsoft support.
    pub request_id: Option<String>,
    pub retry_after: Option<Duration>,
    /// `x-ms-throttle-scope` on a 429: which limit was hit.
    pub throttle_scope: Option<String>,
    /// `x-ms-throttle-limit-percentage` (0.8 to 1.8), sent above 80% of a limit.
    pub limit_percentage: Option<LimitShare>,
    pub body: Option<Value>,
}

/// Graph's error body: `{"error": {"code", "message", "details": [..], "innerError": {..}}}`
/// (learn.microsoft.com/graph/errors).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphError {
    pub code: String,
    pub message: String,
    pub detail_codes: Vec<String>,
    pub target: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: Body,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Vec<Detail>,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    target: Option<String>,
}

impl GraphError {
    pub fn parse(body: Option<&Value>) -> Option<Self> {
        let env: Envelope = serde_json::from_value(body?.clone()).ok()?;
        let target = env.error.details.iter().find_map(|d| d.target.clone());
        Some(Self {
            code: env.error.code,
            message: env.error.message,
            detail_codes: env.error.details.into_iter().map(|d| d.code).collect(),
            target,
        })
    }
}

/// Why a call did not succeed, sorted by what the engine does about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 429, or 503/504 with Retry-After: wait as told, then retry.
    Throttled,
    /// Other 5xx, timeouts, dropped connections: retry with backoff.
    Transient,
    /// 404: gone, or (right after a create) not replicated yet.
    NotFound,
    /// 400 ObjectConflict: another object holds this UPN or mail.
    Conflict { property: String },
    /// 400: the UPN's domain is not a verified domain of the tenant.
    UnverifiedDomain,
    /// 401: the token was refused; get a new one.
    Unauthorized,
    /// 403: the app may not touch this user (e.g. an administrator).
    Forbidden,
    /// 400 on adding a member who already is one (group-post-members):
    /// what the add wanted is already so.
    AlreadyMember,
    /// Any other 4xx: this request will never succeed as it is.
    Rejected,
}

impl Failure {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::Throttled | Failure::Transient)
    }
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn error(&self) -> Option<GraphError> {
        GraphError::parse(self.body.as_ref())
    }

    pub fn failure(&self) -> Option<Failure> {
        if self.is_success() {
            return None;
        }
        let err = self.error().unwrap_or_default();
        Some(match self.status {
            429 => Failure::Throttled,
            503 | 504 if self.retry_after.is_some() => Failure::Throttled,
            500..=599 => Failure::Transient,
            404 => Failure::NotFound,
            401 => Failure::Unauthorized,
            403 => Failure::Forbidden,
            400 if err
                .message
                .contains("added object references already exist") =>
            {
                Failure::AlreadyMember
            }
            400 if err.detail_codes.iter().any(|c| c == "ObjectConflict")
                || err.message.contains("already exists") =>
            {
                Failure::Conflict {
                    property: conflict_property(&err),
                }
            }
            // "The domain portion of the userPrincipalName property is invalid. You must
            // use one of the verified domain names in your organization."
            400 if err
                .message
                .contains("domain portion of the userPrincipalName") =>
            {
                Failure::UnverifiedDomain
            }
            // 408 and 409 are worth another try; Graph uses 409 for concurrent edits.
            408 | 409 => Failure::Transient,
            _ => Failure::Rejected,
        })
    }
}

fn conflict_property(err: &GraphError) -> String {
    if let Some(t) = &err.target {
        return t.clone();
    }
    // "Another object with the same value for property userPrincipalName already exists."
    err.message
        .split("property ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("unknown")
        .trim_end_matches('.')
        .to_string()
}

/// The user property a Graph refusal names, as in "Invalid value specified
/// for property 'usageLocation' of resource 'User'.", so the admin can be
/// told which Plumm field to correct.
pub fn named_property(message: &str) -> Option<&str> {
    let rest = &message[message.find("property '")? + "property '".len()..];
    let name = &rest[..rest.find('\'')?];
    (!name.is_empty()).then_some(name)
}

/// `x-ms-throttle-limit-percentage`, with the most it may mean: the value
/// plus one unit of its last digit ("0.9" -> up to 1.0, "0.93" -> 0.94),
/// since Graph does not say whether it rounds or cuts.
pub fn parse_limit_percentage(raw: &str) -> Option<LimitShare> {
    let raw = raw.trim();
    let v: f64 = raw.parse().ok().filter(|v: &f64| v.is_finite())?;
    let decimals = raw.split_once('.').map_or(0, |(_, f)| f.len()).min(6);
    Some(LimitShare {
        reported: v,
        at_most: v + 10f64.powi(-(decimals as i32)),
    })
}

/// `Retry-After` as Graph sends it: delay-seconds, possibly with a fraction
/// (learn.microsoft.com/graph/throttling), or an HTTP date (RFC 9110 10.2.3).
/// Longer waits are capped: the change is deferred and tried again later
/// rather than holding a worker (and no arithmetic overflows on a wild value).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

pub fn parse_retry_after(raw: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<f64>() {
        if secs.is_nan() {
            return None;
        }
        return Duration::try_from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())).ok();
    }
    let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - now;
    Some(
        delta
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_property_a_refusal_names() {
        let m = "Invalid value specified for property 'usageLocation' of resource 'User'.";
        assert_eq!(named_property(m), Some("usageLocation"));
        assert_eq!(
            named_property(
                "Another object with the same value for property userPrincipalName already exists."
            ),
            None
        );
        assert_eq!(named_property("property ''"), None);
        assert_eq!(named_property("property 'open"), None);
    }

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            status,
            request_id: None,
            retry_after: None,
            throttle_scope: None,
            limit_percentage: None,
            body: Some(body),
        }
    }

    #[test]
    fn duplicate_upn_is_a_conflict_on_that_property() {
        let r = reply(
            400,
            json!({"error": {"code": "Request_BadRequest",
                "message": "Another object with the same value for property userPrincipalName already exists.",
                "details": [{"code": "ObjectConflict", "message": "...", "target": "userPrincipalName"}]}}),
        );
        assert_eq!(
            r.failure(),
            Some(Failure::Conflict {
                property: "userPrincipalName".into()
            })
        );
        let r = reply(
            400,
            json!({"error": {"code": "Request_BadRequest",
                "message": "Another object with the same value for property proxyAddresses already exists."}}),
        );
        assert_eq!(
            r.failure(),
            Some(Failure::Conflict {
                property: "proxyAddresses".into()
            })
        );
    }

    #[test]
    fn adding_a_member_twice_is_told_apart_from_a_conflict() {
        let dup = reply(
            400,
            json!({"error": {"code": "Request_BadRequest", "message":
                "One or more added object references already exist for the following modified properties: 'members'."}}),
        );
        assert_eq!(dup.failure(), Some(Failure::AlreadyMember));
    }

    #[test]
    fn statuses_map_to_what_the_engine_does() {
        assert_eq!(reply(429, json!({})).failure(), Some(Failure::Throttled));
        assert_eq!(reply(503, json!({})).failure(), Some(Failure::Transient));
        assert_eq!(reply(404, json!({})).failure(), Some(Failure::NotFound));
        assert_eq!(reply(403, json!({})).failure(), Some(Failure::Forbidden));
        assert_eq!(
            reply(400, json!({"error": {"code": "Request_BadRequest", "message": "Property userPrincipalName is invalid."}})).failure(),
            Some(Failure::Rejected)
        );
        assert_eq!(reply(204, json!({})).failure(), None);
    }

    #[test]
    fn a_limit_percentage_means_at_most_its_value_plus_its_precision() {
        let near = |raw: &str, v: f64, most: f64| {
            let got = parse_limit_percentage(raw).expect(raw);
            assert!((got.reported - v).abs() < 1e-9, "{raw}: {got:?}");
            assert!((got.at_most - most).abs() < 1e-9, "{raw}: {got:?}");
        };
        near("0.9", 0.9, 1.0);
        near("0.93", 0.93, 0.94);
        near("1", 1.0, 2.0);
        assert_eq!(parse_limit_percentage("high"), None);
        assert_eq!(parse_limit_percentage("NaN"), None);
    }

    #[test]
    fn retry_after_accepts_decimal_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after("0.2", now),
            Some(Duration::from_millis(200))
        );
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:00:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("1e20", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("NaN", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
