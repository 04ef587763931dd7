//! The identity properties Graph derives a user's sign-in from: the UPN
//! and mailNickname, built from the email and checked against Graph's rules.
use super::UpnSource;
use crate::domain::Email;

/// UPN alias characters Graph allows (user-post-users, userPrincipalName).
const UPN_ALIAS_SPECIALS: &[char] = &['\'', '.', '-', '_', '!', '#', '^', '~'];
const UPN_ALIAS_MAX: usize = 64;
const UPN_DOMAIN_MAX: usize = 48;
const MAIL_NICKNAME_MAX: usize = 64;

/// alias@domain, checked against Graph's rules for userPrincipalName
/// (learn.microsoft.com/graph/api/user-post-users; resources/user).
pub(super) fn principal_name(email: &Email, upn: UpnSource<'_>) -> Result<String, String> {
    let alias = email.local_part();
    let domain = match upn {
        UpnSource::EmailDomain => email.domain(),
        UpnSource::Fallback(d) => d,
    };
    if let Some(bad) = alias
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || UPN_ALIAS_SPECIALS.contains(c)))
    {
        return Err(format!(
            "has '{bad}' before the '@', which Entra does not allow in a user name \
             (letters, digits and ' . - _ ! # ^ ~ only); change the email in Plumm"
        ));
    }
    if alias.starts_with('.') || alias.ends_with('.') {
        return Err("starts or ends with '.' before the '@', which Entra does not allow; change the email in Plumm".into());
    }
    if alias.len() > UPN_ALIAS_MAX {
        return Err(format!(
            "has more than {UPN_ALIAS_MAX} characters before the '@'"
        ));
    }
    if domain.len() > UPN_DOMAIN_MAX {
        return Err(format!(
            "has a domain longer than {UPN_DOMAIN_MAX} characters"
        ));
    }
    Ok(format!("{alias}@{domain}"))
}

/// A mailNickname Graph accepts: ASCII, none of @()\[]";:<>, space or ','
/// (resources/user, mailNickname), at most 64 characters.
pub(super) fn mail_nickname(email: &Email, id: i64) -> String {
    let nick: String = email
        .local_part()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(MAIL_NICKNAME_MAX)
        .collect();
    let nick = nick.trim_matches('.').to_string();
    if nick.is_empty() {
        format!("user{id}")
    } else {
        nick
    }
}
