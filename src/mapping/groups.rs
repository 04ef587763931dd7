//! Plumm columns -> the Entra groups a person belongs in (`[[groups]]`).
//! Pure: the rules are checked once at start (and on reload), and a person's
//! groups are a function of their Plumm row and the rules, nothing else.
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{MappingError, Template};
use crate::domain::{CompanyId, PlummUser};

/// Graph's limit for a group's mailNickname (group-post-groups).
const GROUP_NICKNAME_MAX: usize = 64;

/// `[sync] on_suspend_groups`: what a suspension does to the memberships
/// the daemon made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSuspendGroups {
    /// Entra's practice: a disabled account keeps its groups, so a
    /// reactivation restores access exactly as it was.
    #[default]
    Keep,
    /// Take the person out of every managed group.
    Remove,
}

/// One `[[groups]]` table as the configuration wrote it, before checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRuleSpec {
    pub company: Option<i64>,
    pub group_id: Option<String>,
    pub name: Option<String>,
    pub when: BTreeMap<String, String>,
}

/// A rule refused at start: its position among the `[[groups]]` tables
/// (1-based, as an admin counts them in the file) and why.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("rule {position}: {reason}")]
pub struct GroupRuleError {
    pub position: usize,
    pub reason: String,
}

/// Where a rule puts a person.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupTarget {
    /// An existing Entra group, by object id (lower case).
    Id(String),
    /// A group the daemon manages, by its rendered display name.
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Id(String),
    Name(Template),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    company: Option<CompanyId>,
    target: Target,
    /// Column -> lower-cased pattern; every one must match.
    when: Vec<(String, Vec<char>)>,
}

/// The checked `[[groups]]` rules; empty manages no membership at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRules {
    rules: Vec<Rule>,
}

