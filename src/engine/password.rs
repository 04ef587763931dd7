//! Initial passwords for created users. Never stored, logged or audited:
//! `forceChangePasswordNextSignIn` makes the person set their own, and
//! admins hand out access through Entra's own reset flows.
use rand::seq::SliceRandom;
use rand::Rng;
use secrecy::SecretString;

const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";
const SYMBOLS: &[u8] = b"!#$%&*+-=?@^_~";

/// 24 characters from a CSPRNG with every class present: well beyond
/// Entra's complexity rule (3 of 4 classes, 8 to 256 characters).
pub fn generate() -> SecretString {
    let mut rng = rand::thread_rng();
    let classes = [LOWER, UPPER, DIGITS, SYMBOLS];
    let all: Vec<u8> = classes.concat();
    let mut chars: Vec<u8> = classes
        .iter()
        .map(|c| c[rng.gen_range(0..c.len())])
        .collect();
    while chars.len() < 24 {
        chars.push(all[rng.gen_range(0..all.len())]);
    }
    chars.shuffle(&mut rng);
    SecretString::from(String::from_utf8_lossy(&chars).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn passwords_are_long_mixed_and_different() {
        let a = generate();
        let b = generate();
        let s = a.expose_secret();
        assert_eq!(s.len(), 24);
        assert!(s.bytes().any(|c| LOWER.contains(&c)));
        assert!(s.bytes().any(|c| UPPER.contains(&c)));
        assert!(s.bytes().any(|c| DIGITS.contains(&c)));
        assert!(s.bytes().any(|c| SYMBOLS.contains(&c)));
        assert_ne!(s, b.expose_secret());
        assert!(!format!("{a:?}").contains(s));
    }
}
