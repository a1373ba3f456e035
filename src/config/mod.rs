//! Layered configuration: raw TOML layers, then one validation into typed settings.
//!
//! Layers, later wins: the copies of `default.toml`, `exams.toml`, `sites.toml` built into the
//! binary, each replaced or overlaid by the configuration directory's own file when it has one
//! (`default.toml` overlays key by key; `exams.toml` and `sites.toml` are catalogues and replace
//! the built-in ones), then `<RAPPEL_ENV>.toml` from the directory, then `RAPPEL__SECTION__KEY`
//! environment variables. Each layer is checked alone against the raw
//! schema (so a typo names its file, line and key), merged, and validated once into `Settings`
//! (time zones, windows, durations, phone numbers, cross references between sites, exams and
//! policies). Every error names the file or variable and the key. Secrets are `SecretString`
//! and never printed.
//!
//! Code map: `raw` is the serde schema of one layer, `settings` the typed result, `validate`
//! turns the one into the other; this file reads and merges the layers. The files below it never
//! import this one (no import cycle), so the typed settings are re-exported from here.

mod raw;
mod settings;
mod validate;

#[cfg(test)]
mod tests;

pub use settings::{
    ClockSettings, DOCUMENTS, DatabaseSettings, Exam, ExamFamily, FhirAuth, FhirSettings,
    ProviderKind, ServerSettings, Settings, Site, TwilioSettings, WorkerSettings,
};

use raw::RawConfig;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub const BUILTIN_DEFAULT: &str = include_str!("../../config/default.toml");
pub const BUILTIN_EXAMS: &str = include_str!("../../config/exams.toml");
pub const BUILTIN_SITES: &str = include_str!("../../config/sites.toml");

/// A configuration error: where (file or environment variable), which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub source: String,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(f, "{}: key `{}`: {}", self.source, self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------------------------
// Loading.

/// One source of configuration text: its name for errors and its content.
pub struct Layer {
    pub name: String,
    pub text: String,
}

/// How a file of the configuration directory combines with its built-in copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combine {
    /// Settings: the built-in file first, then the directory's over it, key by key (a
    /// `default.toml` with two keys changes those two).
    Overlay,
    /// A catalogue: the directory's file instead of the built-in one (a centre that lists its
    /// own sites wants only its sites, not the example ones beside them).
    Replace,
}

/// The files of a configuration directory, in layer order, with their built-in copies.
const FILES: [(&str, &str, Combine); 3] = [
    ("default.toml", BUILTIN_DEFAULT, Combine::Overlay),
    ("exams.toml", BUILTIN_EXAMS, Combine::Replace),
    ("sites.toml", BUILTIN_SITES, Combine::Replace),
];

fn builtin_layer(file: &str, text: &str) -> Layer {
    Layer {
        name: format!("builtin:config/{file}"),
        text: text.into(),
    }
}

/// The layers of a configuration directory over the built-in ones, or the built-in ones alone
/// when `dir` is None. Each of `default.toml`, `exams.toml`, `sites.toml` the directory holds
/// overlays (`default.toml`) or replaces (the catalogues) its built-in copy; an absent one is the
/// built-in copy; `<RAPPEL_ENV>.toml`, when present, comes last. A directory that does not exist
/// or holds none of these files is an error, not a silent fall-back to the built-in defaults.
pub fn read_layers(dir: Option<&Path>) -> Result<Vec<Layer>, ConfigError> {
    let Some(dir) = dir else {
        return Ok(FILES
            .iter()
            .map(|(file, text, _)| builtin_layer(file, text))
            .collect());
    };
    if !dir.is_dir() {
        return Err(ConfigError {
            source: dir.display().to_string(),
            key: String::new(),
            message: "not a configuration directory (it does not exist or is a file)".into(),
        });
    }
    let mut layers = Vec::new();
    let mut found = 0;
    for (file, builtin, combine) in FILES {
        match read_optional(&dir.join(file))? {
            Some(layer) => {
                found += 1;
                if combine == Combine::Overlay {
                    layers.push(builtin_layer(file, builtin));
                }
                layers.push(layer);
            }
            None => layers.push(builtin_layer(file, builtin)),
        }
    }
    let env_file = std::env::var("RAPPEL_ENV")
        .ok()
        .filter(|e| !e.is_empty())
        .map(|e| format!("{e}.toml"));
    if let Some(file) = &env_file {
        if let Some(layer) = read_optional(&dir.join(file))? {
            found += 1;
            layers.push(layer);
        }
    }
    if found == 0 {
        let mut names: Vec<&str> = FILES.iter().map(|(f, _, _)| *f).collect();
        names.extend(env_file.as_deref());
        return Err(ConfigError {
            source: dir.display().to_string(),
            key: String::new(),
            message: format!("holds no configuration file ({})", names.join(", ")),
        });
    }
    Ok(layers)
}