impl GroupRules {
    pub fn new(specs: &[GroupRuleSpec]) -> Result<Self, GroupRuleError> {
        let rules = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                Rule::new(spec).map_err(|reason| GroupRuleError {
                    position: i + 1,
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Refuses a rule over a column Plumm's table does not have
    /// (`columns`, as discovered at start or reload), naming the rule's
    /// position and listing the columns there are.
    pub fn check_columns(&self, columns: &[String]) -> Result<(), GroupRuleError> {
        let has = |c: &str| columns.iter().any(|k| k == c);
        for (i, rule) in self.rules.iter().enumerate() {
            let named = match &rule.target {
                Target::Name(t) => t
                    .columns()
                    .find(|c| !has(c))
                    .map(|c| format!("name uses '{{{c}}}'")),
                Target::Id(_) => None,
            };
            let when = rule
                .when
                .iter()
                .find(|(c, _)| !has(c))
                .map(|(c, _)| format!("when uses '{c}'"));
            if let Some(what) = named.or(when) {
                return Err(GroupRuleError {
                    position: i + 1,
                    reason: format!(
                        "{what}, which is not a Plumm users column; columns: {}",
                        columns.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Rule {
    fn new(spec: &GroupRuleSpec) -> Result<Self, String> {
        let target = match (&spec.group_id, &spec.name) {
            (None, None) => return Err("has neither group_id nor name; give exactly one".into()),
            (Some(_), Some(_)) => return Err("has both group_id and name; give exactly one".into()),
            (Some(id), None) => {
                if spec.company.is_none() {
                    return Err(format!(
                        "group_id '{id}' needs a company: an object id belongs to one tenant"
                    ));
                }
                let parsed = uuid::Uuid::try_parse(id.trim()).map_err(|_| {
                    format!("group_id '{id}' is not an Entra object id (a GUID like 00000000-0000-0000-0000-000000000000)")
                })?;
                Target::Id(parsed.hyphenated().to_string())
            }
            (None, Some(name)) => {
                let template = Template::parse("name", name).map_err(|e| match e {
                    MappingError::UnknownColumn {
                        column, columns, ..
                    } => format!("name uses '{{{column}}}', which is not a Plumm users column; columns: {columns}"),
                    other => other.to_string(),
                })?;
                if name.trim().is_empty() {
                    return Err("name is empty".into());
                }
                // Whether Plumm's table has the columns is checked at start
                // and on reload, when they are known (`check_columns`).
                Target::Name(template)
            }
        };
        let mut when = Vec::new();
        for (column, pattern) in &spec.when {
            if column.trim().is_empty() {
                return Err("when has an empty column name".into());
            }
            when.push((
                column.clone(),
                pattern.trim().to_lowercase().chars().collect(),
            ));
        }
        Ok(Self {
            company: spec.company.map(CompanyId),
            target,
            when,
        })
    }

    fn matches(&self, user: &PlummUser) -> bool {
        self.company.is_none_or(|c| c == user.company_id)
            && self.when.iter().all(|(column, pattern)| {
                let value = user.column(column).unwrap_or_default();
                let value: Vec<char> = value.trim().to_lowercase().chars().collect();
                wildcard(pattern, &value)
            })
    }
}

/// The groups a person belongs in: every rule that matches their row. A
/// name template that renders empty (its columns blank) names no group.
pub fn desired_groups(user: &PlummUser, rules: &GroupRules) -> BTreeSet<GroupTarget> {
    rules
        .rules
        .iter()
        .filter(|r| r.matches(user))
        .filter_map(|r| match &r.target {
            Target::Id(id) => Some(GroupTarget::Id(id.clone())),
            Target::Name(t) => t.render(user).map(GroupTarget::Name),
        })
        .collect()
}

/// The groups a person belongs in now: none while suspended with
/// `on_suspend_groups = "remove"`, else [`desired_groups`].
pub fn person_groups(
    user: &PlummUser,
    rules: &GroupRules,
    on_suspend: OnSuspendGroups,
    suspended: bool,
) -> BTreeSet<GroupTarget> {
    match (suspended, on_suspend) {
        (true, OnSuspendGroups::Remove) => BTreeSet::new(),
        _ => desired_groups(user, rules),
    }
}

impl GroupRules {
    /// Whether any rule applies to the company (its own, or a default).
    pub fn applies_to(&self, company: CompanyId) -> bool {
        self.rules
            .iter()
            .any(|r| r.company.is_none_or(|c| c == company))
    }

    /// The existing groups (by object id) the rules name for a company:
    /// managed, so a resync reads their members even when no one matches.
    pub fn group_ids(&self, company: CompanyId) -> BTreeSet<String> {
        self.rules
            .iter()
            .filter(|r| r.company == Some(company))
            .filter_map(|r| match &r.target {
                Target::Id(id) => Some(id.clone()),
                Target::Name(_) => None,
            })
            .collect()
    }
}

/// `*` matches any run of characters (none included); all else literally.
fn wildcard(pattern: &[char], value: &[char]) -> bool {
    let (mut p, mut v) = (0, 0);
    // Where the last `*` was, and the value position it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, v));
            p += 1;
        } else if p < pattern.len() && pattern[p] == value[v] {
            p += 1;
            v += 1;
        } else if let Some((sp, sv)) = star {
            p = sp + 1;
            v = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// The mailNickname of the group the daemon manages under `name`: the same
/// name always gives the same nickname, so a group created just before a
/// crash is found again by it instead of created twice. ASCII letters and
/// digits of the name (Graph refuses spaces and `@()\[]";:<>,`), then a
/// hash of the whole name (case folded), which keeps "R&D" and "RD" apart.
pub fn group_mail_nickname(name: &str) -> String {
    let folded = name.trim().to_lowercase();
    // FNV-1a, 32 bits: stable across builds and platforms, unlike std's hasher.
    let hash = folded.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let tail = format!("-{hash:08x}");
    let stem: String = folded
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(GROUP_NICKNAME_MAX - tail.len() - "plumm-".len())
        .collect();
    format!("plumm-{stem}{tail}")
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
