//! Reading an import file (`rappel import`): the bytes a spreadsheet or a program wrote, into
//! checked appointments, all or nothing.
//!
//! What a centre's files really look like decides what is accepted: a UTF-8 file with or without
//! a byte-order mark, the Windows-1252 (Latin-1) of a French Excel's "CSV (séparateur :
//! point-virgule)", or UTF-16 with its mark; the separator (`,`, `;` or tab) is sniffed from the
//! header line; columns Rappel does not use are ignored with a warning naming them; a JSON file
//! is an array of objects. Anything else is refused with its line (or item) and field, the first
//! [`MAX_REPORTED`] errors only, and nothing is written. Warnings (unknown exam codes,
//! appointments in the past, ignored columns, the encoding read) do not stop the import.

use super::{Appointment, AppointmentInput};
use crate::config::Settings;
use crate::domain::text::clip;
use chrono::{DateTime, Utc};
use encoding_rs::{UTF_16BE, UTF_16LE, WINDOWS_1252};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// Errors reported at most: past twenty, the first ones are what needs fixing.
const MAX_REPORTED: usize = 20;
/// Lines or items listed at most in one warning.
const MAX_LISTED: usize = 10;
/// A library's error message (serde, csv) is cut to this many characters: some quote the value.
const MESSAGE_MAX_CHARS: usize = 160;
/// Progress is reported every this many rows (a 20,000-row file: 40 updates).
const PROGRESS_EVERY: usize = 500;

/// A file's checked appointments, and what the user should know about it.
#[derive(Debug, Clone)]
pub struct Import {
    pub appointments: Vec<Appointment>,
    /// Printed, the import goes on: unknown exam codes, appointments in the past, ignored
    /// columns or keys, the encoding when it is not UTF-8.
    pub warnings: Vec<String>,
}

/// A rejected import: every error found (up to [`MAX_REPORTED`]), nothing written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .errors.join("\n"))]
pub struct ImportError {
    pub errors: Vec<String>,
}

/// How far the reading is: `done` rows of about `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// Parses a CSV or JSON import; `name` is used in messages (a file name), `now` tells which
/// appointments are in the past (a warning).
pub fn parse_import(
    name: &str,
    bytes: &[u8],
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Import, ImportError> {
    parse_import_with_progress(name, bytes, settings, now, &mut |_| {})
}

/// [`parse_import`], telling `progress` how far it is every few hundred rows.
pub fn parse_import_with_progress(
    name: &str,
    bytes: &[u8],
    settings: &Settings,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Import, ImportError> {
    let fail = |message: String| ImportError {
        errors: vec![format!("{name}: {message}")],
    };
    let (text, encoding) = decode(bytes).map_err(fail)?;
    let mut rows = Rows::new(name, settings);
    if let Some(encoding) = encoding {
        rows.warnings.push(format!(
            "{name}: read as {encoding} (the file is not UTF-8)"
        ));
    }
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(fail("the file is empty: no appointments".into()));
    }
    if is_json(name, trimmed) {
        read_json(trimmed, &mut rows, progress);
    } else {
        read_csv(&text, &mut rows, progress);
    }
    rows.finish(now)
}

/// Where a row is: a CSV line or a JSON item (both from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    Line(u64),
    Item(usize),
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Line(n) => write!(f, "line {n}"),
            Loc::Item(n) => write!(f, "item {n}"),
        }
    }
}

/// The rows read so far, with the errors and warnings found.
struct Rows<'a> {
    name: &'a str,
    settings: &'a Settings,
    rows: Vec<(Loc, Appointment)>,
    errors: Vec<String>,
    warnings: Vec<String>,
    /// Set when reading stopped at [`MAX_REPORTED`] errors.
    stopped: bool,
}

