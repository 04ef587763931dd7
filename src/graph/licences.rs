//! A user's licence assignment states as Graph lists them: the entries an
//! admin must act on. Pure.
use serde_json::Value;

use crate::domain::LicenceError;

/// The user property, "Returned only on $select" (graph/api/resources/user).
pub const LICENCE_STATES: &str = "licenseAssignmentStates";

/// The states that carry an error: "Active, ActiveWithError, Disabled, and
/// Error" are the documented values (graph/api/resources/licenseassignmentstate).
const IN_ERROR: &[&str] = &["Error", "ActiveWithError"];

/// The licence errors on a listed user: `None` when the listing did not
/// carry the property (not selected, or left out), which says nothing
/// either way; `Some` (possibly empty) when it did. An entry without a
/// state or SKU is skipped; an error Graph left out (or wrote as "None",
/// as some responses do for an assignment that succeeded) is `Other`.
pub fn licence_errors(user: &Value) -> Option<Vec<LicenceError>> {
    let states = user.get(LICENCE_STATES)?.as_array()?;
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut out: Vec<LicenceError> = states
        .iter()
        .filter_map(|s| {
            let state = text(s, "state")?;
            if !IN_ERROR.iter().any(|e| e.eq_ignore_ascii_case(&state)) {
                return None;
            }
            let error = text(s, "error")
                .filter(|e| !e.eq_ignore_ascii_case("None"))
                .unwrap_or_else(|| "Other".into());
            Some(LicenceError {
                sku_id: text(s, "skuId")?.to_ascii_lowercase(),
                group_id: text(s, "assignedByGroup").map(|g| g.to_ascii_lowercase()),
                state,
                error,
                updated_at: text(s, "lastUpdatedDateTime"),
            })
        })
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.sku_id == b.sku_id && a.group_id == b.group_id);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_entries_in_error_are_kept_and_a_missing_property_says_nothing() {
        let user = json!({"id": "u", LICENCE_STATES: [
            {"assignedByGroup": "G1", "disabledPlans": [], "error": null, "skuId": "S1", "state": "Active"},
            {"assignedByGroup": "G1", "error": "CountViolation", "skuId": "S2", "state": "Error",
             "lastUpdatedDateTime": "2026-01-05T09:00:00Z"},
            {"assignedByGroup": null, "error": "None", "skuId": "S3", "state": "ActiveWithError"},
            {"error": "Other", "state": "Disabled", "skuId": "S4"},
            {"error": "CountViolation", "state": "Error"}
        ]});
        let got = licence_errors(&user).unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0],
            LicenceError {
                sku_id: "s2".into(),
                group_id: Some("g1".into()),
                state: "Error".into(),
                error: "CountViolation".into(),
                updated_at: Some("2026-01-05T09:00:00Z".into()),
            }
        );
        assert_eq!(
            (got[1].group_id.as_deref(), got[1].error.as_str()),
            (None, "Other")
        );
        assert_eq!(licence_errors(&json!({"id": "u"})), None);
        assert_eq!(licence_errors(&json!({LICENCE_STATES: []})), Some(vec![]));
        assert_eq!(licence_errors(&json!({LICENCE_STATES: null})), None);
    }
}
