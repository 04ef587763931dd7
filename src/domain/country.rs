//! ISO 3166-1 alpha-2 country codes, which Entra's `usageLocation` takes
//! and nothing else.

/// The code, upper-cased, or why `v` is not one (an answer an admin can act
/// on: the United Kingdom is `GB`, not `UK`).
pub fn country_code(v: &str) -> Result<String, String> {
    let code = v.trim().to_ascii_uppercase();
    if code == "UK" {
        return Err("is not an ISO 3166-1 alpha-2 country code; the United Kingdom is 'GB'".into());
    }
    if code.len() == 2 && ISO_3166_ALPHA2.split(' ').any(|c| c == code) {
        Ok(code)
    } else {
        Err("is not a two-letter ISO 3166-1 alpha-2 country code such as 'GB' or 'FR'".into())
    }
}

/// The officially assigned ISO 3166-1 alpha-2 codes: usageLocation is "a
/// two-letter country code (ISO standard 3166)" (resources/user), and Graph
/// refuses any other, so a wrong code is caught here, naming Plumm's column.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";
