//! Plumm's dates -> Graph's `employeeHireDate` and `employeeLeaveDateTime`
//! (Edm.DateTimeOffset: "ISO 8601 format and is always in UTC",
//! learn.microsoft.com/graph/api/resources/user). Pure: the time zone a
//! bare date is read in is a parameter (`[sync] time_zone`).
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The date properties a template may fill.
pub const DATE_PROPERTIES: &[&str] = &["employeeHireDate", "employeeLeaveDateTime"];

/// A start or end date as Plumm holds it: RFC 3339 (`2025-03-01T09:00:00Z`,
/// with its offset), a bare date (`2025-03-01`: midnight in `tz`, the
/// company's day starting), or SQLite's `2025-03-01 09:00:00` (local time
/// in `tz`). The instant in UTC, as Graph answers it (to the second), so
/// what the daemon sends and what a resync reads compare equal.
pub fn instant(raw: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(raw) {
        return Ok(d.with_timezone(&Utc));
    }
    let local = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S"))
        .map_err(|_| {
            "is not a date Entra can hold: write YYYY-MM-DD or an RFC 3339 date and time \
             (2025-03-01T09:00:00Z); correct it in Plumm"
                .to_string()
        })?;
    // A local midnight a daylight-saving change skips is read as the first
    // instant after the gap; one it repeats, as the earlier.
    let mut probe = local;
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return Ok(t.with_timezone(&Utc));
        }
        probe += chrono::Duration::minutes(30);
    }
    Err(format!(
        "is a local time that does not exist in {tz}; correct it in Plumm"
    ))
}

/// A person's start and leave instants, as `[sync] prehire_lead` and
/// `suspend_after_leave` read them: from the `employeeHireDate` and
/// `employeeLeaveDateTime` templates when mapped, else from Plumm's
/// `start_date` and `end_date` columns. A date that does not read is
/// `None` here (a mapped one parks the person, naming the column).
pub fn person_dates(
    user: &crate::domain::PlummUser,
    mapping: &super::Mapping,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let read = |property: &str, column: &str| {
        let raw = match mapping.entries.iter().find(|(p, _)| p == property) {
            Some((_, template)) => template.render(user),
            None => user.column(column).filter(|v| !v.trim().is_empty()),
        };
        raw.and_then(|v| instant(&v, mapping.time_zone).ok())
    };
    (
        read("employeeHireDate", "start_date"),
        read("employeeLeaveDateTime", "end_date"),
    )
}

/// Why a start or leave date the lifecycle settings read from Plumm's
/// column (not mapped: a mapped one is checked with the profile) does not
/// read, naming the person's column and value; `None` when both read or
/// are blank.
pub fn unreadable_date(
    user: &crate::domain::PlummUser,
    mapping: &super::Mapping,
) -> Option<String> {
    [
        ("employeeHireDate", "start_date"),
        ("employeeLeaveDateTime", "end_date"),
    ]
    .into_iter()
    .filter(|(property, _)| !mapping.entries.iter().any(|(p, _)| p == property))
    .find_map(|(_, column)| {
        let raw = user.column(column).filter(|v| !v.trim().is_empty())?;
        let why = instant(&raw, mapping.time_zone).err()?;
        Some(format!(
            "Plumm's {column} '{raw}' {why}; write it as YYYY-MM-DD or RFC 3339 in Plumm"
        ))
    })
}

/// The instant as Graph writes it back: `2025-03-01T00:00:00Z`.
pub fn graph_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(raw: &str, tz: Tz) -> Result<String, String> {
        instant(raw, tz).map(graph_text)
    }

    #[test]
    fn a_bare_date_is_local_midnight_in_the_configured_zone() {
        assert_eq!(text("2025-03-01", Tz::UTC).unwrap(), "2025-03-01T00:00:00Z");
        // London is on summer time (UTC+1) in July.
        let london = Tz::Europe__London;
        assert_eq!(text("2025-07-01", london).unwrap(), "2025-06-30T23:00:00Z");
        assert_eq!(text("2025-01-15", london).unwrap(), "2025-01-15T00:00:00Z");
        assert_eq!(
            text("2025-07-01 09:30:00", london).unwrap(),
            "2025-07-01T08:30:00Z"
        );
    }

    #[test]
    fn rfc_3339_keeps_its_own_offset_and_is_written_in_utc() {
        let t = text("2025-03-01T09:00:00+02:00", Tz::Europe__London).unwrap();
        assert_eq!(t, "2025-03-01T07:00:00Z");
        assert_eq!(
            text(" 2025-03-01T09:00:00Z ", Tz::UTC).unwrap(),
            "2025-03-01T09:00:00Z"
        );
    }

    #[test]
    fn a_midnight_a_clock_change_skips_is_the_first_instant_after_it() {
        // Santiago moved its clocks from 00:00 to 01:00 on 2024-09-08.
        let t = text("2024-09-08", Tz::America__Santiago).unwrap();
        assert_eq!(t, "2024-09-08T04:00:00Z");
    }

    #[test]
    fn anything_else_is_refused_with_the_formats_that_work() {
        for bad in ["01/03/2025", "2025-02-30", "next monday", ""] {
            let err = text(bad, Tz::UTC).unwrap_err();
            assert!(err.contains("YYYY-MM-DD"), "{bad}: {err}");
        }
    }
}
