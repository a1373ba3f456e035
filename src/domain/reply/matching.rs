//! Matching: whole-word phrase hits (the longest of overlapping phrases wins) and the scope of
//! a negation around a hit.

use super::lexicon::{NEG_AFTER, NEG_BEFORE, OnNeg, SCOPE_CONTINUES, SUBJECTS, Sig, index, strong};
use super::medical;
use super::normalize::{Token, is_time_word};
use super::types::Intent::{self, Cancel, Confirm, Unclear};
use super::types::Lang;

/// How many words back a negator may stand from the word it negates.
const NEG_WINDOW_BEFORE: usize = 5;
/// How many words after ("je viens pas", "j'annule pas").
const NEG_WINDOW_AFTER: usize = 2;

#[derive(Debug, Clone)]
pub(super) struct Hit {
    pub(super) start: usize,
    pub(super) len: usize,
    pub(super) sig: Sig,
    pub(super) masks_negators: bool,
    pub(super) order: usize,
    /// A phrase of the site's own vocabulary.
    pub(super) site: bool,
}

fn matches_at<S: AsRef<str>>(tokens: &[Token], at: usize, words: &[S]) -> bool {
    words.len() <= tokens.len().saturating_sub(at)
        && words
            .iter()
            .zip(&tokens[at..])
            .all(|(w, t)| w.as_ref() == t.word)
}

pub(super) fn find_hits(
    tokens: &[Token],
    lang: Lang,
    detected: Lang,
    extra: &[(Intent, Vec<String>)],
) -> Vec<Hit> {
    let idx = index();
    let mut hits = Vec::new();
    for (i, tok) in tokens.iter().enumerate() {
        if let Some(list) = idx.by_first.get(tok.word.as_str()) {
            for &e in list {
                let entry = &idx.entries[e];
                if entry.only.is_some_and(|l| l != lang && l != detected) {
                    continue;
                }
                if matches_at(tokens, i, &entry.words) {
                    hits.push(Hit {
                        start: i,
                        len: entry.words.len(),
                        sig: entry.sig,
                        masks_negators: entry.masks_negators,
                        order: e,
                        site: false,
                    });
                }
            }
        }
        if is_time_word(&tok.word) {
            hits.push(Hit {
                start: i,
                len: 1,
                sig: Sig::When,
                masks_negators: false,
                order: usize::MAX,
                site: false,
            });
        }
        // The medical lists: strong urgent evidence, never negated.
        let med = medical::lists();
        if let Some(list) = med.by_first.get(tok.word.as_str()) {
            for &e in list {
                if matches_at(tokens, i, &med.entries[e].words) {
                    hits.push(Hit {
                        start: i,
                        len: med.entries[e].words.len(),
                        sig: strong(Intent::Urgent, OnNeg::Keep),
                        masks_negators: false,
                        order: idx.entries.len() + e,
                        site: false,
                    });
                }
            }
        }
        for (k, (intent, words)) in extra.iter().enumerate() {
            if matches_at(tokens, i, words) {
                let sig = match intent {
                    Unclear => Sig::Hedge,
                    Confirm | Cancel => strong(*intent, OnNeg::Hedge),
                    other => strong(*other, OnNeg::Keep),
                };
                hits.push(Hit {
                    start: i,
                    len: words.len(),
                    sig,
                    masks_negators: false,
                    order: k,
                    site: true,
                });
            }
        }
    }
    hits
}

/// Keep the longest of overlapping phrases (earlier start, then table order,
/// on ties). Auxiliary signals are always kept.
pub(super) fn resolve_overlaps(mut hits: Vec<Hit>, n: usize) -> Vec<Hit> {
    let (aux, mut main): (Vec<Hit>, Vec<Hit>) = hits.drain(..).partition(|h| h.sig.is_aux());
    main.sort_by(|a, b| {
        b.len
            .cmp(&a.len)
            .then(a.start.cmp(&b.start))
            .then(a.order.cmp(&b.order))
    });
    let mut covered = vec![false; n];
    let mut kept = Vec::new();
    for h in main {
        let span = h.start..h.start + h.len;
        if covered[span.clone()].iter().any(|&c| c) {
            continue;
        }
        for c in &mut covered[span] {
            *c = true;
        }
        kept.push(h);
    }
    kept.extend(aux);
    kept.sort_by_key(|h| h.start);
    kept
}

pub(super) fn is_negated(tokens: &[Token], masked: &[bool], hit: &Hit) -> bool {
    let end = hit.start + hit.len;
    // after the phrase: "je viens pas", "j'annule pas"
    let mut after_neg = false;
    for k in end..(end + NEG_WINDOW_AFTER).min(tokens.len()) {
        if tokens[k].boundary_before {
            break;
        }
        if !masked[k] && NEG_AFTER.contains(&tokens[k].word.as_str()) {
            after_neg = true;
            break;
        }
    }
    if after_neg {
        return true;
    }
    // before the phrase, within the clause and the verb's own subject
    let mut k = hit.start;
    let mut steps = 0;
    while k > 0 && steps < NEG_WINDOW_BEFORE {
        if tokens[k].boundary_before {
            break;
        }
        k -= 1;
        steps += 1;
        if masked[k] {
            continue;
        }
        let w = tokens[k].word.as_str();
        if NEG_BEFORE.contains(&w) {
            if w == "ne" && is_restriction(tokens, end) {
                continue;
            }
            return true;
        }
        if SUBJECTS.contains(&w) {
            let continues = k > 0
                && !tokens[k].boundary_before
                && SCOPE_CONTINUES.contains(&tokens[k - 1].word.as_str());
            if !continues {
                break;
            }
        }
    }
    false
}

/// "je ne viendrai qu'à 15h": "ne ... que" restricts, it does not negate.
fn is_restriction(tokens: &[Token], from: usize) -> bool {
    for t in tokens.iter().skip(from).take(3) {
        if t.boundary_before {
            return false;
        }
        if t.word == "que" {
            return true;
        }
        if NEG_AFTER.contains(&t.word.as_str()) {
            return false;
        }
    }
    false
}
