//! `[[groups]]`: one table per membership rule, checked by the mapping
//! layer's [`GroupRules`], which reports a bad rule's position.
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::mapping::groups::{GroupRuleError, GroupRuleSpec, GroupRules};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    company: Option<i64>,
    group_id: Option<String>,
    name: Option<String>,
    #[serde(default)]
    when: BTreeMap<String, String>,
}

pub(super) fn validate(raw: Vec<RawGroup>) -> Result<GroupRules, GroupRuleError> {
    let specs: Vec<GroupRuleSpec> = raw
        .into_iter()
        .map(|r| GroupRuleSpec {
            company: r.company,
            group_id: r.group_id,
            name: r.name,
            when: r.when,
        })
        .collect();
    GroupRules::new(&specs)
}
