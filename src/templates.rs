//! Message and voice templates (minijinja), per locale: `templates/<locale>/<name>.txt`.
//!
//! The built-in set is compiled in; a `templates.dir` replaces any of them at start-up, so a
//! centre edits wording without a rebuild. Messages carry the minimum: centre name, date, time,
//! and a preparation hint only when the site opts in (`show_preparation`). SMS cost is reported
//! per template: GSM-7 fits 160 characters in one segment (153 per part when split), while one
//! character outside it (ê, ç, an emoji) switches the whole message to UCS-2: 70 per segment,
//! 67 per part.
//!
//! The voice script is templates too ([`VOICE_NAMES`], `call_*`): every word a caller hears
//! comes from here, rendered with the same [`MessageContext`] (plus the `first_name` the
//! identity check asks about, and the `spell` filter that reads a number digit by digit).

use crate::config::{Exam, Site};
use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Utc};
use minijinja::Environment;
use serde::Serialize;
use std::path::Path;

pub const LOCALES: [&str; 2] = ["fr", "en"];

/// Names kept for policies: the template of a call step (`call` unless the policy names one) is
/// the call's menu, which is also what the sandbox records as the call's body.
const ALIASES: [(&str, &str); 1] = [("call", "call_menu")];

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[
            $((concat!("fr/", $name), include_str!(concat!("../templates/fr/", $name, ".txt"))),)*
            $((concat!("en/", $name), include_str!(concat!("../templates/en/", $name, ".txt"))),)*
        ]
    };
}

/// Every built-in template, named once: the message templates, then the call script.
macro_rules! template_names {
    (messages: [$($m:literal),* $(,)?], voice: [$($v:literal),* $(,)?] $(,)?) => {
        /// Templates sent as messages (SMS, WhatsApp).
        pub const NAMES: &[&str] = &[$($m),*];
        /// The call script, one prompt per template, in the order a call can reach them.
        pub const VOICE_NAMES: &[&str] = &[$($v),*];
        const BUILTIN: &[(&str, &str)] = builtin![$($m,)* $($v),*];
    };
}

template_names! {
    messages: [
        "request",
        "nudge",
        "ack_confirmed",
        "ack_cancelled",
        "ack_reschedule",
        "ack_holding",
        "ack_opt_out",
        "ack_pending_confirm",
        "ack_pending_cancel",
        "ack_agenda_failed",
    ],
    voice: [
        // Who answers: the only prompt before the identity is confirmed (no appointment detail).
        "call_identity",
        // The identity answer was not understood: asked once more (still no detail).
        "call_identity_again",
        // No key and no speech before the identity prompt timed out.
        "call_not_heard",
        // An explicit no (2, "wrong number", "not me") at the identity check.
        "call_wrong_person",
        // The appointment and the keys (1 confirm, 2 cancel, 3 call back, star repeat).
        "call_menu",
        "call_confirmed",
        // 2 at the menu: a second 2 is asked before cancelling.
        "call_cancel_check",
        "call_cancelled",
        "call_callback",
        // An answering machine: no health data, the centre's number read digit by digit.
        "call_voicemail",
    ],
}

pub struct Templates {
    env: Environment<'static>,
    /// Where each template came from, for `check-config`.
    pub sources: Vec<(String, String)>,
}

/// One appointment as a message shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ApptView {
    pub date: String,
    pub time: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageContext {
    pub centre: String,
    pub centre_phone: String,
    pub date: String,
    pub time: String,
    pub appointments: Vec<ApptView>,
    pub preparation: String,
    pub late: bool,
    /// First name and initial of the surname ("Jeanne D."), asked about by the call's identity
    /// check only; empty in messages, which never name the patient.
    pub first_name: String,
}

impl MessageContext {
    /// The context of one appointment of `site` starting at `start`, in `locale`: centre, its
    /// number, date and time; no list, no preparation, not late (callers add what they need).
    pub fn new(site: &Site, locale: &str, start: DateTime<Utc>) -> MessageContext {
        let (date, time) = date_time(site, locale, start);
        MessageContext {
            centre: site.name.clone(),
            centre_phone: site
                .phone
                .as_ref()
                .map(|p| p.as_e164().to_string())
                .unwrap_or_default(),
            date,
            time,
            appointments: Vec::new(),
            preparation: String::new(),
            late: false,
            first_name: String::new(),
        }
    }
}