impl<'a> Rows<'a> {
    fn new(name: &'a str, settings: &'a Settings) -> Rows<'a> {
        Rows {
            name,
            settings,
            rows: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            stopped: false,
        }
    }

    fn error(&mut self, at: Option<Loc>, message: impl fmt::Display) {
        let name = self.name;
        self.errors.push(match at {
            Some(at) => format!("{name}: {at}: {message}"),
            None => format!("{name}: {message}"),
        });
    }

    fn warn(&mut self, message: impl fmt::Display) {
        self.warnings.push(format!("{}: {message}", self.name));
    }

    /// Checks one parsed row; true when reading should stop (too many errors).
    fn check(&mut self, at: Loc, input: &AppointmentInput) -> bool {
        match input.check(self.settings) {
            Ok(a) => self.rows.push((at, a)),
            Err(fe) => self.error(Some(at), format!("field `{}`: {}", fe.field, fe.message)),
        }
        self.full()
    }

    fn full(&mut self) -> bool {
        self.stopped = self.errors.len() >= MAX_REPORTED;
        self.stopped
    }

    /// Duplicates, then the warnings on the rows, then the verdict.
    fn finish(mut self, now: DateTime<Utc>) -> Result<Import, ImportError> {
        let mut seen: HashMap<(&str, &str), Loc> = HashMap::new();
        let mut twice = Vec::new();
        for (at, a) in &self.rows {
            if let Some(first) = seen.insert((&a.site_id, &a.external_id), *at) {
                twice.push(format!(
                    "{at}: appointment `{}` of site `{}` appears twice (also {first})",
                    a.external_id, a.site_id
                ));
            }
        }
        for message in twice {
            if self.errors.len() < MAX_REPORTED {
                self.error(None, message);
            }
        }
        if self.errors.is_empty() && self.rows.is_empty() {
            self.error(None, "no appointments in the file");
        }
        if !self.errors.is_empty() {
            if self.stopped {
                self.error(None, format!("stopped after {MAX_REPORTED} errors"));
            }
            return Err(ImportError {
                errors: self.errors,
            });
        }
        self.row_warnings(now);
        Ok(Import {
            appointments: self.rows.into_iter().map(|(_, a)| a).collect(),
            warnings: self.warnings,
        })
    }

    /// Unknown exam codes (default duration and policy, no preparation hint) and appointments
    /// already started (no confirmation will be sent), each listed once with its rows.
    fn row_warnings(&mut self, now: DateTime<Utc>) {
        let mut unknown: BTreeMap<&str, Vec<Loc>> = BTreeMap::new();
        let mut past = Vec::new();
        for (at, a) in &self.rows {
            if !self.settings.exams.contains_key(&a.exam_code) {
                unknown.entry(&a.exam_code).or_default().push(*at);
            }
            if a.starts_at < now && !a.cancelled {
                past.push(*at);
            }
        }
        let mut warnings = Vec::new();
        for (code, at) in unknown {
            warnings.push(format!(
                "exam code `{code}` is not in the configuration ({}): default duration and \
                 policy, no preparation instructions",
                list(&at)
            ));
        }
        if !past.is_empty() {
            warnings.push(format!(
                "{} appointment(s) already started ({}): no confirmation will be sent for them",
                past.len(),
                list(&past)
            ));
        }
        for w in warnings {
            self.warn(w);
        }
    }
}

/// "lines 3, 5 and 12 more": where a warning applies.
fn list(at: &[Loc]) -> String {
    let kind = match (at.first(), at.len()) {
        (Some(Loc::Line(_)), 1) => "line",
        (Some(Loc::Line(_)), _) => "lines",
        (_, 1) => "item",
        _ => "items",
    };
    let shown: Vec<String> = at
        .iter()
        .take(MAX_LISTED)
        .map(|l| match l {
            Loc::Line(n) => n.to_string(),
            Loc::Item(n) => n.to_string(),
        })
        .collect();
    let more = match at.len().saturating_sub(MAX_LISTED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!("{kind} {}{more}", shown.join(", "))
}

/// The text of the file, and the encoding it was read in when not UTF-8.
fn decode(bytes: &[u8]) -> Result<(Cow<'_, str>, Option<&'static str>), String> {
    const ZIP: &[u8] = b"PK\x03\x04";
    const OLE: &[u8] = b"\xD0\xCF\x11\xE0";
    if bytes.starts_with(ZIP) || bytes.starts_with(OLE) {
        return Err(
            "an Excel workbook (or another binary file), not CSV or JSON: in Excel, \
                    save it as \"CSV UTF-8\" or \"CSV (séparateur : point-virgule)\""
                .into(),
        );
    }
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return match std::str::from_utf8(rest) {
            Ok(text) => Ok((Cow::Borrowed(text), None)),
            Err(e) => Err(not_utf8(rest, e.valid_up_to())),
        };
    }
    for (mark, encoding) in [(b"\xFF\xFE", UTF_16LE), (b"\xFE\xFF", UTF_16BE)] {
        if let Some(rest) = bytes.strip_prefix(mark) {
            let (text, malformed) = encoding.decode_without_bom_handling(rest);
            if malformed {
                let at = text.find('\u{FFFD}').unwrap_or(0);
                let line = 1 + text[..at].matches('\n').count();
                return Err(format!(
                    "line {line}: bytes that are not {} although the file starts as such",
                    encoding.name()
                ));
            }
            return Ok((Cow::Owned(text.into_owned()), Some(encoding.name())));
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok((Cow::Borrowed(text), None)),
        // Accented letters written as UTF-8 elsewhere: a file pieced together from two sources.
        Err(e) if bytes.utf8_chunks().any(|c| !c.valid().is_ascii()) => {
            Err(not_utf8(bytes, e.valid_up_to()))
        }
        // No UTF-8 at all: the legacy code page of a French Windows (ISO-8859-1's superset).
        Err(_) => Ok((
            WINDOWS_1252.decode_without_bom_handling(bytes).0,
            Some("Windows-1252 (Latin-1)"),
        )),
    }
}

fn not_utf8(bytes: &[u8], at: usize) -> String {
    let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
    format!(
        "line {line}: byte 0x{:02X} is not UTF-8 while the rest of the file is: save the file \
         again as UTF-8",
        bytes[at]
    )
}

/// JSON when the name says so or the text starts like JSON (`[`, `{`, or a bare value such as
/// `null`); a CSV header never parses as JSON.
fn is_json(name: &str, text: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".json")
        || text.starts_with(['[', '{'])
        || serde_json::from_str::<Value>(text).is_ok()
}

