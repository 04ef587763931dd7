//! A phone number as Entra's `mobilePhone` and `businessPhones` should hold
//! it. Graph stores both as free text (resources/user), but what reads
//! them (the directory's people cards, Teams, authentication phone
//! numbers) expects a number: a value that is none ("n/a", an email pasted
//! into the phone field) is a Plumm mistake, caught here with the field
//! named, not written into the directory.

/// E.164 allows at most 15 digits; three is the shortest a service number has.
const DIGITS: std::ops::RangeInclusive<usize> = 3..=15;
const EXTENSION_DIGITS_MAX: usize = 10;
/// How an extension is introduced: `x12`, `ext 12`, `ext. 12`, `;ext=12`.
const EXTENSION_MARKERS: &[&str] = &[";ext=", "ext.", "ext", "x"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("has '{0}', which is not part of a phone number (digits, spaces and + - ( ) . only, an extension as 'x123')")]
    Character(char),
    #[error("has '+' after the start; only the country prefix starts with '+'")]
    Plus,
    #[error("has {0} digits, and a phone number has 3 to 15 (E.164)")]
    Digits(usize),
    #[error("has an extension that is not 1 to 10 digits")]
    Extension,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// Checks the number and keeps it as written (trimmed): Entra shows it
    /// as Plumm has it, so nothing is reformatted.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        let lower = trimmed.to_ascii_lowercase();
        let (number, extension) = match EXTENSION_MARKERS
            .iter()
            .find_map(|m| lower.find(m).map(|i| (i, m.len())))
        {
            Some((at, len)) => (&trimmed[..at], Some(trimmed[at + len..].trim())),
            None => (trimmed, None),
        };
        if let Some(c) = number
            .chars()
            .find(|c| !(c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.')))
        {
            return Err(PhoneError::Character(c));
        }
        if number.trim_start().chars().skip(1).any(|c| c == '+') {
            return Err(PhoneError::Plus);
        }
        let digits = number.chars().filter(char::is_ascii_digit).count();
        if !DIGITS.contains(&digits) {
            return Err(PhoneError::Digits(digits));
        }
        if let Some(ext) = extension {
            let all_digits = ext.chars().all(|c| c.is_ascii_digit());
            if ext.is_empty() || !all_digits || ext.len() > EXTENSION_DIGITS_MAX {
                return Err(PhoneError::Extension);
            }
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_people_write_them_parse_as_written() {
        for ok in [
            "+44 20 7946 0958",
            "(020) 7946-0958",
            "020.7946.0958",
            "+1 425 555 0100 x123",
            "+1 425 555 0100 ext. 7",
            "+14255550100;ext=42",
            "999",
        ] {
            assert_eq!(
                Phone::parse(ok).map(|p| p.as_str().to_string()),
                Ok(ok.to_string()),
                "{ok}"
            );
        }
    }

    #[test]
    fn what_is_not_a_number_is_refused_with_the_reason() {
        assert_eq!(Phone::parse("n/a"), Err(PhoneError::Character('n')));
        assert_eq!(
            Phone::parse("ada@contoso.com"),
            Err(PhoneError::Character('a'))
        );
        assert_eq!(Phone::parse("020 PLUMM"), Err(PhoneError::Character('P')));
        assert_eq!(Phone::parse("44+20 7946"), Err(PhoneError::Plus));
        assert_eq!(Phone::parse("12"), Err(PhoneError::Digits(2)));
        assert_eq!(
            Phone::parse("+44 1234 5678 9012 345"),
            Err(PhoneError::Digits(17))
        );
        assert_eq!(
            Phone::parse("+44 20 7946 0958 x"),
            Err(PhoneError::Extension)
        );
        assert_eq!(
            Phone::parse("+44 20 7946 0958 ext 12a"),
            Err(PhoneError::Extension)
        );
    }
}
