use std::fmt;

/// An email address as Plumm stores it, validated once.
///
/// Entra compares userPrincipalName and mail case-insensitively, so the
/// matching key is the lower-cased form; the original spelling is kept for
/// display and for what is written to Entra.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email {
    original: String,
    at: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("is empty")]
    Empty,
    #[error("has no '@'")]
    NoAt,
    #[error("has more than one '@'")]
    ManyAt,
    #[error("has nothing before the '@'")]
    EmptyLocal,
    #[error("has a domain '{0}' without a dot")]
    BadDomain(String),
    #[error("contains whitespace or control characters")]
    Whitespace,
    #[error("is longer than 254 characters")]
    TooLong,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > 254 {
            return Err(EmailError::TooLong);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::Whitespace);
        }
        let at = s.find('@').ok_or(EmailError::NoAt)?;
        if s[at + 1..].contains('@') {
            return Err(EmailError::ManyAt);
        }
        if at == 0 {
            return Err(EmailError::EmptyLocal);
        }
        let domain = &s[at + 1..];
        let labels_ok = domain.split('.').all(|l| !l.is_empty());
        if !domain.contains('.') || !labels_ok {
            return Err(EmailError::BadDomain(domain.to_string()));
        }
        Ok(Self {
            original: s.to_string(),
            at,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn local_part(&self) -> &str {
        &self.original[..self.at]
    }

    pub fn domain(&self) -> &str {
        &self.original[self.at + 1..]
    }

    /// The case-insensitive matching key.
    pub fn key(&self) -> String {
        self.original.to_lowercase()
    }

    pub fn same_as(&self, other: &str) -> bool {
        self.original.eq_ignore_ascii_case(other.trim())
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_an_ordinary_address_and_keeps_its_spelling() {
        let e = Email::parse(" Ada.Lovelace@Contoso.com ").unwrap();
        assert_eq!(e.as_str(), "Ada.Lovelace@Contoso.com");
        assert_eq!(e.local_part(), "Ada.Lovelace");
        assert_eq!(e.domain(), "Contoso.com");
        assert_eq!(e.key(), "ada.lovelace@contoso.com");
        assert!(e.same_as("ada.lovelace@CONTOSO.com"));
    }

    #[test]
    fn rejects_malformed_addresses_with_the_reason() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse("nobody"), Err(EmailError::NoAt));
        assert_eq!(Email::parse("a@b@c.com"), Err(EmailError::ManyAt));
        assert_eq!(Email::parse("@c.com"), Err(EmailError::EmptyLocal));
        assert_eq!(
            Email::parse("a@localhost"),
            Err(EmailError::BadDomain("localhost".into()))
        );
        assert_eq!(Email::parse("a b@c.com"), Err(EmailError::Whitespace));
        assert!(Email::parse("a@c..com").is_err());
    }
}
