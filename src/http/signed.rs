//! Links Plumm's Store signs for the Connect and Disconnect buttons:
//! `company=ID&admin=EMAIL&exp=UNIX&sig=HEX`, where `sig` is the lowercase
//! hex HMAC-SHA256, under the shared key, of the exact bytes before `&sig`.
//! Signing the bytes as they stand (not re-encoded values) means both sides
//! never have to agree on an encoding: what Plumm signed is what is checked.
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::{CompanyId, Email};
use crate::http::StoreKey;

type HmacSha256 = Hmac<Sha256>;

/// What a valid link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedLink {
    pub company: CompanyId,
    /// The Plumm administrator who clicked.
    pub admin: Email,
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is incomplete or malformed: {0}")]
    Malformed(&'static str),
    #[error("the link's signature is not valid")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
    #[error("the link's expiry is further ahead than this server accepts")]
    TooFarAhead,
}

fn mac(key: &StoreKey) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key.bytes()).unwrap_or_else(|_| unreachable!())
}

/// The signed query string Plumm's Store puts behind the button (also used
/// by the demo and the tests). The email is percent-encoded the way
/// `encodeURIComponent` does it.
pub fn sign_query(key: &StoreKey, company: i64, admin: &str, exp: i64) -> String {
    let email: String = url::form_urlencoded::byte_serialize(admin.as_bytes()).collect();
    let signed = format!("company={company}&admin={email}&exp={exp}");
    format!("{signed}&sig={}", signature(key, &signed))
}

/// Lowercase hex HMAC-SHA256 of `signed` under `key`.
pub fn signature(key: &StoreKey, signed: &str) -> String {
    let mut m = mac(key);
    m.update(signed.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Checks `sig` (exactly 64 lowercase hex digits: one spelling per
/// signature) against the HMAC of `signed`, in constant time. Store links
/// and the admin API both go through here.
pub fn check_signature(key: &StoreKey, signed: &str, sig: &str) -> Result<(), LinkError> {
    if sig.len() != 64 || !sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(LinkError::Malformed(
            "sig must be 64 lowercase hex digits and come last",
        ));
    }
    let sig = hex::decode(sig).map_err(|_| LinkError::Malformed("sig is not hex"))?;
    let mut m = mac(key);
    m.update(signed.as_bytes());
    // `verify_slice` compares in constant time.
    m.verify_slice(&sig).map_err(|_| LinkError::BadSignature)
}

/// Checks a link's raw query string: signature first (in constant time),
/// then expiry, then the values.
pub fn verify(
    key: &StoreKey,
    raw_query: &str,
    now: i64,
    max_lifetime: Duration,
) -> Result<SignedLink, LinkError> {
    let (signed, sig) = raw_query
        .rsplit_once("&sig=")
        .ok_or(LinkError::Malformed("no sig parameter"))?;
    check_signature(key, signed, sig)?;

    let (mut company, mut admin, mut exp) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(signed.as_bytes()) {
        let slot = match k.as_ref() {
            "company" => &mut company,
            "admin" => &mut admin,
            "exp" => &mut exp,
            _ => return Err(LinkError::Malformed("unexpected parameter")),
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(LinkError::Malformed("repeated parameter"));
        }
    }
    let exp: i64 = exp
        .ok_or(LinkError::Malformed("no exp"))?
        .parse()
        .map_err(|_| LinkError::Malformed("exp is not a Unix time"))?;
    if exp <= now {
        return Err(LinkError::Expired);
    }
    if exp - now > max_lifetime.as_secs() as i64 {
        return Err(LinkError::TooFarAhead);
    }
    let company: i64 = company
        .ok_or(LinkError::Malformed("no company"))?
        .parse()
        .map_err(|_| LinkError::Malformed("company is not a number"))?;
    let admin = Email::parse(&admin.ok_or(LinkError::Malformed("no admin"))?)
        .map_err(|_| LinkError::Malformed("admin is not an email address"))?;
    Ok(SignedLink {
        company: CompanyId(company),
        admin,
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StoreKey {
        StoreKey::new("0123456789abcdef0123456789abcdef").unwrap()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_signed_link_round_trips_and_any_changed_byte_breaks_it() {
        let q = sign_query(&key(), 42, "ada+hr@contoso.com", 1_000_100);
        assert!(q.starts_with("company=42&admin=ada%2Bhr%40contoso.com&exp=1000100&sig="));
        let link = verify(&key(), &q, 1_000_000, HOUR).unwrap();
        assert_eq!(link.company, CompanyId(42));
        assert_eq!(link.admin.as_str(), "ada+hr@contoso.com");

        let tampered = q.replace("company=42", "company=43");
        assert_eq!(
            verify(&key(), &tampered, 1_000_000, HOUR),
            Err(LinkError::BadSignature)
        );
        let other_key = StoreKey::new("fedcba9876543210fedcba9876543210").unwrap();
        assert_eq!(
            verify(&other_key, &q, 1_000_000, HOUR),
            Err(LinkError::BadSignature)
        );
        let upper = format!("{}{}", &q[..q.len() - 64], q[q.len() - 64..].to_uppercase());
        assert!(matches!(
            verify(&key(), &upper, 1_000_000, HOUR),
            Err(LinkError::Malformed(_))
        ));
        assert!(matches!(
            verify(&key(), &format!("{q}&company=7"), 1_000_000, HOUR),
            Err(LinkError::Malformed(_))
        ));
    }

    #[test]
    fn expiry_is_checked_both_ways() {
        let q = sign_query(&key(), 1, "a@b.com", 1_000);
        assert_eq!(verify(&key(), &q, 1_000, HOUR), Err(LinkError::Expired));
        let far = sign_query(&key(), 1, "a@b.com", 1_000 + 7200);
        assert_eq!(
            verify(&key(), &far, 1_000, HOUR),
            Err(LinkError::TooFarAhead)
        );
    }

    #[test]
    fn the_readme_example_matches_an_independent_hmac() {
        // README: `printf 'company=42&admin=ada%40contoso.com&exp=1767225600' |
        //   openssl dgst -sha256 -hmac "$KEY"`
        let key =
            StoreKey::new("3f9a2c4e8b1d7f60a5c3e9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2\n")
                .unwrap();
        let signed = "company=42&admin=ada%40contoso.com&exp=1767225600";
        let expected = "bcdc17ccef0bb885fd17aa871322414f71540bee7306c1c70533c9d5aaf2bd03";
        assert_eq!(signature(&key, signed), expected);
        assert_eq!(
            sign_query(&key, 42, "ada@contoso.com", 1767225600),
            format!("{signed}&sig={expected}")
        );
        let link = verify(&key, &format!("{signed}&sig={expected}"), 1767225000, HOUR).unwrap();
        assert_eq!(link.company, CompanyId(42));
    }
}
