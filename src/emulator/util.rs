//! Small helpers: ids, percent-decoding, base64, redaction, formatting.

use serde_json::Value;

pub(crate) fn new_guid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

pub(crate) fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Decodes `%XX` escapes; invalid escapes are kept verbatim.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Standard base64 (with or without padding), for HTTP Basic credentials.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// Replaces `passwordProfile.password` anywhere in the value by "***".
pub(crate) fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k.eq_ignore_ascii_case("passwordProfile") {
                    if let Value::Object(pp) = child {
                        for (pk, pv) in pp.iter_mut() {
                            if pk.eq_ignore_ascii_case("password") {
                                *pv = Value::String("***".into());
                            }
                        }
                    }
                } else {
                    redact(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Seconds with up to three decimals and no trailing zeros ("2", "0.2", "1.125").
pub(crate) fn format_seconds(secs: f64) -> String {
    let ms = (secs.max(0.0) * 1000.0).ceil() as u64;
    let ms = ms.max(1);
    let (whole, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    let s = format!("{whole}.{frac:03}");
    s.trim_end_matches('0').to_string()
}

pub(crate) fn graph_date(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(percent_decode("a%40b.com"), "a@b.com");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(
            base64_decode("YWJjOmRlZg==").as_deref(),
            Some(&b"abc:def"[..])
        );
        assert_eq!(format_seconds(0.2), "0.2");
        assert_eq!(format_seconds(2.0), "2");
        assert_eq!(format_seconds(1.1251), "1.126");
    }

    #[test]
    fn redacts_password() {
        let mut v = serde_json::json!({"passwordProfile": {"password": "x", "forceChangePasswordNextSignIn": true}, "a": [{"passwordProfile": {"password": "y"}}]});
        redact(&mut v);
        assert_eq!(v["passwordProfile"]["password"], "***");
        assert_eq!(v["a"][0]["passwordProfile"]["password"], "***");
        assert_eq!(v["passwordProfile"]["forceChangePasswordNextSignIn"], true);
    }
}