fn read_json(text: &str, rows: &mut Rows<'_>, progress: &mut dyn FnMut(Progress)) {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let message = clip(&e.to_string(), MESSAGE_MAX_CHARS);
            rows.error(
                Some(Loc::Line(e.line() as u64)),
                format!("not valid JSON: {message}"),
            );
            return;
        }
    };
    let what = match &value {
        Value::Array(a) if a.is_empty() => "an empty array",
        Value::Array(_) => "",
        Value::Object(_) => "a JSON object",
        Value::Null => "`null`",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
    };
    let Value::Array(items) = value else {
        rows.error(
            None,
            format!("{what}: expected an array of appointments, [{{\"external_id\": …}}, …]"),
        );
        return;
    };
    if items.is_empty() {
        rows.error(None, "an empty array: no appointments in the file");
        return;
    }
    let total = items.len();
    let mut ignored = BTreeSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = Loc::Item(i + 1);
        if let Value::Object(fields) = &item {
            ignored.extend(
                fields
                    .keys()
                    .filter(|k| !AppointmentInput::FIELDS.contains(&k.as_str()))
                    .map(|k| format!("`{}`", clip(k, 40))),
            );
        }
        let stop = match serde_path_to_error::deserialize::<_, AppointmentInput>(item) {
            Ok(input) => rows.check(at, &input),
            Err(e) => {
                let message = clip(&e.inner().to_string(), MESSAGE_MAX_CHARS);
                match e.path().to_string().as_str() {
                    "." => rows.error(Some(at), message),
                    field => {
                        rows.error(Some(at), format!("field `{}`: {message}", clip(field, 40)))
                    }
                }
                rows.full()
            }
        };
        if stop {
            return;
        }
        if (i + 1) % PROGRESS_EVERY == 0 {
            progress(Progress { done: i + 1, total });
        }
    }
    progress(Progress { done: total, total });
    if !ignored.is_empty() {
        let keys: Vec<String> = ignored.into_iter().collect();
        rows.warn(format!(
            "key(s) {} ignored (Rappel does not use them)",
            keys.join(", ")
        ));
    }
}

/// The separator of the header line: the most frequent of `,`, `;` and tab outside quotes (a
/// French Excel writes `;`, its "Unicode text" a tab); `,` when none is there.
fn sniff_delimiter(text: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for b in text.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            _ if !quoted => {
                if let Some((_, n)) = counts.iter_mut().find(|(d, _)| *d == b) {
                    *n += 1;
                }
            }
            _ => {}
        }
    }
    counts
        .iter()
        .fold(
            (b',', 0),
            |best, &(d, n)| if n > best.1 { (d, n) } else { best },
        )
        .0
}

fn read_csv(text: &str, rows: &mut Rows<'_>, progress: &mut dyn FnMut(Progress)) {
    let delimiter = sniff_delimiter(text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = match reader.headers() {
        Ok(h) => csv::StringRecord::from(
            h.iter()
                .map(|c| c.trim_matches(['\u{feff}', ' ']).to_lowercase())
                .collect::<Vec<_>>(),
        ),
        Err(e) => {
            rows.error(Some(Loc::Line(1)), clip(&e.to_string(), MESSAGE_MAX_CHARS));
            return;
        }
    };
    if !check_header(&header, delimiter, rows) {
        return;
    }
    let total = text.matches('\n').count().max(1);
    let mut lines = LineCounter::new(text);
    let mut record = csv::StringRecord::new();
    let mut done = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = lines.line_at(e.position().map_or(0, |p| p.byte()));
                rows.error(
                    Some(Loc::Line(line)),
                    clip(&e.to_string(), MESSAGE_MAX_CHARS),
                );
                if rows.full() {
                    return;
                }
                continue;
            }
        }
        done += 1;
        if done % PROGRESS_EVERY == 0 {
            progress(Progress { done, total });
        }
        let line = lines.line_at(record.position().map_or(0, |p| p.byte()));
        if read_record(&mut record, Loc::Line(line), &header, rows) {
            return;
        }
    }
    progress(Progress { done, total: done });
}

