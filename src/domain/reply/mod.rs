//! # Patient reply classifier (French and English)
//!
//! This module owns one decision: given the free-text SMS a patient sent back
//! to an appointment reminder, which [`Intent`] it expresses. It is pure
//! (no I/O, no logging, no global mutable state apart from a lazily built,
//! read-only phrase index) and never panics, whatever the input.
//!
//! ## Pipeline
//!
//! 1. **Limit**: only the first 1,000 chars are read ([`Flag::Truncated`]).
//!    An empty or whitespace-only reply is `Unclear` with [`Flag::Empty`].
//! 2. **Normalise** ([`normalize`]): emoji are pulled out first (👍 ✅ 👌 🙏 🆗
//!    are weak confirm, ❌ 👎 ✖ 🚫 weak cancel, every other emoji is neutral);
//!    then lowercase, accents stripped (NFD, combining marks dropped),
//!    letters repeated 3+ times collapsed ("ouiii" → "oui"), elisions split
//!    ("j'annule"/"jannule" → "je annule", "n'annule" → "ne annule",
//!    "c'est"/"c" → "c est", "can't" → "can not"), SMS spellings mapped
//!    ("jpeux"/"jpx" → "je peux", "dac"/"d'acc" → "daccord", "oki"/"k" → "ok",
//!    "yep"/"yup" → "yes", "nope" → "no", "pk" → "pourquoi", "rendez-vous" →
//!    "rdv"...). Punctuation and "mais"/"but"/"donc" mark clause boundaries.
//! 3. **Match** whole words and multi-word phrases from the tables below,
//!    never substrings inside a word ("book" has no "ok", "nothing" no "no",
//!    "nonobstant" no "non", "cancellation" no "cancel"). Where two phrases
//!    overlap, the longer wins ("not sure" beats "sure", "who is this person"
//!    beats "who is this", "pas mal" beats the pain phrase "mal").
//! 4. **Negation**: an attendance verb ("venir", "viendrai", "be there",
//!    "make it", "dispo"...) preceded in its clause by ne/pas/plus/jamais/
//!    not/never (up to 5 words back, not past a new subject pronoun), or
//!    followed by pas/plus/jamais, turns into *cancel* ("je ne pourrai pas
//!    venir", "I can't come"); a negated cancel verb turns into *confirm*
//!    ("non je n'annule pas", "je ne veux pas annuler", "I won't cancel");
//!    a negated plain confirm word ("pas d'accord", "pas ok") becomes unclear.
//!    "ne ... que" is a restriction, not a negation. Idioms such as
//!    "pas de souci", "pas de problème", "sans problème", "no problem",
//!    "plus tard" are matched first and their "pas/no/plus" negate nothing.
//!
//! ## Decision order (first match wins)
//!
//! 1. **urgent**: pregnancy, contrast/iodine allergy, implanted device,
//!    fever, pain, kidney failure, diabetes medication, anxiety or
//!    claustrophobia, hospitalisation, a death. Urgent wins whatever else the
//!    reply says and is **never negated** ("je ne suis pas enceinte" is still
//!    urgent): any medical statement must be read by staff.
//! 2. **opt_out**, only when explicit: "stop sms", "ne plus recevoir",
//!    "plus de sms", "unsubscribe", "stop texting"... A bare keyword
//!    (STOP, ARRET, END, QUIT) is opt-out only when the reply says nothing
//!    else: "STOP", "Stop merci" opt out, but "stop je ne viendrai pas" is
//!    *cancel* (the "stop" is an interjection). "CANCEL" is always *cancel*
//!    (see the caller note below).
//! 3. **wrong_person**: "mauvais numéro", "je ne connais pas", "ce n'est pas
//!    moi", "wrong number", "never booked", "who is this person?"... (but
//!    "c'est qui ?" / "who is this?" alone is a *question*).
//! 4. **digit reply**: a reply that is only a digit (plus greetings/thanks):
//!    1 = confirm, 2 = cancel, 3 = reschedule (the call menu uses 3 for a
//!    call-back), anything else unclear; [`Flag::Digit`].
//! 5. **strong evidence**, in this order: reschedule > cancel > question >
//!    confirm. "not X but Y" with a day or time ("je ne peux pas à 9h mais je
//!    peux l'après-midi") and "plutôt/instead + day" are reschedule.
//!    *Question rule*: a reply is a question when it contains a
//!    self-standing question ("faut-il", "est-ce que", "c'est qui",
//!    "do I need", "how long"), or a "?" together with an interrogative word
//!    (où, quand, combien, what, where...) or a practical topic (jeun,
//!    adresse, ordonnance, prix, parking, insurance...). A reply that
//!    confirms **and** asks such a question is `question` (with
//!    [`Flag::MultipleIntents`]): the question needs a human answer before the
//!    appointment, and the reason still says it also confirmed. "ok ?" or
//!    "oui ?" has no interrogative word and stays unclear.
//!    "je confirme l'annulation" / "I confirm the cancellation" is cancel.
//! 6. **weak evidence** (oui, ok, yes, non, no, an emoji, "annulation",
//!    "je peux pas", "en vacances", "on holiday"): decides only when nothing
//!    strong is present, when it does not conflict ("oui non" is unclear) and
//!    when the reply has no "?" ("ok ?").
//! 7. **hedges** ("peut-être", "je vous redis", "je sais pas", "maybe",
//!    "I'll let you know", "je confirmerai", "je vous rappelle", conditionals
//!    "si je peux"/"if I can", and answers whose meaning depends on the
//!    question: "absolutely not", "non surtout pas") turn a confirm or cancel
//!    into unclear, except a hedge about lateness ("peut-être 5 min de
//!    retard"). Hedges do not touch urgent, opt-out, wrong person,
//!    reschedule or question.
//! 8. Anything else is **unclear**.
//!
//! [`Flag::Late`] is set for "en retard", "10 min de retard", "running late";
//! lateness alone counts as confirming attendance.
//!
//! ## Why this order: cost
//!
//! An automatic *cancel* frees the slot and loses it if the patient did come;
//! an automatic *confirm* on a patient who does not come loses a machine hour
//! (MRI/CT). Both are expensive, while `unclear` only costs a human look.
//! So when the evidence is weak or contradictory, the answer is `unclear`;
//! anything medical goes to a human first (`urgent`), and a patient asking to
//! move the appointment is routed to a human rather than silently cancelled.
//!
//! ## Caller notes
//!
//! * Twilio's default opt-out keywords include CANCEL, END, QUIT: Rappel
//!   treats CANCEL as cancelling the appointment, so the messaging service
//!   must not swallow it (use advanced opt-out management).
//! * Per-site [`Vocabulary`] phrases are strong evidence for their intent;
//!   a site phrase for `unclear` acts as a hedge. A negated site phrase for
//!   confirm or cancel counts as unclear (never as the opposite intent).
//!
//! `classify` costs a few microseconds for a typical SMS (one pass, phrases
//! indexed by first word).
//!
//! ## Code map
//!
//! The public types live in `types` and the site [`Vocabulary`] in `vocabulary`; `lexicon`
//! holds the phrase tables, `normalize` turns text into words, `matching` finds phrases and
//! their negation, and `decide` applies the decision order above. This file only wires them
//! together (the files below it never import it, so there is no import cycle).

