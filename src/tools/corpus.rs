//! Labelled reply corpora: reading them (`lang<TAB>intent<TAB>text`, `#` comments) and scoring
//! a classifier on them (accuracy, confusion matrix, dangerous errors), for `rappel classify
//! --score` and the trainer. A score never prints a reply's text.

use crate::domain::reply::model::CLASSES;
use crate::domain::reply::{Classification, Intent, Lang, dangerous};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;

/// One labelled reply.
#[derive(Debug, Clone)]
pub struct Example {
    pub lang: Lang,
    pub intent: Intent,
    pub text: String,
}

/// Reads `lang<TAB>intent<TAB>text` lines; `#` comments and the `lang\tintent\ttext` header
/// are skipped. Errors name the file and line.
pub fn read_corpus(path: &Path) -> Result<Vec<Example>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') || line.starts_with("lang\t") {
            continue;
        }
        let mut parts = line.splitn(3, '\t');
        let (Some(l), Some(k), Some(t)) = (parts.next(), parts.next(), parts.next()) else {
            bail!(
                "{}:{}: expected lang<TAB>intent<TAB>text",
                path.display(),
                i + 1
            );
        };
        let lang = Lang::parse(l)
            .with_context(|| format!("{}:{}: unknown lang '{l}'", path.display(), i + 1))?;
        let intent = Intent::parse(k)
            .with_context(|| format!("{}:{}: unknown intent '{k}'", path.display(), i + 1))?;
        out.push(Example {
            lang,
            intent,
            text: t.to_string(),
        });
    }
    Ok(out)
}

/// A classifier's score on a labelled corpus.
pub struct Score {
    pub accuracy: f64,
    pub confusion: BTreeMap<(Intent, Intent), usize>,
    pub dangerous: usize,
    pub n: usize,
}

pub fn score_of(confusion: BTreeMap<(Intent, Intent), usize>) -> Score {
    let n: usize = confusion.values().sum();
    let ok: usize = confusion
        .iter()
        .filter(|((t, g), _)| t == g)
        .map(|(_, c)| c)
        .sum();
    let n_dangerous = confusion
        .iter()
        .filter(|((t, g), _)| dangerous(*t, *g))
        .map(|(_, c)| c)
        .sum();
    Score {
        accuracy: if n == 0 { 0.0 } else { ok as f64 / n as f64 },
        confusion,
        dangerous: n_dangerous,
        n,
    }
}

/// The confusion matrix as text: rows are the truth, columns the classifier's answer.
pub fn confusion_table(s: &Score) -> String {
    let mut out = format!("{:<14}", "true \\ got");
    for c in CLASSES {
        out.push_str(&format!("{:>9}", &c.as_str()[..c.as_str().len().min(8)]));
    }
    out.push_str("   recall\n");
    for t in CLASSES {
        out.push_str(&format!("{:<14}", t.as_str()));
        let total: usize = CLASSES
            .iter()
            .map(|g| s.confusion.get(&(t, *g)).copied().unwrap_or(0))
            .sum();
        for g in CLASSES {
            out.push_str(&format!(
                "{:>9}",
                s.confusion.get(&(t, g)).copied().unwrap_or(0)
            ));
        }
        let ok = s.confusion.get(&(t, t)).copied().unwrap_or(0);
        out.push_str(&format!("   {ok}/{total}\n"));
    }
    out
}

/// The shipped classifier's score on `examples`, each in its own language (as a campaign's
/// locale gives it).
pub fn score(examples: &[Example]) -> Score {
    let mut confusion = BTreeMap::new();
    for e in examples {
        let got = classify_example(e).intent;
        *confusion.entry((e.intent, got)).or_default() += 1;
    }
    score_of(confusion)
}

fn classify_example(e: &Example) -> Classification {
    crate::domain::reply::classify(
        &e.text,
        Some(e.lang),
        &crate::domain::reply::Vocabulary::default(),
    )
}

/// `rappel classify --score FILE…`: the confusion matrix; with `errors`, also every
/// misclassified reply with the reason (for development files only: a held-out file is
/// scored, never read).
pub fn run_score(files: &[std::path::PathBuf], errors: bool) -> Result<()> {
    let mut examples = Vec::new();
    for f in files {
        examples.extend(read_corpus(f)?);
    }
    let s = score(&examples);
    let urgent_total: usize = CLASSES
        .iter()
        .map(|g| s.confusion.get(&(Intent::Urgent, *g)).copied().unwrap_or(0))
        .sum();
    let urgent_ok = s
        .confusion
        .get(&(Intent::Urgent, Intent::Urgent))
        .copied()
        .unwrap_or(0);
    super::outln!(
        "{} replies: accuracy {:.1} %, urgent recall {urgent_ok}/{urgent_total}, dangerous errors {}",
        s.n,
        s.accuracy * 100.0,
        s.dangerous
    )?;
    super::outln!("{}", confusion_table(&s))?;
    // Throughput on one thread, over these replies for about a second.
    let started = std::time::Instant::now();
    let mut n = 0usize;
    while started.elapsed().as_secs_f64() < 1.0 {
        for e in &examples {
            std::hint::black_box(classify_example(e));
            n += 1;
        }
    }
    super::outln!(
        "speed: {:.0} replies a second on one thread",
        n as f64 / started.elapsed().as_secs_f64()
    )?;
    if errors {
        for e in &examples {
            let c = classify_example(e);
            if c.intent != e.intent {
                print_miss(e, &c)?;
            }
        }
    }
    Ok(())
}

/// One misread reply: `!` when the mistake is dangerous, the truth, the answer, the text and
/// the reason (development corpora only).
pub fn print_miss(e: &Example, c: &Classification) -> Result<()> {
    super::outln!(
        "{}{:>13} -> {:<13} {:?}  [{}]",
        if dangerous(e.intent, c.intent) {
            "!"
        } else {
            " "
        },
        e.intent.as_str(),
        c.intent.as_str(),
        e.text,
        c.reason
    )
}
