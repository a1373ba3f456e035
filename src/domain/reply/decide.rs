//! The decision: from the matched phrases of one reply to one [`Intent`], following the
//! decision order of the module documentation (urgent, opt-out, wrong person, digit, strong
//! evidence, weak evidence, bare STOP, unclear). Each step is a function that either rules or
//! passes to the next one.

use super::lexicon::{
    CANCEL_EMOJI, CONFIRM_EMOJI, CONTACT_VERBS, CONTRAST, FILLERS, LIST_NOUNS, MESSAGE_NOUNS,
    MORE_WORDS, OnNeg, REMOVE_WORDS, STOP_PAIRS, STOP_WORDS, Sig,
};
use super::matching::{Hit, find_hits, is_negated, resolve_overlaps};
use super::medical;
use super::normalize::{Prepared, Token};
use super::types::Intent::{
    self, Cancel, Confirm, OptOut, Question, Reschedule, Unclear, Urgent, WrongPerson,
};
use super::types::{Flag, Lang};

/// A hedge followed this closely by a lateness phrase hedges the lateness only.
const HEDGE_LATE_WINDOW: usize = 6;

/// Confidence taken off when the reply carries evidence for more than one intent.
const MULTIPLE_INTENTS_PENALTY: f32 = 0.15;

#[derive(Debug, Clone)]
struct Signal {
    intent: Intent,
    weak: bool,
    negated: bool,
    start: usize,
    words: String,
}

#[derive(Clone)]
pub(super) struct Verdict {
    pub(super) intent: Intent,
    pub(super) confidence: f32,
    pub(super) flags: Vec<Flag>,
    pub(super) reason: String,
    /// What the rules saw, as the model's `r:` features (see [`super::model`]).
    pub(super) cues: Vec<String>,
    /// A phrase of the site's own vocabulary was found: the rules' verdict stands.
    pub(super) site_phrase: bool,
}

/// What one step of the decision order rules; the flags are added by [`decide`].
struct Ruling {
    intent: Intent,
    confidence: f32,
    reason: String,
}

fn rule(intent: Intent, confidence: f32, reason: String) -> Option<Ruling> {
    Some(Ruling {
        intent,
        confidence,
        reason,
    })
}

/// Everything the reply says, gathered from its phrases and emoji before any rule applies.
struct Evidence<'h> {
    signals: Vec<Signal>,
    hedges: Vec<&'h Hit>,
    late: Vec<&'h Hit>,
    bare_stop: Option<&'h Hit>,
    /// An interrogative word (où, quand, what...).
    cue: bool,
    /// A practical topic (jeun, adresse, parking...).
    topic: bool,
    /// A day or a time.
    when: bool,
    /// "plutôt", "instead".
    instead: bool,
    any_negated: bool,
}

impl Evidence<'_> {
    /// What the rules saw, for the model: each signal's intent (`~` weak, `!` negated), and the
    /// auxiliary cues.
    fn cues(&self, question_mark: bool) -> Vec<String> {
        let mut cues: Vec<String> = self
            .signals
            .iter()
            .map(|s| {
                format!(
                    "s:{}{}{}",
                    s.intent.as_str(),
                    if s.weak { "~" } else { "" },
                    if s.negated { "!" } else { "" }
                )
            })
            .collect();
        let aux = [
            (!self.hedges.is_empty(), "hedge"),
            (!self.late.is_empty(), "late"),
            (self.bare_stop.is_some(), "bare_stop"),
            (self.cue, "cue"),
            (self.topic, "topic"),
            (self.when, "when"),
            (self.instead, "instead"),
            (question_mark, "qmark"),
        ];
        cues.extend(aux.iter().filter(|(on, _)| *on).map(|(_, c)| c.to_string()));
        cues
    }

    fn strong_of(&self, intent: Intent) -> Option<&Signal> {
        self.signals.iter().find(|s| s.intent == intent && !s.weak)
    }

    fn weak_of(&self, intent: Intent) -> Option<&Signal> {
        self.signals.iter().find(|s| s.intent == intent && s.weak)
    }

    /// Distinct intents seen (a bare STOP counts as opt-out, a "?" with an interrogative or a
    /// practical word as a question).
    fn distinct_intents(&self, question_mark: bool) -> usize {
        let mut seen: Vec<Intent> = self.signals.iter().map(|s| s.intent).collect();
        if self.bare_stop.is_some() {
            seen.push(OptOut);
        }
        if question_mark && (self.cue || self.topic) {
            seen.push(Question);
        }
        seen.sort();
        seen.dedup();
        seen.len()
    }
}