const FR_DAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];
const FR_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// "mardi 24 novembre" / "Tuesday 24 November", and "14:30", in the site's time zone.
pub fn date_time(site: &Site, locale: &str, at: DateTime<Utc>) -> (String, String) {
    let local = at.with_timezone(&site.tz);
    let wd = local.weekday().num_days_from_monday() as usize;
    let date = if locale == "en" {
        local.format("%A %-d %B").to_string()
    } else {
        format!(
            "{} {} {}",
            FR_DAYS[wd],
            local.day(),
            FR_MONTHS[local.month0() as usize]
        )
    };
    (date, local.format("%H:%M").to_string())
}

/// The preparation hint of an exam, short, in the patient's language.
pub fn preparation(exam: &Exam, locale: &str) -> String {
    let mut parts = Vec::new();
    let en = locale == "en";
    if exam.fasting_hours > 0 {
        parts.push(if en {
            format!("Nothing to eat {} h before.", exam.fasting_hours)
        } else {
            format!("A jeun {} h avant.", exam.fasting_hours)
        });
    }
    if exam.creatinine {
        parts.push(if en {
            "Bring a recent creatinine test.".to_string()
        } else {
            "Apportez une créatininémie récente.".to_string()
        });
    }
    if exam.mri_safety {
        parts.push(if en {
            "Tell us about any implant or pacemaker.".to_string()
        } else {
            "Signalez tout implant ou pacemaker.".to_string()
        });
    }
    if exam.arrive_early_min > 0 {
        parts.push(if en {
            format!("Arrive {} min early.", exam.arrive_early_min)
        } else {
            format!("Arrivez {} min avant.", exam.arrive_early_min)
        });
    }
    parts.join(" ")
}

impl Templates {
    /// The built-in templates, each replaced by `<dir>/<locale>/<name>.txt` when that exists.
    pub fn load(dir: Option<&Path>) -> Result<Templates> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(false);
        env.add_filter("spell", spell);
        let mut sources = Vec::new();
        for (name, text) in BUILTIN {
            let (text, source) = match dir {
                Some(d) => {
                    let path = d.join(format!("{name}.txt"));
                    match std::fs::read_to_string(&path) {
                        Ok(t) => (t, path.display().to_string()),
                        Err(_) => (text.to_string(), "built-in".to_string()),
                    }
                }
                None => (text.to_string(), "built-in".to_string()),
            };
            env.add_template_owned(name.to_string(), text.trim_end().to_string())
                .with_context(|| format!("template {name} ({source})"))?;
            sources.push((name.to_string(), source));
        }
        Ok(Templates { env, sources })
    }

    pub fn render(&self, locale: &str, name: &str, ctx: &MessageContext) -> Result<String> {
        let locale = if LOCALES.contains(&locale) {
            locale
        } else {
            "fr"
        };
        let name = ALIASES
            .iter()
            .find(|(alias, _)| *alias == name)
            .map_or(name, |(_, target)| target);
        let t = self
            .env
            .get_template(&format!("{locale}/{name}"))
            .with_context(|| format!("no template {locale}/{name}"))?;
        Ok(t.render(ctx)?)
    }
}

/// The `spell` filter: the digits of a phone number one by one ("+33 1 42" → "3 3 1 4 2"), so
/// that a voice reads them out instead of saying a large number.
fn spell(number: &str) -> String {
    number
        .chars()
        .filter(char::is_ascii_digit)
        .map(String::from)
        .collect::<Vec<_>>()
        .join(" ")
}

/// SMS encoding and segment count of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    pub gsm7: bool,
    pub units: usize,
    pub segments: usize,
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

