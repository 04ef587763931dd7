//! Property validation for user writes.

/// Why a value was refused; mapped to Graph's messages by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Characters, shape or length.
    Value,
    /// UPN domain is not a verified domain of the tenant.
    UnverifiedDomain,
    /// Password does not meet the policy.
    PasswordComplexity,
}

/// UPN rules of https://learn.microsoft.com/entra/identity/authentication/concept-sspr-policy#username-policies
/// (also quoted by https://learn.microsoft.com/graph/api/user-post-users):
/// alias characters A-Z a-z 0-9 ' . - _ ! # ^ ~, no '.' right before '@',
/// at most 64 characters before '@', 48 after and 113 in total; the domain
/// must be one of the tenant's verified domains.
pub(crate) fn upn(value: &str, verified_domains: &[String]) -> Result<(), Invalid> {
    let Some((alias, domain)) = value.split_once('@') else {
        return Err(Invalid::Value);
    };
    if alias.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || alias.len() > 64
        || domain.len() > 48
        || value.len() > 113
        || alias.ends_with('.')
        || alias.starts_with('.')
    {
        return Err(Invalid::Value);
    }
    let alias_ok = alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c));
    let domain_ok = domain
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !alias_ok || !domain_ok {
        return Err(Invalid::Value);
    }
    if !verified_domains
        .iter()
        .any(|d| d.eq_ignore_ascii_case(domain))
    {
        return Err(Invalid::UnverifiedDomain);
    }
    Ok(())
}

/// mailNickname: at most 64 ASCII characters, none of @ ( ) \ [ ] " ; : < > ,
/// or space (https://learn.microsoft.com/graph/api/resources/user, mailNickname,
/// and the group naming rules it shares).
pub(crate) fn mail_nickname(value: &str) -> Result<(), Invalid> {
    if value.is_empty()
        || value.len() > 64
        || !value
            .chars()
            .all(|c| c.is_ascii_graphic() && !"@()\\[]\";:<>,".contains(c))
    {
        return Err(Invalid::Value);
    }
    Ok(())
}

/// An SMTP address: one '@', both parts present, printable ASCII, no spaces.
pub(crate) fn mail(value: &str) -> Result<(), Invalid> {
    match value.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && value.len() <= 256
                && value.chars().all(|c| c.is_ascii_graphic()) =>
        {
            Ok(())
        }
        _ => Err(Invalid::Value),
    }
}

/// Cloud password policy of
/// https://learn.microsoft.com/entra/identity/authentication/concept-sspr-policy#microsoft-entra-password-policies:
/// 8 to 256 characters, allowed characters only, and three of lower case,
/// upper case, digits and symbols (unless DisableStrongPassword is set).
pub(crate) fn password(value: &str, strong: bool) -> Result<(), Invalid> {
    let n = value.chars().count();
    if !(8..=256).contains(&n) {
        return Err(Invalid::PasswordComplexity);
    }
    const SYMBOLS: &str = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ";
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || SYMBOLS.contains(c))
    {
        return Err(Invalid::PasswordComplexity);
    }
    if strong {
        let classes = [
            value.chars().any(|c| c.is_ascii_lowercase()),
            value.chars().any(|c| c.is_ascii_uppercase()),
            value.chars().any(|c| c.is_ascii_digit()),
            value.chars().any(|c| SYMBOLS.contains(c)),
        ];
        if classes.iter().filter(|b| **b).count() < 3 {
            return Err(Invalid::PasswordComplexity);
        }
    }
    Ok(())
}

/// "A two-letter country code (ISO standard 3166)":
/// https://learn.microsoft.com/graph/api/resources/user (usageLocation).
pub(crate) fn usage_location(value: &str) -> Result<(), Invalid> {
    if value.len() == 2 && ISO_3166_ALPHA2.split(' ').any(|c| c == value) {
        Ok(())
    } else {
        Err(Invalid::Value)
    }
}

/// Maximum lengths from the user resource page
/// (https://learn.microsoft.com/graph/api/resources/user).
pub(crate) fn max_len(property: &str) -> Option<usize> {
    Some(match property {
        "displayName" => 256,
        "givenName" | "surname" | "department" | "companyName" => 64,
        "jobTitle" | "city" | "country" | "state" | "officeLocation" => 128,
        "employeeId" => 16,
        "postalCode" => 40,
        "streetAddress" => 1024,
        "mobilePhone" | "faxNumber" => 64,
        _ => return None,
    })
}

const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upn_rules() {
        let d = vec!["contoso.com".to_string()];
        assert_eq!(upn("a.b'c-d_e!f#g^h~i@Contoso.com", &d), Ok(()));
        assert_eq!(upn("a.@contoso.com", &d), Err(Invalid::Value));
        assert_eq!(upn("a b@contoso.com", &d), Err(Invalid::Value));
        assert_eq!(upn("a+b@contoso.com", &d), Err(Invalid::Value));
        assert_eq!(upn("ab@c@contoso.com", &d), Err(Invalid::Value));
        assert_eq!(upn("jos\u{e9}@contoso.com", &d), Err(Invalid::Value));
        assert_eq!(
            upn(&format!("{}@contoso.com", "a".repeat(65)), &d),
            Err(Invalid::Value)
        );
        assert_eq!(upn("ab@fabrikam.com", &d), Err(Invalid::UnverifiedDomain));
        assert_eq!(upn("nodomain", &d), Err(Invalid::Value));
    }

    #[test]
    fn other_rules() {
        assert!(mail_nickname("john.doe").is_ok());
        assert!(mail_nickname("john doe").is_err());
        assert!(mail_nickname("john@doe").is_err());
        assert!(password("xWwvJ]6NMw+bWH-d", true).is_ok());
        assert!(password("alllowercase1", true).is_err());
        assert!(password("Sh0rt!", true).is_err());
        assert!(password("alllowercase1", false).is_ok());
        assert!(usage_location("NL").is_ok());
        assert!(usage_location("nl").is_err());
        assert!(usage_location("XX").is_err());
        assert!(mail("a@b.com").is_ok());
        assert!(mail("a@b").is_err());
    }
}
