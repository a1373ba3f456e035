//! `rappel train-classifier` (cargo feature `train`): trains the reply classifier's model
//! ([`crate::domain::reply::model`]) on labelled corpus files with `linfa-logistic`'s
//! multinomial logistic regression, and writes the model file. Deterministic: the same corpus
//! and parameters give the same file, byte for byte (sorted features, a solver without
//! randomness, weights rounded to 4 decimals). With `--folds k` it also reports the k-fold
//! cross-validated score of the whole classifier (rules and model together) on the corpus.

use super::corpus::{Example, Score, confusion_table, print_miss, read_corpus, score_of};
use super::outln;
use crate::domain::reply::model::CLASSES;
use crate::domain::reply::{self, Model, Vocabulary};
use anyhow::{Context, Result, bail};
use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Training parameters (part of the model file's header).
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// L2 penalty.
    pub alpha: f64,
    /// A feature is kept when it appears in at least this many replies.
    pub min_df: usize,
    pub max_iterations: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            alpha: 0.05,
            min_df: 3,
            max_iterations: 150,
        }
    }
}

/// Weights below this (absolute, in every class) are not written: they change no decision.
const PRUNE_BELOW: f32 = 0.0005;

/// Trains on `examples`; returns the model file's body (without the header).
pub fn train(examples: &[Example], params: Params) -> Result<String> {
    let docs: Vec<Vec<String>> = examples
        .iter()
        .map(|e| reply::feature_names(&e.text, Some(e.lang)))
        .collect();
    let mut df: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &docs {
        for f in d {
            *df.entry(f.as_str()).or_default() += 1;
        }
    }
    let vocab: Vec<&str> = df
        .iter()
        .filter(|(_, n)| **n >= params.min_df)
        .map(|(f, _)| *f)
        .collect();
    let column: BTreeMap<&str, usize> = vocab.iter().enumerate().map(|(i, f)| (*f, i)).collect();
    let mut x = Array2::<f64>::zeros((docs.len(), vocab.len()));
    for (i, d) in docs.iter().enumerate() {
        for f in d {
            if let Some(&j) = column.get(f.as_str()) {
                x[[i, j]] = 1.0;
            }
        }
    }
    let y: Array1<usize> = examples
        .iter()
        .map(|e| CLASSES.iter().position(|&c| c == e.intent).unwrap_or(0))
        .collect();
    let data = Dataset::new(x, y);
    let fitted = MultiLogisticRegression::default()
        .alpha(params.alpha)
        .max_iterations(params.max_iterations)
        .fit(&data)
        .context("fitting the logistic regression")?;
    // Columns follow the fitted classes (the labels seen, sorted); map them to CLASSES.
    let classes: Vec<usize> = fitted.classes().to_vec();
    let w = fitted.params();
    let b = fitted.intercept();
    let row = |get: &dyn Fn(usize) -> f64| -> [f32; 8] {
        let mut r = [0f32; 8];
        for (col, &class) in classes.iter().enumerate() {
            r[class] = get(col) as f32;
        }
        r
    };
    let fmt = |r: &[f32; 8]| {
        r.iter()
            .map(|v| format!("{:.4}", v))
            .map(|s| {
                if s == "-0.0000" {
                    "0.0000".to_string()
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = String::new();
    out.push_str(&format!("bias\t{}\n", fmt(&row(&|c| b[c]))));
    for (j, f) in vocab.iter().enumerate() {
        let r = row(&|c| w[[j, c]]);
        if r.iter().all(|v| v.abs() < PRUNE_BELOW) {
            continue;
        }
        out.push_str(&format!("{f}\t{}\n", fmt(&r)));
    }
    Ok(out)
}

/// With `show_errors`, prints every reply the held fold got wrong (development corpora only).
pub fn cross_validate(
    examples: &[Example],
    params: Params,
    folds: usize,
    show_errors: bool,
) -> Result<Score> {
    // Folds run two at a time (this machine's cores); the result does not depend on it.
    let fold = |k: usize| -> Result<Vec<(usize, reply::Classification)>> {
        let train_set: Vec<Example> = examples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % folds != k)
            .map(|(_, e)| e.clone())
            .collect();
        let body = train(&train_set, params)?;
        let model = Model::parse(&body).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(examples
            .iter()
            .enumerate()
            .skip(k)
            .step_by(folds)
            .map(|(i, e)| {
                let c = reply::classify_with(&e.text, Some(e.lang), &Vocabulary::default(), &model);
                (i, c)
            })
            .collect())
    };
    let mut answers: Vec<(usize, reply::Classification)> = Vec::new();
    for pair in (0..folds).collect::<Vec<_>>().chunks(2) {
        let results: Vec<Result<Vec<(usize, reply::Classification)>>> = std::thread::scope(|s| {
            let handles: Vec<_> = pair.iter().map(|&k| s.spawn(move || fold(k))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a fold panicked")))
                })
                .collect()
        });
        for r in results {
            answers.extend(r?);
        }
    }
    answers.sort_by_key(|(i, _)| *i);
    let mut confusion = BTreeMap::new();
    for (i, c) in answers {
        let e = &examples[i];
        *confusion.entry((e.intent, c.intent)).or_default() += 1;
        if show_errors && c.intent != e.intent {
            print_miss(e, &c)?;
        }
    }
    Ok(score_of(confusion))
}

/// The SHA-256 of the training files, in order, for the model's header.
fn corpus_digest(files: &[PathBuf]) -> Result<String> {
    let mut h = Sha256::new();
    for f in files {
        h.update(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// The command: trains on `files`, optionally cross-validates, writes `out`.
pub fn run(
    files: &[PathBuf],
    out: &Path,
    params: Params,
    folds: Option<usize>,
    show_errors: bool,
) -> Result<()> {
    let mut examples = Vec::new();
    for f in files {
        examples.extend(read_corpus(f)?);
    }
    if examples.is_empty() {
        bail!("no labelled reply in the corpus files");
    }
    outln!(
        "{} labelled replies from {} files",
        examples.len(),
        files.len()
    )?;
    if let Some(k) = folds {
        let s = cross_validate(&examples, params, k, show_errors)?;
        outln!(
            "{k}-fold cross-validation (rules and model): accuracy {:.1} %, dangerous errors {}",
            s.accuracy * 100.0,
            s.dangerous
        )?;
        outln!("{}", confusion_table(&s))?;
    }
    let body = train(&examples, params)?;
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let header = format!(
        "# Rappel reply model: multinomial logistic regression (linfa-logistic), binary features\n\
         # (see src/domain/reply/model.rs). Built by `rappel train-classifier` (scripts/train_classifier.sh).\n\
         # Trained on {} replies: {}\n\
         # corpus sha256 {}\n\
         # alpha {} min_df {} max_iterations {}\n",
        examples.len(),
        names.join(", "),
        corpus_digest(files)?,
        params.alpha,
        params.min_df,
        params.max_iterations
    );
    std::fs::write(out, format!("{header}{body}"))
        .with_context(|| format!("writing {}", out.display()))?;
    let model = Model::parse(&body).map_err(|e| anyhow::anyhow!("{e}"))?;
    outln!("{} features written to {}", model.len(), out.display())?;
    Ok(())
}
