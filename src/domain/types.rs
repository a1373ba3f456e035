//! Value types that parse: a phone number, a channel, a campaign state. Everything the shell
//! stores as text comes back through one of these `parse` functions, so a bad value is refused
//! at the edge with the field it came from, never deep inside a campaign.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a patient is reached. Stored as text (`sms`, `whatsapp`, `call`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Whatsapp,
    Call,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::Whatsapp, Channel::Call];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
            Channel::Call => "call",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sms" => Some(Channel::Sms),
            "whatsapp" | "wa" => Some(Channel::Whatsapp),
            "call" | "voice" => Some(Channel::Call),
            _ => None,
        }
    }

    pub fn is_message(self) -> bool {
        !matches!(self, Channel::Call)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The life of one campaign (one appointment version). Stored as text with the same set in a
/// SQL `CHECK` (see `migrations/*/20261122000001_core.sql`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Created by the planner; the first step is queued for the next allowed instant.
    /// Moved on by the step falling due (to `awaiting_reply`) or by an upstream change.
    Scheduled,
    /// A message or call went out; waiting for a reply until the next step falls due.
    AwaitingReply,
    /// The patient will come; written to the agenda, no further touch.
    Confirmed,
    /// The patient will not come; the slot is released in the agenda.
    Cancelled,
    /// The patient wants another date; a secretary calls back.
    RescheduleRequested,
    /// Question, urgent, unclear or wrong person: a secretary reads it first.
    NeedsHuman,
    /// Every step was tried without an answer before the give-up deadline.
    Unreachable,
    /// The patient asked to stop messages.
    OptedOut,
    /// No usable number, or the provider says the number does not exist.
    InvalidContact,
    /// The appointment started, or changed upstream and a new campaign replaced this one.
    Expired,
    /// The centre cancelled the appointment first.
    CancelledUpstream,
}

impl CampaignState {
    pub const ALL: [CampaignState; 11] = [
        CampaignState::Scheduled,
        CampaignState::AwaitingReply,
        CampaignState::Confirmed,
        CampaignState::Cancelled,
        CampaignState::RescheduleRequested,
        CampaignState::NeedsHuman,
        CampaignState::Unreachable,
        CampaignState::OptedOut,
        CampaignState::InvalidContact,
        CampaignState::Expired,
        CampaignState::CancelledUpstream,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Scheduled => "scheduled",
            CampaignState::AwaitingReply => "awaiting_reply",
            CampaignState::Confirmed => "confirmed",
            CampaignState::Cancelled => "cancelled",
            CampaignState::RescheduleRequested => "reschedule_requested",
            CampaignState::NeedsHuman => "needs_human",
            CampaignState::Unreachable => "unreachable",
            CampaignState::OptedOut => "opted_out",
            CampaignState::InvalidContact => "invalid_contact",
            CampaignState::Expired => "expired",
            CampaignState::CancelledUpstream => "cancelled_upstream",
        }
    }

    pub fn parse(s: &str) -> Option<CampaignState> {
        CampaignState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Active campaigns may still send; the others only react to late replies.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            CampaignState::Scheduled | CampaignState::AwaitingReply
        )
    }
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phone number in E.164 (`+33612345678`). `Display` masks all but the country code and the
/// last two digits, so a number can be logged; `as_e164` is for the provider and the database.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// French national numbering: the overseas departments use their own country codes; a national
/// number `0XYZ…` is mapped by its prefix (ARCEP plan).
const OVERSEAS_PREFIXES: &[(&str, &str)] = &[
    ("0262", "+262"),
    ("0263", "+262"),
    ("0692", "+262"),
    ("0693", "+262"),
    ("0269", "+262"),
    ("0639", "+262"),
    ("0590", "+590"),
    ("0690", "+590"),
    ("0691", "+590"),
    ("0596", "+596"),
    ("0696", "+596"),
    ("0697", "+596"),
    ("0594", "+594"),
    ("0694", "+594"),
];

impl PhoneNumber {
    /// Accepts E.164 (`+33 6 12 34 56 78`, `0033…`) or a French national number (`06 12 34 56 78`,
    /// overseas prefixes mapped to +262/+590/+594/+596). Spaces, dots, dashes and brackets are
    /// ignored. The error says what is wrong without echoing the number.
    pub fn parse(raw: &str) -> Result<PhoneNumber, String> {
        let mut digits = String::with_capacity(16);
        let mut plus = false;
        for (i, c) in raw.trim().chars().enumerate() {
            match c {
                '+' if i == 0 => plus = true,
                '0'..='9' => digits.push(c),
                ' ' | '.' | '-' | '(' | ')' | '\u{a0}' => {}
                _ => return Err("contains a character that is not a digit".into()),
            }
        }
        if digits.is_empty() {
            return Err("is empty".into());
        }
        let e164 = if plus {
            format!("+{digits}")
        } else if let Some(rest) = digits.strip_prefix("00") {
            format!("+{rest}")
        } else if digits.len() == 10 && digits.starts_with('0') {
            match OVERSEAS_PREFIXES
                .iter()
                .find(|(prefix, _)| digits.starts_with(prefix))
            {
                Some((_, cc)) => format!("{cc}{}", &digits[1..]),
                None => format!("+33{}", &digits[1..]),
            }
        } else {
            return Err("is neither E.164 (+33…) nor a 10-digit French number".into());
        };
        let n = e164.len() - 1;
        if !(8..=15).contains(&n) || e164[1..].starts_with('0') {
            return Err("has the wrong length for E.164".into());
        }
        if e164.starts_with("+33") && n != 11 {
            return Err("has the wrong length for a French number".into());
        }
        Ok(PhoneNumber(e164))
    }

    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// Whether the number can receive SMS and WhatsApp: French and overseas mobile ranges.
    /// Unknown countries are assumed mobile (the provider's 30006 answer corrects it).
    pub fn is_mobile(&self) -> bool {
        let n = &self.0;
        if let Some(rest) = n.strip_prefix("+33") {
            return rest.starts_with('6') || rest.starts_with('7');
        }
        for (cc, mobile) in [
            ("+262", &["692", "693", "639"][..]),
            ("+590", &["690", "691"][..]),
            ("+596", &["696", "697"][..]),
            ("+594", &["694"][..]),
        ] {
            if let Some(rest) = n.strip_prefix(cc) {
                return mobile.iter().any(|m| rest.starts_with(m));
            }
        }
        true
    }

