//! `[mapping] manager = "{manager_id}"`: a person's manager is another
//! Plumm person of the same company, named by Plumm id. Pure: the caller
//! reads the people on the chain (`fetch`); this decides whether the
//! manager can be set, and if not, says why in words an admin can act on.
use std::fmt;

use super::Mapping;
use crate::domain::{CompanyId, PlummUser, PlummUserId};

/// The `[mapping]` key.
pub const MANAGER: &str = "manager";

/// How far up a chain of managers a cycle is looked for: deeper than any
/// organisation, and a bound on the reads one person costs.
const MAX_CHAIN: usize = 64;

/// Why a person's manager cannot be set in Entra.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerProblem {
    /// The column holds something that is not a Plumm id.
    NotAnId { field: String, value: String },
    /// The person is named as their own manager.
    Itself { field: String },
    /// No Plumm person has that id.
    Missing { field: String, manager: PlummUserId },
    /// The manager belongs to another company (another tenant, or none).
    OtherCompany {
        field: String,
        manager: PlummUserId,
        company: CompanyId,
    },
    /// Following the managers up leads back to the person.
    Cycle {
        field: String,
        chain: Vec<PlummUserId>,
    },
}

impl fmt::Display for ManagerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerProblem::NotAnId { field, value } => write!(
                f,
                "{field} '{value}' is not the id of a Plumm person; correct the manager in Plumm"
            ),
            ManagerProblem::Itself { field } => write!(
                f,
                "{field} names the person as their own manager, which Entra refuses; correct the manager in Plumm"
            ),
            ManagerProblem::Missing { field, manager } => write!(
                f,
                "{field} names Plumm person {manager}, who does not exist; correct the manager in Plumm"
            ),
            ManagerProblem::OtherCompany {
                field,
                manager,
                company,
            } => write!(
                f,
                "{field} names Plumm person {manager} of company {company}, not the person's own \
                 company: a manager must be in the same tenant; correct the manager in Plumm"
            ),
            ManagerProblem::Cycle { field, chain } => {
                let chain: Vec<String> = chain.iter().map(|p| p.0.to_string()).collect();
                write!(
                    f,
                    "{field} would make a cycle of managers ({}); correct one of them in Plumm",
                    chain.join(" -> ")
                )
            }
        }
    }
}

impl Mapping {
    /// Whether `[mapping]` manages the manager at all: without a `manager`
    /// key, Entra's managers are left as they are.
    pub fn manages_manager(&self) -> bool {
        self.manager.is_some()
    }

    /// The Plumm id the person's manager column names; `None`: no manager
    /// (the column is NULL or blank), or the manager is not mapped.
    pub fn manager_id(&self, user: &PlummUser) -> Result<Option<PlummUserId>, ManagerProblem> {
        let Some(template) = &self.manager else {
            return Ok(None);
        };
        let Some(raw) = template.render(user) else {
            return Ok(None);
        };
        match raw.trim().parse::<i64>() {
            Ok(id) => Ok(Some(PlummUserId(id))),
            Err(_) => Err(ManagerProblem::NotAnId {
                field: self.field_for(MANAGER),
                value: super::printable(&raw),
            }),
        }
    }
}

