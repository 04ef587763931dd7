//! Why a connect did not complete, in three forms: a stable `reason` code
//! for Plumm's Store, a sentence the Plumm admin can act on (never naming
//! another company), and a detail for the audit log and the operator.
use crate::domain::{CompanyId, TenantId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Cancel was chosen on Microsoft's page (AADSTS65004).
    Declined {
        code: Option<String>,
    },
    /// The account used cannot grant tenant-wide consent, or belongs to
    /// another organization.
    WrongAccount {
        code: Option<String>,
        detail: String,
    },
    /// The company is already connected to a different tenant.
    OtherTenant {
        tenant: TenantId,
        current: TenantId,
    },
    /// The tenant is connected to another company.
    TenantInUse {
        tenant: TenantId,
        other: CompanyId,
    },
    /// Consent was granted but is not effective yet.
    ConsentPending {
        tenant: TenantId,
        last: String,
    },
    /// Microsoft refused Plumm's own app credentials.
    AppRefused {
        tenant: TenantId,
        why: String,
    },
    /// Another error Microsoft reported.
    Microsoft {
        code: Option<String>,
        detail: String,
    },
    /// The answer was not a consent answer at all.
    InvalidResponse,
    Internal(String),
}

/// The AADSTS number at the start of an error description, if any.
fn aadsts(description: &str) -> Option<String> {
    let rest = description.trim_start().strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("AADSTS{digits}"))
}

/// Maps the `error` / `error_description` of a consent redirect
/// (https://learn.microsoft.com/entra/identity-platform/v2-admin-consent,
/// codes from https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
pub(crate) fn failure_from_microsoft(error: &str, description: &str) -> Failure {
    let code = aadsts(description);
    let first_line = description.lines().next().unwrap_or_default().trim();
    match code.as_deref() {
        Some("AADSTS65004") => Failure::Declined { code },
        // 90093/90094: the signed-in user cannot grant these permissions
        // (not an admin); 50020/50034: the account is not in that
        // directory / does not exist.
        Some("AADSTS90093" | "AADSTS90094" | "AADSTS50020" | "AADSTS50034") => {
            Failure::WrongAccount {
                code,
                detail: first_line.to_string(),
            }
        }
        None if error == "access_denied" => Failure::Declined { code: None },
        _ => Failure::Microsoft {
            code,
            detail: format!("{error}: {first_line}"),
        },
    }
}

impl Failure {
    /// The `reason=` of the Store's return URL.
    pub(super) fn reason(&self) -> &'static str {
        match self {
            Failure::Declined { .. } => "declined",
            Failure::WrongAccount { .. } | Failure::OtherTenant { .. } => "wrong_account",
            Failure::TenantInUse { .. } => "tenant_in_use",
            Failure::ConsentPending { .. } => "consent_pending",
            Failure::AppRefused { .. } => "app_refused",
            Failure::Microsoft { .. } => "microsoft_error",
            Failure::InvalidResponse => "invalid_response",
            Failure::Internal(_) => "internal_error",
        }
    }

    /// For the Plumm admin (shown by the Store): what to do next.
    pub(super) fn message(&self) -> String {
        match self {
            Failure::Declined { .. } => "The permissions were not granted, so nothing was \
                connected. Click Connect again and choose Accept to start syncing."
                .into(),
            Failure::WrongAccount { .. } => "The Microsoft account used cannot grant these \
                permissions for its organization. Click Connect again and sign in with a \
                Global Administrator or Privileged Role Administrator of your Microsoft Entra \
                tenant."
                .into(),
            Failure::OtherTenant { .. } => "This company is already connected to a different \
                Microsoft Entra tenant. Sign in with an administrator of that tenant, or \
                disconnect it first and then connect the new one."
                .into(),
            Failure::TenantInUse { .. } => "This Microsoft Entra tenant is already connected \
                to another Plumm company. A tenant can sync with one company only: disconnect \
                it there first, or sign in with an administrator of your own tenant."
                .into(),
            Failure::ConsentPending { .. } => "Microsoft has recorded the consent but is not \
                applying it yet; this usually takes a minute. Wait a minute, then click \
                Connect again."
                .into(),
            Failure::AppRefused { .. } => "Microsoft refused Plumm's own app credentials. \
                Nothing is wrong on your side: contact Plumm support."
                .into(),
            Failure::Microsoft { code, .. } => format!(
                "Microsoft reported an error{}. Click Connect again; if it repeats, contact \
                 Plumm support with this code.",
                code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
            ),
            Failure::InvalidResponse => "The answer from Microsoft was incomplete. Click \
                Connect again."
                .into(),
            Failure::Internal(_) => "Plumm could not record the connection. Try again in a \
                minute; if it keeps failing, contact Plumm support."
                .into(),
        }
    }

    /// For the audit log and the operator's logs.
    pub(super) fn detail(&self) -> String {
        match self {
            Failure::Declined { code } => format!(
                "the admin declined consent{}",
                code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
            ),
            Failure::WrongAccount { detail, .. } => {
                format!("the account could not grant consent: {detail}")
            }
            Failure::OtherTenant { tenant, current } => format!(
                "consent came from tenant {tenant} but the company is connected to {current}"
            ),
            Failure::TenantInUse { tenant, other } => {
                format!("tenant {tenant} is already connected to company {other}")
            }
            Failure::ConsentPending { tenant, last } => {
                format!("consent for tenant {tenant} not effective in time; last answer: {last}")
            }
            Failure::AppRefused { tenant, why } => {
                format!("the app's credentials were refused for tenant {tenant}: {why}")
            }
            Failure::Microsoft { detail, .. } => format!("Microsoft reported: {detail}"),
            Failure::InvalidResponse => {
                "the callback had neither admin_consent=True with a tenant nor an error".into()
            }
            Failure::Internal(e) => format!("internal error: {e}"),
        }
    }

    pub(super) fn tenant(&self) -> Option<&TenantId> {
        match self {
            Failure::OtherTenant { tenant, .. }
            | Failure::TenantInUse { tenant, .. }
            | Failure::ConsentPending { tenant, .. }
            | Failure::AppRefused { tenant, .. } => Some(tenant),
            _ => None,
        }
    }

    pub(super) fn microsoft_code(&self) -> Option<String> {
        match self {
            Failure::Declined { code }
            | Failure::WrongAccount { code, .. }
            | Failure::Microsoft { code, .. } => code.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsoft_errors_map_to_reasons_an_admin_can_act_on() {
        let declined = failure_from_microsoft(
            "access_denied",
            "AADSTS65004: User declined to consent to access the app.\r\nTrace ID: x",
        );
        assert_eq!(declined.reason(), "declined");
        assert_eq!(declined.microsoft_code().as_deref(), Some("AADSTS65004"));
        let non_admin = failure_from_microsoft("access_denied", "AADSTS90094: needs admin");
        assert_eq!(non_admin.reason(), "wrong_account");
        assert_eq!(
            failure_from_microsoft("server_error", "AADSTS90033: busy").reason(),
            "microsoft_error"
        );
        assert_eq!(
            failure_from_microsoft("access_denied", "").reason(),
            "declined"
        );
    }
}
