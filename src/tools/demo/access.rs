//! Access in the demo: each tenant's existing "All staff" group, the
//! `[[groups]]` rules an admin writes after looking its object id up in
//! Entra, and how many writes the memberships cost.
use anyhow::Context as _;
use serde_json::Value;

use super::people::{CONTOSO, CONTOSO_TENANT, FABRIKAM, FABRIKAM_TENANT};
use crate::configuration::Settings;
use crate::emulator::{EmulatorControl, SeedGroup};
use crate::tools::world::World;

/// What the demo's app is granted: users (restore included), group
/// membership, and creating the groups the rules name.
pub(super) fn permissions() -> Vec<String> {
    [
        "User.ReadWrite.All",
        "GroupMember.ReadWrite.All",
        "Group.Create",
    ]
    .map(String::from)
    .into()
}

/// The rules by name: a group per department, and one for team leads.
/// Everyone also joins their company's existing "All staff" group (by id,
/// added once the groups exist).
pub(super) const NAMED_RULES: &str = "
[[groups]]
name = \"Dept {department}\"

[[groups]]
name = \"Managers\"
when = { role = \"*Lead*\" }
";

/// Seeds what Entra already has for access (each company's "All staff",
/// Megan in it and in a group Plumm does not manage), writes the rules
/// naming those groups into the configuration and loads it again.
pub(super) fn seed_groups(world: &mut World, megan: &str) -> anyhow::Result<()> {
    let contoso = world.control.seed_group(
        CONTOSO_TENANT,
        SeedGroup {
            display_name: "All staff".into(),
            members: vec![megan.into()],
            ..SeedGroup::default()
        },
    )?;
    world.control.seed_group(
        CONTOSO_TENANT,
        SeedGroup {
            display_name: "Marketing newsletter".into(),
            members: vec![megan.into()],
            ..SeedGroup::default()
        },
    )?;
    let fabrikam = world.control.seed_group(
        FABRIKAM_TENANT,
        SeedGroup {
            display_name: "All staff".into(),
            ..SeedGroup::default()
        },
    )?;
    let mut text = world.config_text()?;
    for (company, id) in [(CONTOSO, &contoso), (FABRIKAM, &fabrikam)] {
        text.push_str(&format!(
            "\n[[groups]]\ncompany = {company}\ngroup_id = \"{id}\"\n"
        ));
    }
    world.write_config(&text)?;
    world.settings = Settings::load(&world.config_path)
        .with_context(|| format!("loading {}", world.config_path.display()))?;
    println!(
        "access     existing \"All staff\" per company (Contoso {contoso}, Fabrikam {fabrikam}); \
         managed \"Dept {{department}}\" and \"Managers\" (role *Lead*)"
    );
    Ok(())
}

/// Names for the ids the audit gives: the groups Entra had before the
/// daemon came (rules name them by id), and every user, for managers.
pub(super) struct Names {
    groups: Vec<(String, String)>,
    users: Vec<(String, String)>,
}

impl Names {
    pub(super) fn now(control: &EmulatorControl, tenants: &[&str]) -> Self {
        let groups = tenants
            .iter()
            .flat_map(|t| control.groups(t))
            .filter(|g| !g.created_via_graph)
            .map(|g| (g.id, g.display_name))
            .collect();
        let users = tenants
            .iter()
            .flat_map(|t| control.users(t))
            .map(|u| (u.id, u.user_principal_name))
            .collect();
        Self { groups, users }
    }

    /// An audit row's detail with names beside the ids.
    pub(super) fn label(&self, action: &str, detail: String) -> String {
        let detail = self.groups.iter().fold(detail, |d, (id, name)| {
            d.replace(&format!("group {id}"), &format!("group \"{name}\" ({id})"))
        });
        if action != "manager" {
            return detail;
        }
        self.users.iter().fold(detail, |d, (id, upn)| {
            d.replace(&format!("Entra user {id}"), upn)
        })
    }
}

/// What the membership writes since request `after` in `tenants` did.
pub(super) struct MembershipWrites {
    pub writes: usize,
    pub members: usize,
    pub groups: usize,
    /// The most members one write carried.
    pub fullest: usize,
}

/// Counts the membership writes since request `after`: a PATCH with
/// `members@odata.bind` adds up to 20, a POST to `members/$ref` one.
pub(super) fn membership_writes(
    control: &EmulatorControl,
    tenants: &[&str],
    after: u64,
) -> MembershipWrites {
    let (mut writes, mut members, mut fullest) = (0, 0, 0);
    let mut groups = std::collections::HashSet::new();
    for r in tenants
        .iter()
        .flat_map(|t| control.requests_for(t))
        .filter(|r| r.seq > after && r.path.starts_with("/v1.0/groups/") && r.status < 300)
    {
        let bound = r
            .body
            .as_ref()
            .and_then(|b| b.get("members@odata.bind"))
            .and_then(Value::as_array)
            .map(Vec::len);
        let added = match (r.method.as_str(), bound) {
            ("PATCH", Some(n)) => n,
            ("POST", _) if r.path.ends_with("/members/$ref") => 1,
            _ => continue,
        };
        (writes, members) = (writes + 1, members + added);
        fullest = fullest.max(added);
        groups.insert(r.path.split('/').nth(3).unwrap_or_default().to_lowercase());
    }
    MembershipWrites {
        writes,
        members,
        groups: groups.len(),
        fullest,
    }
}