/// The line of a record, counted forwards from its byte offset: the csv reader's own line
/// numbers are one short after `\r\n` line ends (Excel's).
struct LineCounter<'a> {
    text: &'a [u8],
    byte: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> LineCounter<'a> {
        LineCounter {
            text: text.as_bytes(),
            byte: 0,
            line: 1,
        }
    }

    /// The line of the first byte at or after `byte` that does not end a line (the reader puts a
    /// record's start before the blank lines and the `\n` of a `\r\n` in front of it); `byte`
    /// never goes backwards.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut to = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .clamp(self.byte, self.text.len());
        while to < self.text.len() && matches!(self.text[to], b'\r' | b'\n') {
            to += 1;
        }
        self.line += self.text[self.byte..to]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.byte = to;
        self.line
    }
}

/// Checks the header line: every required column once; columns Rappel does not use are
/// ignored with a warning. False when the file cannot be read on.
fn check_header(header: &csv::StringRecord, delimiter: u8, rows: &mut Rows<'_>) -> bool {
    let line1 = Some(Loc::Line(1));
    let columns: Vec<&str> = header.iter().collect();
    let missing: Vec<String> = AppointmentInput::REQUIRED
        .iter()
        .filter(|f| !columns.contains(f))
        .map(|f| format!("`{f}`"))
        .collect();
    if !missing.is_empty() {
        let found = clip(&columns.join(&(delimiter as char).to_string()), 80);
        rows.error(
            line1,
            format!(
                "missing column(s) {} in the header line `{found}` (the first line names the \
                 columns: {}, separated by `,` or `;`)",
                missing.join(", "),
                AppointmentInput::FIELDS.join(", "),
            ),
        );
        return false;
    }
    let mut twice = BTreeSet::new();
    for (i, c) in columns.iter().enumerate() {
        if AppointmentInput::FIELDS.contains(c) && columns[..i].contains(c) {
            twice.insert(format!("`{c}`"));
        }
    }
    if !twice.is_empty() {
        let twice: Vec<String> = twice.into_iter().collect();
        rows.error(
            line1,
            format!("column(s) {} appear twice", twice.join(", ")),
        );
        return false;
    }
    let unknown: Vec<String> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !AppointmentInput::FIELDS.contains(c))
        .map(|(i, c)| match *c {
            "" => format!("column {} (no name)", i + 1),
            c => format!("`{}`", clip(c, 40)),
        })
        .collect();
    if !unknown.is_empty() {
        rows.warn(format!(
            "line 1: {} ignored (Rappel does not use them)",
            unknown.join(", ")
        ));
    }
    true
}

/// One data line; true when reading should stop (too many errors).
fn read_record(
    record: &mut csv::StringRecord,
    line: Loc,
    header: &csv::StringRecord,
    rows: &mut Rows<'_>,
) -> bool {
    // A spreadsheet's empty row (`;;;;;;`) is no appointment.
    if record.iter().all(str::is_empty) {
        return false;
    }
    // Trailing empty cells past the header are a spreadsheet's; anything else shifted columns.
    let extra = record.iter().skip(header.len()).any(|f| !f.is_empty());
    if record.len() < header.len() || extra {
        rows.error(
            Some(line),
            format!(
                "{} fields where the header has {} (a value with the separator in it must be \
                 in double quotes)",
                record.len(),
                header.len()
            ),
        );
        return rows.full();
    }
    record.truncate(header.len());
    match record.deserialize::<AppointmentInput>(Some(header)) {
        Ok(input) => rows.check(line, &input),
        Err(e) => {
            let (field, message) = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => (
                    err.field()
                        .and_then(|i| header.get(i as usize))
                        .map(|f| format!("field `{f}`: "))
                        .unwrap_or_default(),
                    err.kind().to_string(),
                ),
                _ => (String::new(), e.to_string()),
            };
            let message = clip(&message, MESSAGE_MAX_CHARS);
            rows.error(Some(line), format!("{field}{message}"));
            rows.full()
        }
    }
}

#[cfg(test)]
mod tests;