    /// The masked form used in logs and in the admin API: `+336******78`.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

/// Masks any phone-like string for logs: keeps a short prefix and the last two digits.
pub fn mask_phone(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let keep_head = if raw.starts_with('+') { 4 } else { 2 };
    let keep_head = keep_head.min(chars.len() - 2);
    let mut out: String = chars[..keep_head].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - keep_head - 2));
    out.extend(&chars[chars.len() - 2..]);
    out
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl TryFrom<String> for Channel {
    type Error = String;
    fn try_from(s: String) -> Result<Channel, String> {
        Channel::parse(&s).ok_or_else(|| format!("unknown channel '{s}'"))
    }
}

impl TryFrom<String> for CampaignState {
    type Error = String;
    fn try_from(s: String) -> Result<CampaignState, String> {
        CampaignState::parse(&s).ok_or_else(|| format!("unknown campaign state '{s}'"))
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PhoneNumber::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> String {
        value.0
    }
}

/// An identifier typed by the centre (site id, external appointment id, exam code): non-empty,
/// at most 64 characters, letters, digits and `-_.:/` only, so it is safe in URLs and logs.
pub fn parse_identifier(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.len() > 64 {
        return Err("is longer than 64 characters".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.:/".contains(*c)))
    {
        return Err(format!(
            "contains '{}' (allowed: letters, digits, - _ . : /)",
            c.escape_debug()
        ));
    }
    Ok(s.to_string())
}

/// A checked appointment, ready to write.
#[derive(Debug, Clone)]
pub struct Appointment {
    pub external_id: String,
    pub site_id: String,
    pub exam_code: String,
    pub starts_at: DateTime<Utc>,
    pub duration_min: u32,
    pub patient_name: String,
    pub phone: Option<PhoneNumber>,
    pub locale: String,
    pub channel: Channel,
    pub cancelled: bool,
    /// The external agenda's resource (JSON) and version, for write-backs (FHIR).
    pub source: Option<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_french_mobile_written_nationally_becomes_e164() {
        let p = PhoneNumber::parse("06 12 34 56 78").unwrap();
        assert_eq!(p.as_e164(), "+33612345678");
        assert!(p.is_mobile());
    }

    #[test]
    fn a_reunion_mobile_gets_the_262_country_code() {
        let p = PhoneNumber::parse("0692 12 34 56").unwrap();
        assert_eq!(p.as_e164(), "+262692123456");
        assert!(p.is_mobile());
    }

    #[test]
    fn a_martinique_landline_is_not_mobile() {
        let p = PhoneNumber::parse("0596 12 34 56").unwrap();
        assert_eq!(p.as_e164(), "+596596123456");
        assert!(!p.is_mobile());
    }

    #[test]
    fn a_paris_landline_is_not_mobile() {
        assert!(!PhoneNumber::parse("+33 1 42 00 00 00").unwrap().is_mobile());
    }

    #[test]
    fn display_never_shows_the_middle_digits() {
        let p = PhoneNumber::parse("+33612345678").unwrap();
        assert_eq!(p.to_string(), "+336******78");
        assert!(!format!("{p:?}").contains("1234"));
    }

    #[test]
    fn garbage_is_refused_without_echoing_it() {
        let err = PhoneNumber::parse("06 12 ab").unwrap_err();
        assert!(!err.contains("06"));
        assert!(PhoneNumber::parse("").is_err());
        assert!(PhoneNumber::parse("061234").is_err());
        assert!(PhoneNumber::parse("+336123456789999").is_err());
    }

    #[test]
    fn states_round_trip_through_text() {
        for s in CampaignState::ALL {
            assert_eq!(CampaignState::parse(s.as_str()), Some(s));
        }
        assert_eq!(CampaignState::parse("done"), None);
    }

    #[test]
    fn identifiers_refuse_spaces_and_quotes() {
        assert!(parse_identifier("RDV-2026/001").is_ok());
        assert!(parse_identifier("a b").is_err());
        assert!(parse_identifier("x'; drop").is_err());
        assert!(parse_identifier("  ").is_err());
    }
}