/// A file of the configuration directory as a layer, None when it does not exist.
fn read_optional(path: &Path) -> Result<Option<Layer>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(Layer {
            name: path.display().to_string(),
            text,
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError {
            source: path.display().to_string(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        }),
    }
}

/// The configuration directory to use: the one given, else `./config` when it holds any of
/// `default.toml`, `exams.toml`, `sites.toml`, else the built-in defaults (None).
pub fn config_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let p = PathBuf::from("config");
            FILES
                .iter()
                .any(|(file, _, _)| p.join(file).is_file())
                .then_some(p)
        }
    }
}

/// A validated configuration and what it was built from, for `check-config`.
pub struct Loaded {
    pub settings: Settings,
    /// The layers read, in order: `builtin:config/…` or a file's path.
    pub layers: Vec<String>,
    /// The `RAPPEL__…` environment variables applied, by name only (values may be secrets).
    pub env_keys: Vec<String>,
}

/// Load and validate: the layers of `dir` (see [`read_layers`]), then the process environment.
pub fn load(dir: Option<&Path>) -> Result<Loaded, ConfigError> {
    let layers = read_layers(dir)?;
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("RAPPEL__"))
        .collect();
    env.sort();
    let settings = load_from(&layers, &env)?;
    Ok(Loaded {
        settings,
        layers: layers.into_iter().map(|l| l.name).collect(),
        env_keys: env.into_iter().map(|(k, _)| k).collect(),
    })
}

/// Where each key was last set, to name the file in validation errors.
#[derive(Default)]
struct Origins(HashMap<String, String>);

impl Origins {
    fn record(&mut self, prefix: &str, value: &toml::Value, source: &str) {
        self.0.insert(prefix.to_string(), source.to_string());
        if let toml::Value::Table(t) = value {
            for (k, v) in t {
                self.record(&join(prefix, k), v, source);
            }
        }
    }

    fn of(&self, key: &str) -> String {
        let mut k = key.to_string();
        loop {
            if let Some(s) = self.0.get(&k) {
                return s.clone();
            }
            match k.rfind(['.', '[']) {
                Some(i) => k.truncate(i),
                None => return "configuration".into(),
            }
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn check_raw(value: toml::Value, source: &str) -> Result<RawConfig, ConfigError> {
    serde_path_to_error::deserialize::<_, RawConfig>(value).map_err(|e| ConfigError {
        source: source.to_string(),
        key: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

pub fn load_from(layers: &[Layer], env: &[(String, String)]) -> Result<Settings, ConfigError> {
    let mut merged = toml::Table::new();
    let mut origins = Origins::default();
    for layer in layers {
        let table: toml::Table = toml::from_str(&layer.text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|s| line_col(&layer.text, s.start))
                .unwrap_or((0, 0));
            ConfigError {
                source: format!("{}:{line}:{col}", layer.name),
                key: String::new(),
                message: e.message().to_string(),
            }
        })?;
        check_raw(toml::Value::Table(table.clone()), &layer.name)?;
        origins.record("", &toml::Value::Table(table.clone()), &layer.name);
        merge(&mut merged, table);
    }
    let mut env = env.to_vec();
    env.sort();
    for (name, raw) in &env {
        let path: Vec<String> = name
            .trim_start_matches("RAPPEL__")
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(ConfigError {
                source: format!("environment variable {name}"),
                key: String::new(),
                message: "expected RAPPEL__SECTION__KEY".into(),
            });
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut single = toml::Table::new();
        let mut cursor = &mut single;
        for p in &path[..path.len() - 1] {
            cursor = cursor
                .entry(p.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("just inserted a table");
        }
        cursor.insert(path[path.len() - 1].clone(), value);
        let source = format!("environment variable {name}");
        check_raw(toml::Value::Table(single.clone()), &source)?;
        origins.record("", &toml::Value::Table(single.clone()), &source);
        merge(&mut merged, single);
    }
    let raw = check_raw(toml::Value::Table(merged), "configuration")?;
    validate::validate(raw).map_err(|(key, message)| ConfigError {
        source: origins.of(&key),
        key,
        message,
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}
