//! The reply classifier's public vocabulary: intents, languages, flags and the verdict. Plain
//! data with no dependency on the rest of the classifier, so that every step may name it.

use serde::{Deserialize, Serialize};

/// What the patient means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Confirm,
    Cancel,
    Reschedule,
    Question,
    OptOut,
    Urgent,
    WrongPerson,
    Unclear,
}

impl Intent {
    pub const ALL: [Intent; 8] = [
        Intent::Confirm,
        Intent::Cancel,
        Intent::Reschedule,
        Intent::Question,
        Intent::OptOut,
        Intent::Urgent,
        Intent::WrongPerson,
        Intent::Unclear,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Confirm => "confirm",
            Intent::Cancel => "cancel",
            Intent::Reschedule => "reschedule",
            Intent::Question => "question",
            Intent::OptOut => "opt_out",
            Intent::Urgent => "urgent",
            Intent::WrongPerson => "wrong_person",
            Intent::Unclear => "unclear",
        }
    }

    /// Inverse of [`Intent::as_str`].
    pub fn parse(s: &str) -> Option<Intent> {
        Intent::ALL.into_iter().find(|i| i.as_str() == s)
    }
}

/// Reply language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    /// Accepts "fr", "FR", "fr-FR", "fr_CA", "en", "en-GB", "en_US"...
    pub fn parse(s: &str) -> Option<Lang> {
        let primary = s.trim().split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("fr") {
            Some(Lang::Fr)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }
}

/// Extra facts about a classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The patient says they will be late.
    Late,
    /// Empty or whitespace-only reply.
    Empty,
    /// Only the first 1,000 chars were classified.
    Truncated,
    /// A negated phrase was used ("je ne pourrai pas venir").
    Negated,
    /// The reply contains emoji.
    Emoji,
    /// The reply is a bare digit (menu answer).
    Digit,
    /// Evidence for more than one intent was found.
    MultipleIntents,
}

/// The verdict on one reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub intent: Intent,
    /// 0.0..=1.0; unclear results have low confidence.
    pub confidence: f32,
    pub flags: Vec<Flag>,
    /// Which words or rule decided; at most ~80 chars.
    pub reason: String,
    /// Language used (forced or detected).
    pub lang: Lang,
}

/// Normalised words, emoji extracted first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Normalized {
    pub words: Vec<String>,
    pub emojis: Vec<char>,
}
