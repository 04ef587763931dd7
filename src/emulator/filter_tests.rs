//! The `$filter` parser and evaluator on sample values.

use super::*;

fn user(name: &str) -> FVal {
    match name {
        "mail" => FVal::Str(Some("O'Brien@Contoso.com".into())),
        "userPrincipalName" => FVal::Str(Some("obrien@contoso.com".into())),
        "accountEnabled" => FVal::Bool(true),
        "proxyAddresses" => FVal::List(vec!["SMTP:O'Brien@Contoso.com".into()]),
        _ => FVal::Str(None),
    }
}

fn run(f: &str, adv: bool) -> Result<bool, u16> {
    parse(f, adv, &USERS)
        .map(|e| eval(&e, &user))
        .map_err(|r| r.status)
}

#[test]
fn filters() {
    assert_eq!(run("mail eq 'o''brien@contoso.com'", false), Ok(true));
    assert_eq!(
        run(
            "Mail eq 'x' or userPrincipalName eq 'OBRIEN@contoso.com'",
            false
        ),
        Ok(true)
    );
    assert_eq!(
        run("mail eq 'x' and accountEnabled eq true", false),
        Ok(false)
    );
    assert_eq!(
        run(
            "(mail eq 'x' or employeeId eq null) and accountEnabled eq true",
            false
        ),
        Ok(true)
    );
    assert_eq!(run("id in ('a', 'b')", false), Ok(false));
    assert_eq!(run("startsWith(mail, 'o''b')", false), Ok(true));
    assert_eq!(
        run(
            "proxyAddresses/any(p:p eq 'smtp:o''brien@contoso.com')",
            false
        ),
        Ok(true)
    );
    assert_eq!(run("endsWith(mail,'contoso.com')", false), Err(400));
    assert_eq!(run("endsWith(mail,'contoso.com')", true), Ok(true));
    assert_eq!(run("endsWith(displayName,'x')", true), Err(400));
    assert_eq!(run("mail ne 'x'", false), Err(400));
    assert_eq!(run("not(mail eq 'x')", true), Ok(true));
    assert_eq!(run("foo eq 'x'", false), Err(400));
    assert_eq!(run("mail eq", false), Err(400));
    assert_eq!(run("mail eq 'unterminated", false), Err(400));
}