mod blend;
mod decide;
mod identity;
mod lexicon;
mod matching;
mod medical;
pub mod model;
mod normalize;
mod types;
mod vocabulary;

#[cfg(test)]
mod tests;

pub use identity::{Identity, identity};
pub use model::{Model, Scores};
pub use normalize::normalize;
pub use types::{Classification, Flag, Intent, Lang, Normalized};
pub use vocabulary::Vocabulary;

use decide::decide;
use normalize::{clip, detect_from_tokens, prepare, truncate_chars};
use vocabulary::vocab_phrases;

/// Only the first 1,000 chars of a reply are read ([`Flag::Truncated`]).
const MAX_CHARS: usize = 1000;
/// Longest [`Classification::reason`], in chars.
const REASON_MAX: usize = 120;

/// A reading that costs a slot or a patient, or hides a medical statement: confirm ↔ cancel,
/// opt-out ↔ confirm or cancel, a wrong person read as confirm, an urgent reply read as anything
/// but urgent or a question (the acceptance's "dangerous errors").
pub fn dangerous(truth: Intent, got: Intent) -> bool {
    blend::opposite(truth, got)
        || (truth == Intent::Urgent && !matches!(got, Intent::Urgent | Intent::Question))
}

/// French vs English by stop-word counts; French on a tie.
pub fn detect_lang(text: &str) -> Lang {
    let (head, _) = truncate_chars(text, MAX_CHARS);
    detect_from_tokens(&prepare(head).tokens)
}

