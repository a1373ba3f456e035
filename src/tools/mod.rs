//! Tools around the product: the demo (a simulated campaign over a built-in day) and the
//! benchmark (`rappel bench`). They drive the same engine as the server; nothing imports them.

pub mod bench;
pub mod demo;

use crate::config::{self, Layer, Settings};
use anyhow::Result;
use std::path::PathBuf;

/// A fresh directory for a tool's database: `rappel-<tool>-<uuid>` in the temporary directory.
fn scratch_dir(tool: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rappel-{tool}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The built-in configuration with the tool's own layers on top (the environment is ignored, so
/// a run does not depend on the shell it starts from).
fn settings_with(extra: impl IntoIterator<Item = Layer>) -> Result<Settings> {
    let mut layers = config::read_layers(None).map_err(|e| anyhow::anyhow!("{e}"))?;
    layers.extend(extra);
    config::load_from(&layers, &[]).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A configuration layer named after what added it.
fn layer(name: &str, text: String) -> Layer {
    Layer {
        name: name.into(),
        text,
    }
}
