//! The learned half of the classifier: a multinomial logistic regression over explainable,
//! binary features of a reply, trained by `rappel train-classifier` (cargo feature `train`, with
//! `linfa-logistic`) on the development corpus and shipped as `model.tsv`, embedded at compile
//! time. Reading it here is plain arithmetic: one weight row per feature present, summed with
//! the bias, then a softmax.
//!
//! Features (each present or absent, never counted):
//! - `w:<word>` every normalised word, `b:<w1> <w2>` every pair of neighbours (`^` at the start);
//! - `c:<chars>` every 3-, 4- and 5-character window of the normalised text (spaces included),
//!   which carries typos, voice-to-text and creole spellings to their neighbours;
//! - `r:<cue>` what the rules saw: each signal (`s:cancel`, `s:confirm~` weak, `s:cancel!`
//!   negated), hedges, lateness, a day or time, a question mark, the rules' own verdict;
//! - `e:+` / `e:-` / `e:o` a confirming, cancelling or other emoji; `n:<k>` the length bucket.

use super::types::Intent;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// The model, as trained (see its header for the corpus, the parameters and the CV score).
const MODEL: &str = include_str!("model.tsv");

/// Character windows, in characters.
const CHAR_GRAMS: [usize; 3] = [3, 4, 5];

/// Classes in the order of the model's columns.
pub const CLASSES: [Intent; 8] = Intent::ALL;

/// Calls `emit` once per feature of a reply (possibly twice for the same feature: callers that
/// need a set dedupe). `words` are the normalised words, `cues` what the rules saw.
pub(super) fn features<W: AsRef<str>>(
    words: &[W],
    cues: &[String],
    emojis: &[char],
    emit: &mut dyn FnMut(&str),
) {
    let mut buf = String::with_capacity(64);
    fn put(buf: &mut String, parts: &[&str], emit: &mut dyn FnMut(&str)) {
        buf.clear();
        for p in parts {
            buf.push_str(p);
        }
        emit(buf);
    }
    let mut prev = "^";
    for w in words {
        let w = w.as_ref();
        put(&mut buf, &["w:", w], emit);
        put(&mut buf, &["b:", prev, " ", w], emit);
        prev = w;
    }
    // " word word " as chars, windows over it.
    let mut text: Vec<char> = vec![' '];
    for w in words {
        text.extend(w.as_ref().chars());
        text.push(' ');
    }
    let mut gram = String::with_capacity(24);
    for n in CHAR_GRAMS {
        for win in text.windows(n) {
            gram.clear();
            gram.push_str("c:");
            gram.extend(win.iter());
            emit(&gram);
        }
    }
    for c in cues {
        put(&mut buf, &["r:", c], emit);
    }
    for &e in emojis {
        let kind = if super::lexicon::CONFIRM_EMOJI.contains(&e) {
            "e:+"
        } else if super::lexicon::CANCEL_EMOJI.contains(&e) {
            "e:-"
        } else {
            "e:o"
        };
        put(&mut buf, &[kind], emit);
    }
    let bucket = match words.len() {
        0 => "n:0",
        1 => "n:1",
        2..=3 => "n:3",
        4..=8 => "n:8",
        9..=20 => "n:20",
        _ => "n:more",
    };
    put(&mut buf, &[bucket], emit);
}

/// FNV-1a, 64 bits: a stable hash of a feature's name (the same in every build).
pub(super) fn feature_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The keys are already hashes: pass them through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A trained model: one weight row per feature, plus the bias.
pub struct Model {
    rows: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    names: Vec<String>,
    weights: Vec<[f32; 8]>,
    bias: [f32; 8],
}

/// What the model says of one reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// Probability of each class, in the order of [`CLASSES`].
    pub probs: [f32; 8],
    /// The features that pushed the top class most (name without its prefix), strongest first.
    pub because: Vec<String>,
}

impl Scores {
    pub fn of(&self, intent: Intent) -> f32 {
        CLASSES
            .iter()
            .position(|&c| c == intent)
            .map_or(0.0, |i| self.probs[i])
    }

    /// The most probable class and its probability.
    pub fn top(&self) -> (Intent, f32) {
        let mut best = 0;
        for i in 1..CLASSES.len() {
            if self.probs[i] > self.probs[best] {
                best = i;
            }
        }
        (CLASSES[best], self.probs[best])
    }
}