/// Classify one patient reply. `lang` is the patient's locale if known
/// (forced); otherwise the language is detected.
pub fn classify(text: &str, lang: Option<Lang>, vocab: &Vocabulary) -> Classification {
    classify_with(text, lang, vocab, Model::shipped())
}

/// The names of a reply's model features, deduplicated and sorted (for training).
pub fn feature_names(text: &str, lang: Option<Lang>) -> Vec<String> {
    let (head, _) = truncate_chars(text, MAX_CHARS);
    let prepared = prepare(head);
    let detected = detect_from_tokens(&prepared.tokens);
    let verdict = decide(&prepared, lang.unwrap_or(detected), detected, &[]);
    let words: Vec<&str> = prepared.tokens.iter().map(|t| t.word.as_str()).collect();
    let mut names = Vec::new();
    model::features(&words, &verdict.cues, &prepared.emojis, &mut |f| {
        names.push(f.to_string())
    });
    names.sort_unstable();
    names.dedup();
    names
}

/// The rules alone, without the model (the rules' own tests).
#[cfg(test)]
pub(super) fn rules_only(text: &str, lang: Option<Lang>, vocab: &Vocabulary) -> Classification {
    let (head, _) = truncate_chars(text, MAX_CHARS);
    let prepared = prepare(head);
    let detected = detect_from_tokens(&prepared.tokens);
    let lang_used = lang.unwrap_or(detected);
    let verdict = decide(&prepared, lang_used, detected, &vocab_phrases(vocab));
    Classification {
        intent: verdict.intent,
        confidence: verdict.confidence,
        flags: verdict.flags,
        reason: verdict.reason,
        lang: lang_used,
    }
}

/// [`classify`] with a given model (the trainer scores its folds with it).
pub fn classify_with(
    text: &str,
    lang: Option<Lang>,
    vocab: &Vocabulary,
    model: &Model,
) -> Classification {
    let (head, truncated) = truncate_chars(text, MAX_CHARS);
    let prepared = prepare(head);
    let detected = detect_from_tokens(&prepared.tokens);
    let lang_used = lang.unwrap_or(detected);

    let mut flags = Vec::new();
    if truncated {
        flags.push(Flag::Truncated);
    }
    if head.chars().all(|c| c.is_whitespace() || c.is_control()) {
        flags.push(Flag::Empty);
        return Classification {
            intent: Intent::Unclear,
            confidence: 0.0,
            flags,
            reason: "unclear: empty reply".to_string(),
            lang: lang_used,
        };
    }
    if !prepared.emojis.is_empty() {
        flags.push(Flag::Emoji);
    }

    let extra = vocab_phrases(vocab);
    let verdict = decide(&prepared, lang_used, detected, &extra);
    let words: Vec<&str> = prepared.tokens.iter().map(|t| t.word.as_str()).collect();
    let scores = model.score(&words, &verdict.cues, &prepared.emojis);
    let verdict = blend::blend(verdict, &scores);
    for f in verdict.flags {
        if !flags.contains(&f) {
            flags.push(f);
        }
    }
    let mut confidence = verdict.confidence;
    if truncated {
        confidence -= 0.1;
    }
    Classification {
        intent: verdict.intent,
        confidence: confidence.clamp(0.0, 1.0),
        flags,
        reason: clip(&verdict.reason, REASON_MAX),
        lang: lang_used,
    }
}
