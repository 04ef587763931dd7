//! Bulk matching: list the tenant's users once, page by page (`$select`,
//! `$top=999`), and link every one whose UPN or mail is a Plumm user's
//! email. Cheaper than a lookup per user (one request per 999 users), and
//! memory stays bounded: one page at a time, matched against Plumm with
//! one query per page.
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use crate::domain::{CompanyId, EntraObjectId, PlummUserId, TenantId};
use crate::engine::retry::RetrySettings;
use crate::engine::retry::{send_with_retry, Target};
use crate::graph::{request, GraphClient, Sent};
use crate::mapping::Mapping;
use crate::pacing::Priority;
use crate::plan::Props;
use crate::store::{now_text, AuditRecord, Link, Outcome, PlummDb, StateDb, StoreError};
use crate::support::progress::{Progress, Update};

/// The properties read for matching and linking: the id and every managed one.
pub fn select_list(mapping: &Mapping) -> Vec<String> {
    let mut s: Vec<String> = [
        "id",
        "userPrincipalName",
        "mail",
        "mailNickname",
        "accountEnabled",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    s.extend(mapping.properties().map(String::from));
    s
}

/// The managed properties of a user as Graph listed it (every `select`
/// entry but `id`; absent ones are null, as Graph omits nulls).
pub fn listed_props<S: AsRef<str>>(user: &Value, select: &[S]) -> Props {
    select
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| *p != "id")
        .map(|p| (p.to_string(), user.get(p).cloned().unwrap_or(Value::Null)))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("listing the tenant's users failed: {0}")]
    Graph(String),
}

/// What a listing found.
#[derive(Debug, Default)]
pub struct Matched {
    /// Plumm users now linked (including those linked before).
    pub linked: HashSet<PlummUserId>,
    pub entra_users: usize,
    pub newly_linked: usize,
}

pub struct Matcher<'a> {
    pub graph: &'a GraphClient,
    pub state: &'a StateDb,
    /// Locked only between awaits: a SQLite connection is not `Sync`.
    pub plumm: &'a Mutex<PlummDb>,
    pub retry: &'a RetrySettings,
    pub mapping: &'a Mapping,
}

impl Matcher<'_> {
    /// Lists the tenant and links by email, reporting the users listed so
    /// far to `progress` after each page.
    pub async fn run(
        &self,
        company: CompanyId,
        tenant: &TenantId,
        progress: &dyn Progress,
    ) -> Result<Matched, MatchError> {
        let select = select_list(self.mapping);
        let mut out = Matched::default();
        let task = format!("connect company {company}");
        self.for_each_page(tenant, |page| {
            out.entra_users += page.len();
            self.match_page(company, tenant, page, &select, &mut out)?;
            progress.update(&Update {
                task: &task,
                stage: "listing the tenant",
                done: out.entra_users as u64,
                total: None,
                unit: "Entra users",
            });
            Ok(())
        })
        .await?;
        progress.finish(&format!(
            "{task}: listed {} Entra users; {} linked to Plumm users by email",
            out.entra_users,
            out.linked.len()
        ));
        Ok(out)
    }

    /// Lists the tenant's users (`$select` of [`select_list`], `$top=999`),
    /// handing each page to `f` before the next is fetched.
    pub async fn for_each_page(
        &self,
        tenant: &TenantId,
        f: impl FnMut(&[Value]) -> Result<(), MatchError>,
    ) -> Result<(), MatchError> {
        self.for_each_page_with(tenant, &[], f).await
    }

    /// [`Self::for_each_page`] with `extra` properties selected too: read
    /// from the page as Graph sent it, never part of what is planned or
    /// recorded as pushed (a resync's `licenseAssignmentStates`).
    pub async fn for_each_page_with(
        &self,
        tenant: &TenantId,
        extra: &[&str],
        mut f: impl FnMut(&[Value]) -> Result<(), MatchError>,
    ) -> Result<(), MatchError> {
        let select = select_list(self.mapping);
        let mut select_refs: Vec<&str> = select.iter().map(String::as_str).collect();
        select_refs.extend(extra);
        let mut next = Some(match self.mapping.manages_manager() {
            true => request::list_users_and_managers(&select_refs),
            false => request::list_users(&select_refs),
        });
        while let Some(req) = next.take() {
            let sent = self.fetch(tenant, &req).await?;
            let body = sent.reply.body.unwrap_or(Value::Null);
            let page = body
                .get("value")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            f(page)?;
            next =
                match body.get("@odata.nextLink").and_then(Value::as_str) {
                    Some(link) => Some(self.graph.next_page(link).ok_or_else(|| {
                        MatchError::Graph(format!("unexpected next link {link}"))
                    })?),
                    None => None,
                };
        }
        Ok(())
    }

    async fn fetch(
        &self,
        tenant: &TenantId,
        req: &request::GraphRequest,
    ) -> Result<Sent, MatchError> {
        let target = Target {
            tenant,
            priority: Priority::Bulk,
            retry_not_found: false,
        };
        send_with_retry(self.graph, self.retry, target, req, |e, wait, _| {
            tracing::info!(%tenant, "listing the tenant: {}; retrying in {wait:?}", e.summary());
        })
        .await
        .map(|(sent, _)| sent)
        .map_err(|(e, _)| MatchError::Graph(e.summary()))
    }

    fn match_page(
        &self,
        company: CompanyId,
        tenant: &TenantId,
        page: &[Value],
        select: &[String],
        out: &mut Matched,
    ) -> Result<(), StoreError> {
        let key = |u: &Value, p: &str| u.get(p).and_then(Value::as_str).map(str::to_lowercase);
        let keys: Vec<String> = page
            .iter()
            .flat_map(|u| [key(u, "userPrincipalName"), key(u, "mail")])
            .flatten()
            .collect();
        let plumm: HashMap<String, PlummUserId> = self
            .plumm
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .company_users_by_email(company, &keys)?
            .into_iter()
            .map(|u| (u.email.trim().to_lowercase(), u.id))
            .collect();
        for u in page {
            let Some(id) = u.get("id").and_then(Value::as_str) else {
                continue;
            };
            // UPN first, then mail: the order a single lookup uses.
            let (user, by) = match (
                key(u, "userPrincipalName").and_then(|k| plumm.get(&k)),
                key(u, "mail").and_then(|k| plumm.get(&k)),
            ) {
                (Some(p), _) => (*p, "userPrincipalName"),
                (None, Some(p)) => (*p, "mail"),
                (None, None) => continue,
            };
            let entra_id = EntraObjectId(id.to_string());
            if self.state.link(user)?.is_some() {
                out.linked.insert(user);
                continue;
            }
            if self.state.linked_user(tenant, &entra_id)?.is_some() {
                // Held by another Plumm user: the worker parks this one with the reason.
                continue;
            }
            let props = listed_props(u, select);
            self.state.save_link(&Link {
                user,
                company,
                tenant: tenant.clone(),
                entra_id: entra_id.clone(),
                pushed: props,
                upn_fallback: false,
                created_by_us: false,
                linked_at: now_text(),
                verify_first: false,
                revoke_owed: false,
            })?;
            let mut r = AuditRecord::new("link", Outcome::Ok);
            r.company = Some(company);
            r.tenant = Some(tenant.clone());
            r.user = Some(user);
            r.email = key(u, "mail").or_else(|| key(u, "userPrincipalName"));
            r.detail = Some(format!(
                "linked to existing Entra user {id} (matched by {by}, listing the tenant)"
            ));
            self.state.append_audit(&r)?;
            out.linked.insert(user);
            out.newly_linked += 1;
        }
        Ok(())
    }
}
