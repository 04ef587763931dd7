//! Whether the app may still write in a tenant. A 403 on a write is either
//! about the account (an administrator, whom the app may not change without
//! a privileged role) or about the app (an admin removed its write
//! permission). Graph answers both with the same 403
//! Authorization_RequestDenied, and a token keeps the roles it was issued
//! with until it expires (learn.microsoft.com/security/zero-trust/develop/
//! secure-with-cae), so the daemon asks with a fresh token: a write that
//! changes nothing (`PATCH {}`) to other accounts it manages in the tenant.
use std::time::Duration;

use crate::domain::{CompanyId, PlummUserId, TenantId};
use crate::graph::{request, CallError, GraphClient, TokenError};
use crate::pacing::Priority;
use crate::store::{since, StateDb, StoreError};

/// Accounts asked at most: one may be an administrator too.
const WITNESSES: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteAccess {
    /// A write to another account went through: the app may write.
    Allowed,
    /// Every account asked refused the write, or no token was issued.
    Refused(String),
    /// No other account of the tenant to ask.
    NoWitness,
    /// The check itself got no verdict (5xx, network): not known now.
    Unknown(String),
}

/// Who is asked, and for how long after a link a 404 only means Graph
/// has not replicated the account yet.
pub struct Witnesses<'a> {
    pub company: CompanyId,
    pub tenant: &'a TenantId,
    /// Never the account the 403 was about.
    pub except: Option<PlummUserId>,
    pub replication_timeout: Duration,
}

/// Asks up to three other accounts of the company.
pub async fn check(
    graph: &GraphClient,
    state: &StateDb,
    who: Witnesses<'_>,
) -> Result<WriteAccess, StoreError> {
    let witnesses = state.write_witnesses(who.company, who.except, WITNESSES)?;
    let mut refused = None;
    let mut unknown = None;
    for (w, linked_at) in &witnesses {
        let answer = graph
            .send(who.tenant, &request::write_check(w), Priority::Realtime)
            .await;
        match answer {
            Ok(sent) if sent.reply.is_success() => return Ok(WriteAccess::Allowed),
            // Not replicated yet: no verdict from this one for now.
            Ok(sent)
                if sent.reply.status == 404
                    && since(linked_at).is_some_and(|age| age < who.replication_timeout) =>
            {
                unknown = Some(format!("HTTP 404: {w} is not replicated yet"));
            }
            // Deleted by hand meanwhile: says nothing; ask the next one.
            Ok(sent) if sent.reply.status == 404 => {}
            Ok(sent) => {
                let e = sent.reply.error().unwrap_or_default();
                let seen = format!("HTTP {} {}", sent.reply.status, e.code);
                if sent.reply.status == 403 || sent.reply.status == 401 {
                    refused = Some(seen);
                } else {
                    unknown = Some(seen);
                }
            }
            Err(e @ CallError::Token(TokenError::Refused { .. })) => {
                return Ok(WriteAccess::Refused(e.to_string()))
            }
            Err(e) => unknown = Some(e.to_string()),
        }
    }
    Ok(match (unknown, refused) {
        (Some(seen), _) => WriteAccess::Unknown(seen),
        (None, Some(seen)) => WriteAccess::Refused(seen),
        (None, None) => WriteAccess::NoWitness,
    })
}