fn phrase_of(tokens: &[Token], h: &Hit) -> String {
    tokens[h.start..h.start + h.len]
        .iter()
        .map(|t| t.word.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(s: &Signal) -> String {
    if s.negated {
        format!("negated '{}'", s.words)
    } else {
        format!("'{}'", s.words)
    }
}

fn digit_reply(tokens: &[Token]) -> Option<&str> {
    let mut digit = None;
    for t in tokens {
        if t.word.chars().all(|c| c.is_ascii_digit()) {
            if digit.is_some() {
                return None;
            }
            digit = Some(t.word.as_str());
        } else if !FILLERS.contains(&t.word.as_str()) {
            return None;
        }
    }
    digit
}

/// Tokens covered by an idiom whose "pas"/"plus"/"no" must not count as a negator.
fn negator_mask(hits: &[Hit], n: usize) -> Vec<bool> {
    let mut masked = vec![false; n];
    for h in hits.iter().filter(|h| h.masks_negators) {
        for m in &mut masked[h.start..h.start + h.len] {
            *m = true;
        }
    }
    masked
}

pub(super) fn decide(
    p: &Prepared,
    lang: Lang,
    detected: Lang,
    extra: &[(Intent, Vec<String>)],
) -> Verdict {
    let tokens = &p.tokens;
    let hits = resolve_overlaps(find_hits(tokens, lang, detected, extra), tokens.len());
    let masked = negator_mask(&hits, tokens.len());
    let ev = gather_evidence(p, &hits, &masked);

    let mut flags = Vec::new();
    if !ev.late.is_empty() {
        flags.push(Flag::Late);
    }
    if ev.any_negated {
        flags.push(Flag::Negated);
    }
    let multiple = ev.distinct_intents(p.question_mark) > 1;
    if multiple {
        flags.push(Flag::MultipleIntents);
    }
    let steps = Steps {
        tokens,
        question_mark: p.question_mark,
        penalty: if multiple {
            MULTIPLE_INTENTS_PENALTY
        } else {
            0.0
        },
        hedge_word: ev.hedges.first().map(|h| phrase_of(tokens, h)),
        ev: &ev,
    };

    let ruling = match steps.overriding() {
        Some(r) => r,
        None => match digit_reply(tokens) {
            Some(d) => {
                flags.push(Flag::Digit);
                digit_ruling(d)
            }
            None => steps
                .strong()
                .or_else(|| steps.weak())
                .or_else(|| steps.bare_stop())
                .unwrap_or_else(|| steps.unclear()),
        },
    };
    let mut cues = ev.cues(p.question_mark);
    if flags.contains(&Flag::Digit) {
        cues.push("digit".to_string());
    }
    cues.push(format!("rule:{}", ruling.intent.as_str()));
    Verdict {
        intent: ruling.intent,
        confidence: ruling.confidence,
        flags,
        reason: ruling.reason,
        cues,
        site_phrase: hits.iter().any(|h| h.site),
    }
}

/// Turns the hits into signals (a negated phrase flips or hedges as its table says), reads the
/// emoji, counts lateness as confirming, and drops a hedge that only hedges the lateness.
fn gather_evidence<'h>(p: &Prepared, hits: &'h [Hit], masked: &[bool]) -> Evidence<'h> {
    let tokens = &p.tokens;
    let mut ev = Evidence {
        signals: Vec::new(),
        hedges: Vec::new(),
        late: Vec::new(),
        bare_stop: None,
        cue: false,
        topic: false,
        when: false,
        instead: false,
        any_negated: false,
    };
    for h in hits {
        match h.sig {
            Sig::Intent { intent, weak, neg } => {
                let negated = neg != OnNeg::Keep && is_negated(tokens, masked, h);
                let words = phrase_of(tokens, h);
                if negated {
                    ev.any_negated = true;
                }
                match (negated, neg) {
                    (true, OnNeg::Flip(to)) => ev.signals.push(Signal {
                        intent: to,
                        weak,
                        negated: true,
                        start: h.start,
                        words,
                    }),
                    (true, _) => ev.hedges.push(h),
                    (false, _) => ev.signals.push(Signal {
                        intent,
                        weak,
                        negated: false,
                        start: h.start,
                        words,
                    }),
                }
            }
            Sig::Hedge => ev.hedges.push(h),
            Sig::Late => {
                if is_negated(tokens, masked, h) {
                    ev.any_negated = true;
                } else {
                    ev.late.push(h);
                }
            }
            Sig::BareStop => ev.bare_stop = ev.bare_stop.or(Some(h)),
            Sig::QCue => ev.cue = true,
            Sig::QTopic => ev.topic = true,
            Sig::When => ev.when = true,
            Sig::Instead => ev.instead = true,
            Sig::Neutral => {}
        }
    }
    for &e in &p.emojis {
        let intent = if CONFIRM_EMOJI.contains(&e) {
            Some(Confirm)
        } else if CANCEL_EMOJI.contains(&e) {
            Some(Cancel)
        } else {
            None
        };
        if let Some(intent) = intent {
            ev.signals.push(Signal {
                intent,
                weak: true,
                negated: false,
                start: tokens.len(),
                words: e.to_string(),
            });
        }
    }
    // "Arrêtez les rappels", "ne m'appelez plus", "take me off your list": a request to stop
    // being contacted, however it is worded; a weak "no" inside it is not a cancel.
    if let Some((start, len)) = contact_stop(tokens) {
        ev.signals.retain(|s| {
            !(s.intent == Cancel && s.weak && s.start >= start && s.start < start + len)
        });
        ev.bare_stop = None;
        ev.signals.push(Signal {
            intent: OptOut,
            weak: false,
            negated: false,
            start,
            words: tokens[start..start + len]
                .iter()
                .map(|t| t.word.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        });
    }
    // Lateness means the patient is coming.
    for h in &ev.late {
        ev.signals.push(Signal {
            intent: Confirm,
            weak: false,
            negated: false,
            start: h.start,
            words: phrase_of(tokens, h),
        });
    }
    // A hedge right before a lateness phrase hedges the lateness only.
    let late = &ev.late;
    ev.hedges.retain(|hd| {
        let end = hd.start + hd.len;
        !late.iter().any(|l| {
            l.start >= end
                && l.start - end < HEDGE_LATE_WINDOW
                && !tokens[end..=l.start].iter().any(|t| t.boundary_before)
        })
    });
    ev
}

/// How far apart (in words, within one clause) a stop word and what it stops may stand.
const CONTACT_STOP_WINDOW: usize = 7;

/// The span of a request to stop being contacted: a stop word then a kind of message
/// ("stop les messages", "plus de rappels", "no more automated calls"), a removal then a list
/// or a number ("retirez-moi de vos listes", "delete my number"), or a contact verb then
/// "plus"/"again"/"anymore" ("ne m'appelez plus", "don't text me again").
fn contact_stop(tokens: &[Token]) -> Option<(usize, usize)> {
    let word = |i: usize| tokens[i].word.as_str();
    for i in 0..tokens.len() {
        let w = word(i);
        let two = tokens.get(i + 1).map(|t| format!("{w} {}", t.word));
        let stop =
            STOP_WORDS.contains(&w) || two.as_deref().is_some_and(|t| STOP_PAIRS.contains(&t));
        let remove = REMOVE_WORDS.contains(&w);
        let contact = CONTACT_VERBS.contains(&w);
        if !(stop || remove || contact) {
            continue;
        }
        for j in i + 1..tokens.len().min(i + 1 + CONTACT_STOP_WINDOW) {
            if tokens[j].boundary_before {
                break;
            }
            let v = word(j);
            let stops_messages = (stop || remove) && MESSAGE_NOUNS.contains(&v);
            let removes_from_list = remove && LIST_NOUNS.contains(&v);
            let no_more_contact = contact
                && MORE_WORDS.contains(&v)
                && tokens.get(j + 1).is_none_or(|t| t.word != "tard");
            if stops_messages || removes_from_list || no_more_contact {
                return Some((i, j + 1 - i));
            }
        }
    }
    None
}

/// Step 4: a reply that is only a digit follows the call menu.
fn digit_ruling(d: &str) -> Ruling {
    let intent = match d {
        "1" => Confirm,
        "2" => Cancel,
        "3" => Reschedule,
        _ => Unclear,
    };
    let confidence = if intent == Unclear { 0.2 } else { 0.85 };
    Ruling {
        intent,
        confidence,
        reason: format!("{}: digit reply '{}'", intent.as_str(), d),
    }
}

/// The steps of the decision order, over the evidence of one reply.
struct Steps<'a> {
    tokens: &'a [Token],
    question_mark: bool,
    ev: &'a Evidence<'a>,
    penalty: f32,
    hedge_word: Option<String>,
}

