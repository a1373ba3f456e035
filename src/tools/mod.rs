//! Tools around the product: the demo (a simulated campaign over a built-in day) and the
//! benchmark (`rappel bench`). They drive the same engine as the server; nothing imports them
//! but the command line, which also prints through [`outln!`] here.

pub mod bench;
pub mod corpus;
pub mod demo;
#[cfg(feature = "train")]
pub mod train;

use crate::config::{self, Layer, Settings};
use anyhow::Result;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Standard output was closed by its reader (`rappel check-config | head -1`): the command
/// stops there, quietly and successfully, instead of panicking as `println!` does.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// A write error on standard output: [`StdoutClosed`] for a closed pipe, else the error itself.
pub fn stdout_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        anyhow::Error::new(StdoutClosed)
    } else {
        anyhow::Error::new(e).context("writing to standard output")
    }
}

/// Writes one line on a locked standard output (what [`outln!`] calls).
pub fn write_line(args: std::fmt::Arguments<'_>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{args}").map_err(stdout_error)
}

/// `println!` that returns an error instead of panicking when the reader has gone:
/// `outln!("{x}")?`.
macro_rules! outln {
    () => {
        $crate::tools::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::tools::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// A fresh directory for a tool's database: `rappel-<tool>-<uuid>` in the temporary directory.
fn scratch_dir(tool: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rappel-{tool}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The configuration directory's layers (`--config`, else `./config` when present, else the
/// built-in files), then the tool's own layers on top (its database, …). The environment is
/// ignored, so a run does not depend on the shell it starts from (a `RAPPEL__DATABASE__URL`
/// meant for production never reaches a demo).
fn settings_with(
    config_dir: Option<&Path>,
    extra: impl IntoIterator<Item = Layer>,
) -> Result<Settings> {
    let dir = config::config_dir(config_dir);
    let mut layers =
        config::read_layers(dir.as_deref()).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    layers.extend(extra);
    config::load_from(&layers, &[]).map_err(|e| anyhow::anyhow!("configuration: {e}"))
}

/// A configuration layer named after what added it.
fn layer(name: &str, text: String) -> Layer {
    Layer {
        name: name.into(),
        text,
    }
}