/// A model file that cannot be read.
#[derive(Debug, PartialEq)]
pub struct ModelError {
    pub line: usize,
    pub what: String,
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "model line {}: {}", self.line, self.what)
    }
}

impl Model {
    /// The model shipped in the binary.
    pub fn shipped() -> &'static Model {
        static SHIPPED: OnceLock<Model> = OnceLock::new();
        SHIPPED.get_or_init(|| match Model::parse(MODEL) {
            Ok(m) => m,
            // A broken file scores nothing (the rules alone decide, badly): the corpus tests and
            // `scripts/train_classifier.sh --check` in CI catch it before it ships.
            Err(_) => Model::empty(),
        })
    }

    fn empty() -> Model {
        Model {
            rows: HashMap::default(),
            names: Vec::new(),
            weights: Vec::new(),
            bias: [0.0; 8],
        }
    }

    /// Reads `# comments`, a `bias` line, then `feature<TAB>w1 … w8` lines.
    pub fn parse(text: &str) -> Result<Model, ModelError> {
        let mut m = Model::empty();
        let mut saw_bias = false;
        for (i, line) in text.lines().enumerate() {
            let err = |what: &str| ModelError {
                line: i + 1,
                what: what.to_string(),
            };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, ws) = line.split_once('\t').ok_or_else(|| err("no tab"))?;
            let mut row = [0f32; 8];
            let mut n = 0;
            for (k, w) in ws.split(' ').enumerate() {
                if k >= 8 {
                    return Err(err("more than 8 weights"));
                }
                row[k] = w.parse().map_err(|_| err("a weight is not a number"))?;
                n += 1;
            }
            if n != 8 {
                return Err(err("fewer than 8 weights"));
            }
            if name == "bias" {
                m.bias = row;
                saw_bias = true;
            } else {
                let at = u32::try_from(m.names.len()).map_err(|_| err("too many features"))?;
                if m.rows.insert(feature_hash(name), at).is_some() {
                    return Err(err("feature listed twice"));
                }
                m.names.push(name.to_string());
                m.weights.push(row);
            }
        }
        if !saw_bias {
            return Err(ModelError {
                line: 0,
                what: "no bias line".to_string(),
            });
        }
        Ok(m)
    }

    /// How many features carry weights.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Scores a reply from its features.
    pub(super) fn score<W: AsRef<str>>(
        &self,
        words: &[W],
        cues: &[String],
        emojis: &[char],
    ) -> Scores {
        let mut present: Vec<u32> = Vec::with_capacity(128);
        features(words, cues, emojis, &mut |f| {
            if let Some(&r) = self.rows.get(&feature_hash(f)) {
                present.push(r);
            }
        });
        present.sort_unstable();
        present.dedup();
        let mut z = self.bias;
        for &r in &present {
            for (zk, wk) in z.iter_mut().zip(&self.weights[r as usize]) {
                *zk += wk;
            }
        }
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probs = [0f32; 8];
        let mut sum = 0.0;
        for (p, zk) in probs.iter_mut().zip(&z) {
            *p = (zk - max).exp();
            sum += *p;
        }
        for p in &mut probs {
            *p /= sum;
        }
        let scores = Scores {
            probs,
            because: Vec::new(),
        };
        let (top, _) = scores.top();
        let k = CLASSES.iter().position(|&c| c == top).unwrap_or(0);
        // A feature's push for the top class: its weight there against its mean elsewhere.
        let mut pushes: Vec<(f32, u32)> = present
            .iter()
            .map(|&r| {
                let w = &self.weights[r as usize];
                let others = (w.iter().sum::<f32>() - w[k]) / 7.0;
                (w[k] - others, r)
            })
            .filter(|(p, _)| *p > 0.0)
            .collect();
        pushes.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let because = pushes
            .iter()
            .take(3)
            .map(|&(_, r)| {
                let name = &self.names[r as usize];
                name.split_once(':')
                    .map_or(name.as_str(), |(_, n)| n)
                    .trim()
                    .to_string()
            })
            .collect();
        Scores { because, ..scores }
    }
}
