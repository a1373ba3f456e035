//! The medical safety net's word lists: medicines, devices, conditions, symptoms and body parts,
//! from real lists (each file's header names its sources), in French and English. A reply that
//! names any of them is read by a person first ([`super::types::Intent::Urgent`]), whatever
//! else it says and even negated ("je n'ai pas de pacemaker" is still for a nurse to read).
//!
//! Entries are normalised like replies (lowercase, accents and elisions undone, SMS spellings
//! mapped), so "Préviscan", "préviscan" and "previscan" are one entry, and matched as whole
//! words: "pile" the pacemaker only as the listed phrases ("pile au coeur", "pile cardiaque").

use super::normalize::prepare;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Each list and the word its hits are reported with.
const LISTS: [(&str, &str); 5] = [
    ("medicine", include_str!("lists/medicines.txt")),
    ("device", include_str!("lists/devices.txt")),
    ("condition", include_str!("lists/conditions.txt")),
    ("symptom", include_str!("lists/symptoms.txt")),
    ("body", include_str!("lists/body.txt")),
];

pub(super) struct Entry {
    pub(super) words: Vec<String>,
    pub(super) list: &'static str,
}

pub(super) struct Lists {
    pub(super) entries: Vec<Entry>,
    pub(super) by_first: HashMap<String, Vec<usize>>,
}

/// The lists, normalised once.
pub(super) fn lists() -> &'static Lists {
    static LISTS_INDEX: OnceLock<Lists> = OnceLock::new();
    LISTS_INDEX.get_or_init(|| {
        let mut entries = Vec::new();
        let mut by_first: HashMap<String, Vec<usize>> = HashMap::new();
        for (list, text) in LISTS {
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let words: Vec<String> = prepare(line).tokens.into_iter().map(|t| t.word).collect();
                let Some(first) = words.first() else {
                    continue;
                };
                by_first
                    .entry(first.clone())
                    .or_default()
                    .push(entries.len());
                entries.push(Entry { words, list });
            }
        }
        Lists { entries, by_first }
    })
}

/// The list a phrase (its normalised words, space-separated) comes from, if any.
pub(super) fn list_of(phrase: &str) -> Option<&'static str> {
    let l = lists();
    let first = phrase.split(' ').next()?;
    l.by_first.get(first)?.iter().find_map(|&e| {
        let entry = &l.entries[e];
        (entry.words.join(" ") == phrase).then_some(entry.list)
    })
}
