//! The call's first question, "am I speaking with Jeanne D.?", answered by voice (a
//! `SpeechResult`) or by keypad. Only an explicit "no / wrong number / I don't know this
//! person" is a wrong person; someone who knows the patient (a spouse, a parent, a carer) may
//! answer for them; a bare "yes", "c'est moi", "lui-même", "speaking" is the patient; anything
//! else is unclear (the call asks once more).
//!
//! Order: a relative's phrase, then a claim of identity ("c'est bien moi", "speaking"), then a
//! refusal, then a yes; words are matched whole after the
//! classifier's normalisation (lowercase, accents and elisions undone: "c'est" is "c'est").

use super::normalize::prepare;
use std::sync::OnceLock;

/// Who answered the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The patient.
    Patient,
    /// Someone who knows the patient and answers for them.
    Relative,
    /// Not the patient, and does not know them.
    NotThePatient,
    /// Cannot tell.
    Unclear,
}

impl Identity {
    pub fn as_str(self) -> &'static str {
        match self {
            Identity::Patient => "patient",
            Identity::Relative => "relative",
            Identity::NotThePatient => "not_the_patient",
            Identity::Unclear => "unclear",
        }
    }

    /// The call goes on to the menu.
    pub fn goes_on(self) -> bool {
        matches!(self, Identity::Patient | Identity::Relative)
    }
}

/// Someone close to the patient: "c'est sa femme", "je suis son fils", "I'm his carer".
const RELATIVE: &[&str] = &[
    "sa femme",
    "son mari",
    "sa fille",
    "son fils",
    "sa mere",
    "sa maman",
    "son pere",
    "son papa",
    "sa soeur",
    "son frere",
    "sa compagne",
    "son compagnon",
    "sa conjointe",
    "son conjoint",
    "sa petite fille",
    "son petit fils",
    "sa belle fille",
    "son beau fils",
    "sa niece",
    "son neveu",
    "sa tante",
    "son oncle",
    "sa voisine",
    "son voisin",
    "sa tutrice",
    "son tuteur",
    "sa curatrice",
    "son curateur",
    "sa copine",
    "son copain",
    "aide a domicile",
    "auxiliaire de vie",
    "aide soignante",
    "aide soignant",
    "infirmiere",
    "infirmier",
    "ehpad",
    "maison de retraite",
    "je vous le passe",
    "je vous la passe",
    "je m'occupe de",
    "qui m'occupe de",
    "moi c'est sa",
    "moi c'est son",
    "c'est pour ma fille",
    "c'est pour mon fils",
    "c'est pour mon mari",
    "c'est pour ma femme",
    "c'est pour ma mere",
    "c'est pour mon pere",
    "il n'est pas là",
    "elle n'est pas là",
    "il est pas la",
    "elle est pas la",
    "his wife",
    "her husband",
    "his husband",
    "her wife",
    "his son",
    "her son",
    "his daughter",
    "her daughter",
    "his mum",
    "her mum",
    "his mom",
    "her mom",
    "his mother",
    "her mother",
    "his father",
    "her father",
    "his dad",
    "her dad",
    "his partner",
    "her partner",
    "his carer",
    "her carer",
    "his caregiver",
    "her caregiver",
    "his nurse",
    "her nurse",
    "his sister",
    "her sister",
    "his brother",
    "her brother",
    "i'm his",
    "i'm her",
    "i am his",
    "i am her",
    "this is his",
    "this is her",
    "it's his",
    "it's her",
    "my son",
    "my daughter",
    "my boy",
    "my girl",
    "my husband",
    "my wife",
    "my mum",
    "my mom",
    "my mother",
    "my father",
    "my dad",
    "i look after",
    "he's not here",
    "she's not here",
    "he's at work",
    "she's at work",
    "he's asleep",
    "she's asleep",
    "can i take a message",
];

/// An explicit "no, not me, wrong number, unknown here".
const NOT_THE_PATIENT: &[&str] = &[
    "non",
    "no",
    "nope",
    "nan",
    "pas moi",
    "c'est pas moi",
    "ce n'est pas moi",
    "mauvais numero",
    "faux numero",
    "trompez de numero",
    "trompe de numero",
    "vous vous trompez",
    "erreur",
    "connais pas",
    "connait pas",
    "connais personne",
    "personne de ce nom",
    "pas de",
    "n'habite pas",
    "habite pas ici",
    "wrong number",
    "wrong person",
    "not me",
    "never heard",
    "don't know",
    "do not know",
    "no one",
    "nobody",
    "no such",
    "not him",
    "not her",
    "doesn't live",
    "does not live",
];

/// Answers that claim the identity itself (not a bare yes): they beat a "no" said with them.
const CLAIMS: &[&str] = &[
    "c'est moi",
    "c'est bien moi",
    "moi-même",
    "lui-même",
    "elle-même",
    "en personne",
    "speaking",
    "that's me",
    "it's me",
    "this is me",
    "this is he",
    "this is she",
    "himself",
    "herself",
];

/// Yes, it is me.
const PATIENT: &[&str] = &[
    "oui",
    "ouais",
    "ouai",
    "ouep",
    "si",
    "yes",
    "yeah",
    "yep",
    "yup",
    "ya",
    "mhm",
    "c'est moi",
    "c'est bien moi",
    "moi meme",
    "lui meme",
    "elle meme",
    "c'est elle",
    "c'est lui",
    "en personne",
    "c'est bien ca",
    "exact",
    "exactement",
    "tout a fait",
    "absolument",
    "bien sur",
    "voila",
    "j'écoute",
    "speaking",
    "that's me",
    "it's me",
    "this is me",
    "this is he",
    "this is she",
    "himself",
    "herself",
    "correct",
    "that's right",
    "right",
    "sure",
    "go on",
    "go ahead",
    "i am",
];

/// The lists, normalised once like the answers (so "c'est moi" in a list is the "c'est
/// moi" of a transcript, however the normaliser spells it).
fn phrases() -> &'static [Vec<Vec<String>>; 4] {
    static PHRASES: OnceLock<[Vec<Vec<String>>; 4]> = OnceLock::new();
    PHRASES.get_or_init(|| {
        let norm = |list: &[&str]| -> Vec<Vec<String>> {
            list.iter()
                .map(|p| prepare(p).tokens.into_iter().map(|t| t.word).collect())
                .collect()
        };
        [
            norm(RELATIVE),
            norm(NOT_THE_PATIENT),
            norm(PATIENT),
            norm(CLAIMS),
        ]
    })
}

fn contains(words: &[&str], phrase: &[String]) -> bool {
    !phrase.is_empty()
        && words
            .windows(phrase.len())
            .any(|w| w.iter().eq(phrase.iter()))
}

/// Who answered, from what they said (or a key: 1 yes, 2 no).
pub fn identity(answer: &str) -> Identity {
    let prepared = prepare(answer);
    let words: Vec<&str> = prepared.tokens.iter().map(|t| t.word.as_str()).collect();
    match words.as_slice() {
        ["1"] => return Identity::Patient,
        ["2"] => return Identity::NotThePatient,
        _ => {}
    }
    let [relative, not_the_patient, patient, claims] = phrases();
    let said = |list: &[Vec<String>]| list.iter().any(|p| contains(&words, p));
    // "non non, c'est bien moi": a claim of identity beats a bare "no".
    let claims_identity = said(claims);
    if said(relative) {
        Identity::Relative
    } else if claims_identity {
        Identity::Patient
    } else if said(not_the_patient) {
        Identity::NotThePatient
    } else if said(patient) {
        Identity::Patient
    } else {
        Identity::Unclear
    }
}