impl Steps<'_> {
    /// Steps 1 to 3: urgent, an explicit opt-out, a wrong person.
    fn overriding(&self) -> Option<Ruling> {
        if let Some(s) = self.ev.strong_of(Urgent) {
            let from = medical::list_of(&s.words)
                .map(|l| format!("{l} list"))
                .unwrap_or_else(|| "urgent beats all".to_string());
            return rule(Urgent, 0.95, format!("urgent: {} ({from})", describe(s)));
        }
        // "I won't come, and stop the messages": the cancellation is what the centre acts on
        // (no more messages follow a cancelled appointment anyway).
        if self.ev.strong_of(OptOut).is_some() {
            // A weak cancel counts only as the reply's first word ("Non. Et arrêtez les SMS"),
            // not inside it ("I'm no longer his carer").
            if let Some(c) = self
                .ev
                .signals
                .iter()
                .find(|s| s.intent == Cancel && (!s.weak || s.start == 0))
            {
                return Some(self.unless_hedged(c, Cancel, 0.85 - self.penalty));
            }
        }
        // "Stop. Je viens mais stop": a STOP beside a plain confirmation asks to stop the
        // messages, the appointment is kept.
        if let Some(h) = self.ev.bare_stop {
            let confirms = self
                .ev
                .signals
                .iter()
                .any(|s| s.intent == Confirm && !s.weak);
            let other = self
                .ev
                .signals
                .iter()
                .any(|s| s.intent != Confirm && !s.weak);
            if confirms && !other {
                return rule(
                    OptOut,
                    0.8 - self.penalty,
                    format!(
                        "opt_out: '{}' beside a confirmation",
                        phrase_of(self.tokens, h)
                    ),
                );
            }
        }
        if let Some(s) = self.ev.strong_of(OptOut) {
            return rule(
                OptOut,
                0.95 - self.penalty,
                format!("opt_out: phrase {}", describe(s)),
            );
        }
        if let Some(s) = self.ev.strong_of(WrongPerson) {
            return rule(
                WrongPerson,
                0.9 - self.penalty,
                format!("wrong_person: phrase {}", describe(s)),
            );
        }
        None
    }

    /// Step 5: strong evidence, reschedule > cancel > question > confirm.
    fn strong(&self) -> Option<Ruling> {
        let ev = self.ev;
        if let Some(s) = ev.strong_of(Reschedule) {
            return rule(
                Reschedule,
                0.85 - self.penalty,
                format!("reschedule: phrase {}", describe(s)),
            );
        }
        if ev.instead && ev.when {
            return rule(
                Reschedule,
                0.8 - self.penalty,
                "reschedule: 'plutot/instead' with a day or time".to_string(),
            );
        }
        if self.not_x_but_y() {
            return rule(
                Reschedule,
                0.75,
                "reschedule: 'not X but Y' with a day or time".to_string(),
            );
        }
        if let Some(c) = ev.strong_of(Cancel) {
            return Some(self.unless_hedged(c, Cancel, 0.9 - self.penalty));
        }
        if ev.strong_of(Question).is_some() || (self.question_mark && (ev.cue || ev.topic)) {
            let mut reason = match ev.strong_of(Question) {
                Some(s) => format!("question: {}", describe(s)),
                None => "question: '?' with an interrogative or practical word".to_string(),
            };
            if ev.signals.iter().any(|s| s.intent == Confirm) {
                reason.push_str(" (also confirms)");
            }
            return rule(Question, 0.85 - self.penalty, reason);
        }
        let c = ev.strong_of(Confirm)?;
        Some(self.unless_hedged(c, Confirm, 0.9 - self.penalty))
    }

    /// "je ne peux pas à 9h mais je peux l'après-midi": a cancel, a day or time, then after a
    /// contrast word an affirmed attendance.
    fn not_x_but_y(&self) -> bool {
        let ev = self.ev;
        let any_cancel = ev
            .strong_of(Cancel)
            .or_else(|| ev.signals.iter().find(|s| s.intent == Cancel));
        let Some(c) = any_cancel.filter(|_| ev.when) else {
            return false;
        };
        self.tokens
            .iter()
            .enumerate()
            .skip(c.start + 1)
            .filter(|(_, t)| CONTRAST.contains(&t.word.as_str()))
            .any(|(k, _)| {
                ev.signals
                    .iter()
                    .any(|s| s.intent == Confirm && !s.weak && !s.negated && s.start > k)
            })
    }

    /// A strong cancel or confirm, unless a hedge makes it unclear.
    fn unless_hedged(&self, s: &Signal, intent: Intent, confidence: f32) -> Ruling {
        match &self.hedge_word {
            Some(hw) => Ruling {
                intent: Unclear,
                confidence: 0.3,
                reason: format!(
                    "unclear: hedge '{}' on {} {}",
                    hw,
                    intent.as_str(),
                    describe(s)
                ),
            },
            None => Ruling {
                intent,
                confidence,
                reason: format!("{}: {}", intent.as_str(), describe(s)),
            },
        }
    }

    /// Step 6: weak evidence decides only alone, without a "?" and without a hedge.
    fn weak(&self) -> Option<Ruling> {
        let s = match (self.ev.weak_of(Confirm), self.ev.weak_of(Cancel)) {
            (Some(a), Some(b)) => {
                return rule(
                    Unclear,
                    0.25,
                    format!("unclear: {} and {} conflict", describe(a), describe(b)),
                );
            }
            (Some(s), None) | (None, Some(s)) => s,
            (None, None) => return None,
        };
        if self.question_mark {
            return rule(
                Unclear,
                0.3,
                format!("unclear: {} followed by '?'", describe(s)),
            );
        }
        if let Some(hw) = &self.hedge_word {
            return rule(
                Unclear,
                0.3,
                format!("unclear: hedge '{}' on {}", hw, describe(s)),
            );
        }
        let confidence = if s.words.chars().all(|c| c.is_alphanumeric() || c == ' ') {
            0.75
        } else {
            0.7
        };
        rule(
            s.intent,
            confidence,
            format!("{}: weak {}", s.intent.as_str(), describe(s)),
        )
    }

    /// Step 7: a bare STOP with nothing else.
    fn bare_stop(&self) -> Option<Ruling> {
        let h = self.ev.bare_stop?;
        rule(
            OptOut,
            0.9,
            format!("opt_out: bare '{}' alone", phrase_of(self.tokens, h)),
        )
    }

    /// Step 8: anything else.
    fn unclear(&self) -> Ruling {
        match &self.hedge_word {
            Some(hw) => Ruling {
                intent: Unclear,
                confidence: 0.3,
                reason: format!("unclear: hedge '{}'", hw),
            },
            None => Ruling {
                intent: Unclear,
                confidence: 0.2,
                reason: "unclear: no signal".to_string(),
            },
        }
    }
}