/// The manager `report` should have in Entra, checked: the same company,
/// not the person, no cycle through the person. `fetch` reads a Plumm
/// person by id. A cycle above the manager that does not pass through the
/// report is not the report's problem (it is reported on those people).
pub fn check_manager(
    report: &PlummUser,
    mapping: &Mapping,
    mut fetch: impl FnMut(PlummUserId) -> Option<PlummUser>,
) -> Result<Option<PlummUserId>, ManagerProblem> {
    let Some(first) = mapping.manager_id(report)? else {
        return Ok(None);
    };
    let field = || mapping.field_for(MANAGER);
    if first == report.id {
        return Err(ManagerProblem::Itself { field: field() });
    }
    let Some(mut row) = fetch(first) else {
        return Err(ManagerProblem::Missing {
            field: field(),
            manager: first,
        });
    };
    if row.company_id != report.company_id {
        return Err(ManagerProblem::OtherCompany {
            field: field(),
            manager: first,
            company: row.company_id,
        });
    }
    let mut chain = vec![report.id, first];
    while chain.len() <= MAX_CHAIN {
        let Ok(Some(next)) = mapping.manager_id(&row) else {
            break;
        };
        if next == report.id {
            chain.push(next);
            return Err(ManagerProblem::Cycle {
                field: field(),
                chain,
            });
        }
        if chain.contains(&next) {
            break;
        }
        let Some(next_row) = fetch(next) else { break };
        chain.push(next);
        row = next_row;
    }
    Ok(Some(first))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::domain::PlummStatus;

    fn person(id: i64, company: i64, manager: Option<i64>) -> PlummUser {
        PlummUser {
            id: PlummUserId(id),
            company_id: CompanyId(company),
            email: format!("p{id}@contoso.com"),
            first_name: "P".into(),
            last_name: id.to_string(),
            role: None,
            department: None,
            location: None,
            country: None,
            status: PlummStatus::Active,
            updated_at: None,
            extra: BTreeMap::from([("manager_id".into(), manager.map(|m| m.to_string()))]),
        }
    }

    fn mapping() -> Mapping {
        let table = BTreeMap::from([
            ("displayName".to_string(), "{first_name}".to_string()),
            ("manager".to_string(), "{manager_id}".to_string()),
        ]);
        Mapping::from_table(&table).unwrap()
    }

    fn check(people: &[PlummUser], who: i64) -> Result<Option<PlummUserId>, ManagerProblem> {
        let by_id: HashMap<PlummUserId, PlummUser> =
            people.iter().map(|p| (p.id, p.clone())).collect();
        let report = &by_id[&PlummUserId(who)];
        check_manager(report, &mapping(), |id| by_id.get(&id).cloned())
    }

    #[test]
    fn a_manager_of_the_same_company_is_set_and_none_is_none() {
        let people = [person(1, 1, None), person(2, 1, Some(1))];
        assert_eq!(check(&people, 2), Ok(Some(PlummUserId(1))));
        assert_eq!(check(&people, 1), Ok(None));
        assert!(!Mapping::default().manages_manager());
        assert_eq!(Mapping::default().manager_id(&people[1]), Ok(None));
    }

    #[test]
    fn self_reference_missing_and_another_company_are_refused_with_the_field() {
        let people = [
            person(1, 1, Some(1)),
            person(2, 1, Some(9)),
            person(3, 2, None),
            person(4, 1, Some(3)),
        ];
        let itself = check(&people, 1).unwrap_err();
        assert!(matches!(itself, ManagerProblem::Itself { .. }));
        assert!(
            itself.to_string().contains("manager_id (Entra manager)"),
            "{itself}"
        );
        assert!(matches!(
            check(&people, 2),
            Err(ManagerProblem::Missing {
                manager: PlummUserId(9),
                ..
            })
        ));
        let other = check(&people, 4).unwrap_err();
        assert!(other.to_string().contains("company 2"), "{other}");
    }

    #[test]
    fn a_cycle_through_the_person_is_refused_naming_the_chain() {
        let people = [
            person(1, 1, Some(3)),
            person(2, 1, Some(1)),
            person(3, 1, Some(2)),
        ];
        let err = check(&people, 1).unwrap_err();
        assert_eq!(err.to_string().matches("->").count(), 3, "{err}");
        assert!(err.to_string().contains("(1 -> 3 -> 2 -> 1)"), "{err}");
    }

    #[test]
    fn a_cycle_above_the_manager_is_not_the_reports_problem() {
        let people = [
            person(1, 1, Some(2)),
            person(2, 1, Some(3)),
            person(3, 1, Some(2)),
        ];
        assert_eq!(check(&people, 1), Ok(Some(PlummUserId(2))));
    }

    #[test]
    fn a_value_that_is_no_id_is_refused_quoting_it() {
        let mut p = person(1, 1, None);
        p.extra.insert("manager_id".into(), Some("boss".into()));
        let err = check(&[p], 1).unwrap_err();
        assert!(err.to_string().contains("'boss'"), "{err}");
    }
}
