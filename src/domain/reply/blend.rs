//! Rules and model together: the rules' verdict ([`super::decide`]) and the model's scores
//! ([`super::model`]) make one decision, in this order:
//!
//! 1. **Medical first.** The rules' urgent (phrases and the medical lists) stands; the model's
//!    urgent probability at [`URGENT_FLOOR`] or more also makes the reply urgent, whatever else
//!    it says: recall before precision, a person reads it.
//! 2. **Explicit choices stand**: a bare digit (the menu) and a phrase of the site's own
//!    vocabulary.
//! 3. **Agreement** decides at once; a reply the rules found hedged or contradictory is never
//!    made a confirmation or a cancellation by the model.
//! 4. **The model decides** when it is sure ([`MODEL_SURE`]), unless it would swap one costly
//!    intent for its opposite (confirm ↔ cancel, opt-out ↔ confirm or cancel, a wrong person
//!    read as confirm): then the rules stand if they rest on a negation or an explicit request
//!    to stop messages, else the reply is unclear and a person reads it.
//! 5. Otherwise the rules' verdict stands if the model gives it some weight
//!    ([`RULES_KEPT_ABOVE`]), else the reply is unclear.
//!
//! The reason names both: the rules' phrase and the model's strongest features.

use super::decide::Verdict;
use super::model::Scores;
use super::types::Flag;
use super::types::Intent::{self, Cancel, Confirm, OptOut, Unclear, Urgent, WrongPerson};

/// The model's probability of `urgent` that sends a reply to a person as urgent.
pub(super) const URGENT_FLOOR: f32 = 0.25;
/// The model's probability at which it overrules the rules.
pub(super) const MODEL_SURE: f32 = 0.6;
/// Below [`MODEL_SURE`], the rules' verdict stands when the model gives it at least this.
pub(super) const RULES_KEPT_ABOVE: f32 = 0.15;

/// Swapping these costs a slot or a patient (the first is the rules' or truth's, the second the
/// other's reading).
pub(super) fn opposite(a: Intent, b: Intent) -> bool {
    matches!(
        (a, b),
        (Confirm, Cancel)
            | (Cancel, Confirm)
            | (OptOut, Cancel | Confirm)
            | (Cancel | Confirm, OptOut)
            | (WrongPerson, Confirm)
    )
}

fn percent(p: f32) -> String {
    format!("{:.0}%", p * 100.0)
}

fn model_words(s: &Scores) -> String {
    if s.because.is_empty() {
        String::new()
    } else {
        format!(" ({})", s.because.join(", "))
    }
}

fn with(rules: &Verdict, intent: Intent, confidence: f32, reason: String) -> Verdict {
    Verdict {
        intent,
        confidence,
        reason,
        ..rules.clone()
    }
}

pub(super) fn blend(rules: Verdict, scores: &Scores) -> Verdict {
    let (top, p) = scores.top();
    if rules.intent == Urgent {
        return rules;
    }
    let urgent = scores.of(Urgent);
    if urgent >= URGENT_FLOOR {
        return with(
            &rules,
            Urgent,
            urgent.max(0.5),
            format!(
                "urgent: model {} medical{}; rules: {}",
                percent(urgent),
                model_words(scores),
                rules.reason
            ),
        );
    }
    if rules.flags.contains(&Flag::Digit) || rules.site_phrase {
        return rules;
    }
    if top == rules.intent {
        // An unclear reply keeps a low confidence however sure the model is that it is unclear.
        let confidence = if top == Unclear {
            rules.confidence
        } else {
            rules.confidence.max(p)
        };
        return Verdict {
            confidence,
            ..rules
        };
    }
    // A hedge ("peut-être", "si je peux", "absolutely not") or a conflict ("oui non") is what
    // the rules read best: the model does not turn it into a confirmation or a cancellation.
    let hedged = rules.intent == Unclear
        && (rules.cues.iter().any(|c| c == "hedge")
            || rules.reason.contains("conflict")
            || rules.reason.contains("followed by '?'"));
    if hedged && matches!(top, Confirm | Cancel) {
        return rules;
    }
    if p >= MODEL_SURE {
        // The rules' negation ("non je n'annule pas") and their explicit request to stop
        // messages are what a list of n-grams reads worst: against an opposite, they stand.
        if opposite(rules.intent, top)
            && (rules.flags.contains(&Flag::Negated) || rules.intent == OptOut)
        {
            return rules;
        }
        if opposite(rules.intent, top) {
            return with(
                &rules,
                Unclear,
                0.3,
                format!(
                    "unclear: model {} {}{} against rules: {}",
                    percent(p),
                    top.as_str(),
                    model_words(scores),
                    rules.reason
                ),
            );
        }
        return with(
            &rules,
            top,
            p * 0.9,
            format!(
                "{}: model {}{}; rules: {}",
                top.as_str(),
                percent(p),
                model_words(scores),
                rules.reason
            ),
        );
    }
    if rules.intent != Unclear && scores.of(rules.intent) >= RULES_KEPT_ABOVE {
        return rules;
    }
    with(
        &rules,
        Unclear,
        0.25,
        format!(
            "unclear: model unsure ({} {}{}); rules: {}",
            top.as_str(),
            percent(p),
            model_words(scores),
            rules.reason
        ),
    )
}