pub fn segments(text: &str) -> Segments {
    let mut units: usize = 0;
    let mut gsm7 = true;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            units += 1;
        } else if GSM7_EXTENDED.contains(c) {
            units += 2;
        } else {
            gsm7 = false;
            break;
        }
    }
    if gsm7 {
        let segments = if units <= 160 { 1 } else { units.div_ceil(153) };
        Segments {
            gsm7,
            units,
            segments,
        }
    } else {
        let units = text.encode_utf16().count();
        let segments = if units <= 70 { 1 } else { units.div_ceil(67) };
        Segments {
            gsm7,
            units,
            segments,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_french_with_e_acute_stays_in_gsm7() {
        let s = segments("Répondez 1 pour confirmer, à demain.");
        assert!(s.gsm7);
        assert_eq!(s.segments, 1);
    }

    #[test]
    fn one_e_circumflex_switches_to_ucs2_and_costs_more_segments() {
        let text = "Vous êtes attendu ".repeat(5);
        let s = segments(&text);
        assert!(!s.gsm7);
        assert_eq!(s.units, 90);
        assert_eq!(s.segments, 2);
    }

    #[test]
    fn a_long_gsm7_message_splits_into_153_character_parts() {
        let s = segments(&"a".repeat(307));
        assert_eq!(s.segments, 3);
        let euro = segments("€");
        assert_eq!(euro.units, 2);
    }

    fn full_context() -> MessageContext {
        MessageContext {
            centre: "Imagerie".into(),
            centre_phone: "+33142000000".into(),
            date: "mardi 24 novembre".into(),
            time: "14:30".into(),
            appointments: vec![],
            preparation: String::new(),
            late: false,
            first_name: "Jeanne D.".into(),
        }
    }

    #[test]
    fn builtin_templates_render_with_a_full_context() {
        let t = Templates::load(None).unwrap();
        let ctx = full_context();
        for locale in LOCALES {
            for name in NAMES {
                let out = t.render(locale, name, &ctx).unwrap();
                assert!(out.contains("Imagerie"), "{locale}/{name}: {out}");
            }
        }
    }

    #[test]
    fn every_voice_prompt_renders_in_french_and_in_english() {
        let t = Templates::load(None).unwrap();
        let ctx = full_context();
        for locale in LOCALES {
            for name in VOICE_NAMES {
                let out = t
                    .render(locale, name, &ctx)
                    .unwrap_or_else(|e| panic!("{locale}/{name}: {e:#}"));
                assert!(!out.trim().is_empty(), "{locale}/{name} is empty");
                assert!(!out.contains('{'), "{locale}/{name}: {out}");
            }
            let identity = t.render(locale, "call_identity", &ctx).unwrap();
            assert!(identity.contains("Jeanne D."), "{identity}");
            assert!(
                !identity.contains("14:30"),
                "no detail before the identity check"
            );
            let voicemail = t.render(locale, "call_voicemail", &ctx).unwrap();
            assert!(voicemail.contains("3 3 1 4 2 0 0 0 0 0 0"), "{voicemail}");
            assert!(!voicemail.contains("14:30"), "no detail on a voicemail");
        }
        let fr = t.render("fr", "call_menu", &ctx).unwrap();
        assert!(
            fr.starts_with("Votre rendez-vous est le mardi 24 novembre à 14:30."),
            "{fr}"
        );
    }

    #[test]
    fn a_call_step_template_is_the_call_menu() {
        let t = Templates::load(None).unwrap();
        let ctx = full_context();
        for locale in LOCALES {
            assert_eq!(
                t.render(locale, "call", &ctx).unwrap(),
                t.render(locale, "call_menu", &ctx).unwrap()
            );
        }
    }

    #[test]
    fn a_templates_directory_replaces_one_prompt_and_keeps_the_others() {
        let dir = std::env::temp_dir().join(format!("rappel-templates-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("en")).unwrap();
        std::fs::write(
            dir.join("en/call_confirmed.txt"),
            "All set at {{ centre }}.\n",
        )
        .unwrap();
        let t = Templates::load(Some(&dir)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let ctx = full_context();
        assert_eq!(
            t.render("en", "call_confirmed", &ctx).unwrap(),
            "All set at Imagerie."
        );
        assert_eq!(
            t.render("fr", "call_confirmed", &ctx).unwrap(),
            "Merci, votre rendez-vous est confirmé. Au revoir."
        );
    }
}
