// interim: replaced by the classifier
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent { Confirm, Cancel, Reschedule, Question, OptOut, Urgent, WrongPerson, Unclear }
impl Intent {
    pub const ALL: [Intent; 8] = [Intent::Confirm, Intent::Cancel, Intent::Reschedule, Intent::Question, Intent::OptOut, Intent::Urgent, Intent::WrongPerson, Intent::Unclear];
    pub fn as_str(self) -> &'static str { match self { Intent::Confirm => "confirm", Intent::Cancel => "cancel", Intent::Reschedule => "reschedule", Intent::Question => "question", Intent::OptOut => "opt_out", Intent::Urgent => "urgent", Intent::WrongPerson => "wrong_person", Intent::Unclear => "unclear" } }
    pub fn parse(s: &str) -> Option<Intent> { Intent::ALL.into_iter().find(|i| i.as_str() == s) }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang { Fr, En }
impl Lang { pub fn parse(s: &str) -> Option<Lang> { match s.get(..2) { Some("fr") => Some(Lang::Fr), Some("en") => Some(Lang::En), _ => None } } pub fn as_str(self) -> &'static str { match self { Lang::Fr => "fr", Lang::En => "en" } } }
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag { Late, Empty, Truncated, Negated, Emoji, Digit, MultipleIntents }
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary { #[serde(flatten)] pub extra: std::collections::BTreeMap<Intent, Vec<String>> }
impl Vocabulary { pub fn validate(&self) -> Result<(), String> { Ok(()) } }
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification { pub intent: Intent, pub confidence: f32, pub flags: Vec<Flag>, pub reason: String, pub lang: Lang }
pub fn classify(text: &str, lang: Option<Lang>, _vocab: &Vocabulary) -> Classification {
    let t = text.trim().to_lowercase();
    let intent = match t.as_str() { "1" | "oui" | "yes" => Intent::Confirm, "2" | "non" | "no" => Intent::Cancel, "stop" => Intent::OptOut, _ => Intent::Unclear };
    Classification { intent, confidence: 0.5, flags: vec![], reason: String::new(), lang: lang.unwrap_or(Lang::Fr) }
}
