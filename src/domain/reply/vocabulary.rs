//! Per-site extra phrases ([`Vocabulary`]): checked at configuration time, normalised like
//! replies when classifying.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::normalize::normalize;
use super::types::Intent;

/// Longest site phrase, in normalised words.
const MAX_VOCAB_WORDS: usize = 12;

/// Extra per-site phrases per intent (a centre adds "RDV ok" or its own words).
/// Phrases are normalised like replies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    #[serde(flatten)]
    pub extra: BTreeMap<Intent, Vec<String>>,
}

impl Vocabulary {
    /// Err names the intent and the phrase, e.g.
    /// `confirm: phrase "!!" has no words after normalisation`.
    pub fn validate(&self) -> Result<(), String> {
        for (intent, phrases) in &self.extra {
            for phrase in phrases {
                let n = normalize(phrase).words.len();
                if n == 0 {
                    return Err(format!(
                        "{}: phrase {:?} has no words after normalisation",
                        intent.as_str(),
                        phrase
                    ));
                }
                if n > MAX_VOCAB_WORDS {
                    return Err(format!(
                        "{}: phrase {:?} has {} words, at most {} allowed",
                        intent.as_str(),
                        phrase,
                        n,
                        MAX_VOCAB_WORDS
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Site phrases, normalised.
pub(super) fn vocab_phrases(vocab: &Vocabulary) -> Vec<(Intent, Vec<String>)> {
    let mut out = Vec::new();
    for (intent, phrases) in &vocab.extra {
        for p in phrases {
            let words = normalize(p).words;
            if !words.is_empty() && words.len() <= MAX_VOCAB_WORDS {
                out.push((*intent, words));
            }
        }
    }
    out
}
