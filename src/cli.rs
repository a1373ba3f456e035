//! The command line: one binary, roles and tools as subcommands.

use crate::app::{self, Roles};
use crate::config::{self, Settings};
use crate::domain::reply::{self, Lang};
use crate::templates::{self, Templates};
use crate::tools::{StdoutClosed, outln};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "rappel",
    version,
    about = "Appointment-confirmation campaigns for imaging centres"
)]
pub struct Cli {
    /// Configuration directory; its files overlay (default.toml, <RAPPEL_ENV>.toml) or replace
    /// (sites.toml, exams.toml) the built-in ones, and absent files are the built-in ones
    /// (default: ./config when it holds any of them, else the built-in files alone).
    #[arg(long, global = true, env = "RAPPEL_CONFIG_DIR")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (admin API, webhooks, /healthz) and, unless --no-worker, the worker.
    Serve {
        /// Only the HTTP server; run `rappel worker` processes beside it.
        #[arg(long)]
        no_worker: bool,
    },
    /// Run only the worker: planner, step dispatch, agenda outbox.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Import appointments into the built-in agenda from a CSV or JSON file (all or nothing).
    Import {
        /// The file (CSV with a header line, or a JSON array).
        file: PathBuf,
    },
    /// Run a whole day of a two-site imaging group on a temporary database, accelerated.
    ///
    /// Uses the sites, exams and policies of --config (the built-in two-site group without one),
    /// with the demo's own settings on top: a temporary SQLite database, the sandbox provider, a
    /// simulated clock, and with --agenda fhir the first site's agenda on the FHIR server.
    /// RAPPEL__… environment variables are ignored.
    Demo {
        /// Seed of the simulated patients.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Where the first site's agenda lives: builtin, or fhir (needs --fhir-url).
        #[arg(long, default_value = "builtin", value_parser = ["builtin", "fhir"])]
        agenda: String,
        /// FHIR R4 base URL for --agenda fhir; the demo creates its appointments there.
        #[arg(long)]
        fhir_url: Option<String>,
    },
    /// Measure dispatch throughput, reply latency and memory; prints a final JSON line.
    ///
    /// Uses the sites, exams, policies and worker settings of --config with the bench's own on
    /// top: its database, batches of 1,000, and the sandbox (with --provider twilio-fake, a
    /// loopback Twilio; never a configured account). The appointments are seeded at site
    /// paris-nord (else the configuration's first site). RAPPEL__… environment variables are
    /// ignored.
    Bench {
        /// Appointments to seed.
        #[arg(long, default_value_t = 100_000)]
        appointments: usize,
        /// Database URL (default: a temporary SQLite file).
        #[arg(long, env = "RAPPEL_BENCH_DATABASE_URL")]
        database: Option<String>,
        /// Provider: sandbox, or twilio-fake (the real Twilio client against a loopback fake).
        #[arg(long, default_value = "sandbox")]
        provider: String,
        /// Replies to time for the latency figures.
        #[arg(long, default_value_t = 2_000)]
        replies: usize,
    },
    /// Classify replies read one per line on standard input; one JSON object per line out.
    Classify {
        /// Force the language instead of detecting it.
        #[arg(long, value_parser = ["fr", "en"])]
        lang: Option<String>,
        /// Add this site's own vocabulary (`vocabulary.<intent>` in its configuration).
        #[arg(long)]
        site: Option<String>,
        /// Score the classifier on labelled corpus files (TSV: lang, intent, text) instead:
        /// accuracy, confusion matrix, dangerous errors (no reply text is printed).
        #[arg(long, num_args = 1.., value_name = "FILE")]
        score: Vec<PathBuf>,
        /// With --score: also print each misclassified reply and the reason.
        #[arg(long, requires = "score")]
        errors: bool,
    },
    /// Validate the configuration and the templates; print SMS encoding and segments.
    CheckConfig,
    /// Train the reply classifier's model on labelled corpus files (lang, intent, text) and
    /// write the model file (built with the `train` feature: scripts/train_classifier.sh).
    #[cfg(feature = "train")]
    TrainClassifier {
        /// Corpus files (TSV: lang, intent, text; `#` comments).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the model.
        #[arg(long, default_value = "src/domain/reply/model.tsv")]
        out: PathBuf,
        /// Also report a k-fold cross-validation of rules and model on the corpus.
        #[arg(long)]
        folds: Option<usize>,
        /// L2 penalty.
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// With --folds: print every reply a fold got wrong (development corpora only).
        #[arg(long, requires = "folds")]
        errors: bool,
    },
}

pub fn run(cli: Cli) -> ExitCode {
    let quiet = matches!(
        cli.command,
        Command::Demo { .. }
            | Command::Bench { .. }
            | Command::Classify { .. }
            | Command::CheckConfig
    );
    init_tracing(if quiet { "warn" } else { "info" });
    // HTTPS for outbound clients (providers, agendas) uses ring: no C toolchain beyond cc.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        // The reader went away (`rappel check-config | head -1`): nothing more to say to it.
        Err(e) if e.chain().any(|c| c.is::<StdoutClosed>()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default},sqlx=warn,apalis=warn"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn load_settings(dir: Option<&std::path::Path>) -> Result<Settings> {
    let dir = config::config_dir(dir);
    config::load(dir.as_deref())
        .map(|loaded| loaded.settings)
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let config_dir = cli.config.as_deref();
    match cli.command {
        Command::Serve { no_worker } => {
            let roles = Roles {
                http: true,
                worker: !no_worker,
            };
            run_roles(config_dir, roles).await?;
        }
        Command::Worker => {
            let roles = Roles {
                http: false,
                worker: true,
            };
            run_roles(config_dir, roles).await?;
        }
        Command::Migrate => migrate(config_dir).await?,
        Command::Import { file } => return import(config_dir, &file).await,
        Command::Demo {
            seed,
            agenda,
            fhir_url,
        } => {
            let fhir = match (agenda.as_str(), fhir_url) {
                ("fhir", Some(u)) => Some(u),
                ("fhir", None) => anyhow::bail!("--agenda fhir needs --fhir-url"),
                _ => None,
            };
            crate::tools::demo::run_with(config_dir, seed, fhir).await?;
        }
        Command::Bench {
            appointments,
            database,
            provider,
            replies,
        } => {
            if !matches!(provider.as_str(), "sandbox" | "twilio-fake") {
                anyhow::bail!("--provider: unknown provider '{provider}' (sandbox, twilio-fake)");
            }
            crate::tools::bench::run(config_dir, appointments, database, replies, &provider)
                .await?;
        }
        Command::Classify { score, errors, .. } if !score.is_empty() => {
            crate::tools::corpus::run_score(&score, errors)?
        }
        Command::Classify { lang, site, .. } => classify(config_dir, lang, site)?,
        #[cfg(feature = "train")]
        Command::TrainClassifier {
            files,
            out,
            folds,
            alpha,
            errors,
        } => crate::tools::train::run(
            &files,
            &out,
            crate::tools::train::Params {
                alpha,
                ..Default::default()
            },
            folds,
            errors,
        )?,
        Command::CheckConfig => return check_config(config_dir),
    }
    Ok(ExitCode::SUCCESS)
}

/// `rappel check-config`: loads and validates the configuration, says what it was built from
/// (layers, environment variables by name, database kind, admin API, clock), then renders every
/// template of every locale with a sample context (SMS with their encoding and segment count, the
/// voice prompts as voice). Exit code 2 when the configuration is invalid.
fn check_config(dir: Option<&Path>) -> Result<ExitCode> {
    let dir = config::config_dir(dir);
    let loaded = match config::load(dir.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let settings = &loaded.settings;
    let templates = Templates::load(settings.templates_dir.as_deref()).context("templates")?;
    outln!(
        "configuration ok ({}): {} sites, {} exams, {} policies",
        dir.map(|d| d.display().to_string())
            .unwrap_or_else(|| "built-in".into()),
        settings.sites.len(),
        settings.exams.len(),
        settings.policies.len()
    )?;
    print_sources(&loaded)?;
    print_sites(settings)?;
    print_templates(settings, &templates)?;
    Ok(ExitCode::SUCCESS)
}

/// What the configuration was built from, and the settings people most often get wrong: which
/// database kind (never its URL: it may hold a password), whether the admin API is on, which clock.
fn print_sources(loaded: &config::Loaded) -> Result<()> {
    for layer in &loaded.layers {
        outln!("layer {layer}")?;
    }
    for key in &loaded.env_keys {
        outln!("layer environment {key} (value not shown)")?;
    }
    let s = &loaded.settings;
    let admin = if s.server.admin_token.is_some() {
        "on"
    } else {
        "off (no server.admin_token)"
    };
    let clock = match s.clock.start {
        Some(start) => format!(
            "simulated from {} at x{}",
            start.to_rfc3339(),
            s.clock.speed
        ),
        None => "system".into(),
    };
    outln!(
        "database {}; admin API {admin}; clock {clock}",
        s.database.kind()
    )
}

/// One line per site: its time zone, provider and agenda.
fn print_sites(settings: &Settings) -> Result<()> {
    for s in settings.sites.values() {
        let (kind, caps) = match &s.fhir {
            Some(f) => (
                format!("fhir {}", f.base_url),
                "reads its window, confirms, frees slots unless the server does, If-Match writes",
            ),
            None => (
                "builtin".to_string(),
                "imported appointments, confirms, frees slots",
            ),
        };
        let provider = match s.provider.unwrap_or(settings.provider) {
            config::ProviderKind::Sandbox => "sandbox",
            config::ProviderKind::Twilio => "twilio",
        };
        outln!(
            "site {} ({}): provider {provider}; agenda {kind}: {caps}",
            s.id,
            s.tz
        )?;
    }
    Ok(())
}

/// The template table: every template of every locale rendered with a sample context.
fn print_templates(settings: &Settings, templates: &Templates) -> Result<()> {
    let site = settings
        .sites
        .values()
        .next()
        .context("the configuration has no site")?;
    outln!(
        "{:<22} {:<10} {:>6} {:>9}  source",
        "template",
        "encoding",
        "chars",
        "segments"
    )?;
    for locale in templates::LOCALES {
        let ctx = sample_context(settings, site, locale);
        for name in templates::NAMES {
            let text = templates
                .render(locale, name, &ctx)
                .with_context(|| format!("template {locale}/{name}"))?;
            let s = templates::segments(&text);
            let encoding = if s.gsm7 { "GSM-7" } else { "UCS-2" };
            print_template_line(
                templates,
                locale,
                name,
                encoding,
                s.units,
                &s.segments.to_string(),
            )?;
        }
        // Voice prompts are spoken: no encoding, no segments; the identity check names the patient.
        let ctx = templates::MessageContext {
            first_name: "Marie-Christine L.".into(),
            ..ctx
        };
        for name in templates::VOICE_NAMES {
            let text = templates
                .render(locale, name, &ctx)
                .with_context(|| format!("template {locale}/{name}"))?;
            print_template_line(templates, locale, name, "voice", text.chars().count(), "-")?;
        }
    }
    Ok(())
}

/// `serve` and `worker`: runs the given roles until Ctrl-C or SIGTERM. The HTTP port is bound
/// first: a busy port fails before the database is created or migrated.
async fn run_roles(config_dir: Option<&Path>, roles: Roles) -> Result<()> {
    let settings = load_settings(config_dir)?;
    let listener = if roles.http {
        Some(app::listen(settings.server.bind).await?)
    } else {
        None
    };
    let engine = app::build_engine(settings, None).await?;
    let token = CancellationToken::new();
    app::cancel_on_signal(token.clone());
    app::run(engine, listener, roles, token).await
}

/// `migrate`: applies the database migrations.
async fn migrate(config_dir: Option<&Path>) -> Result<()> {
    let settings = load_settings(config_dir)?;
    let db = crate::store::Db::connect(&settings.database.url, 2).await?;
    db.migrate().await?;
    outln!("migrations applied ({})", db.backend.as_str())?;
    Ok(())
}

/// `import`: writes a file's appointments (all or nothing; exit code 2 when the file is
/// rejected or cannot be read), then plans their campaigns. Warnings go to standard error; so
/// does a progress bar when the file has more than a few thousand lines and standard error is a
/// terminal.
async fn import(config_dir: Option<&Path>, file: &Path) -> Result<ExitCode> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    use std::io::IsTerminal;
    /// Below this many lines an import is read and written in about a second: no bar.
    const PROGRESS_MIN_LINES: usize = 3_000;
    let rejected = |message: &dyn std::fmt::Display| {
        eprintln!("import rejected, nothing written:\n{message}");
        Ok(ExitCode::from(2))
    };
    let settings = load_settings(config_dir)?;
    let name = file.display().to_string();
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return rejected(&format!("{name}: cannot read the file: {e}")),
    };
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    let bar = if lines > PROGRESS_MIN_LINES && std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(lines as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("checking");
        bar
    } else {
        ProgressBar::hidden()
    };
    let parsed = crate::agenda::import::parse_import_with_progress(
        &name,
        &bytes,
        &settings,
        chrono::Utc::now(),
        &mut |p| {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
        },
    );
    let import = match parsed {
        Ok(import) => import,
        Err(e) => {
            bar.finish_and_clear();
            return rejected(&e);
        }
    };
    bar.suspend(|| {
        for w in &import.warnings {
            eprintln!("warning: {w}");
        }
    });
    let appts = import.appointments;
    // Written in one transaction (all or nothing), so the bar becomes a spinner meanwhile.
    if !bar.is_hidden() {
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(format!("writing {} appointments", appts.len()));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    let engine = app::build_engine(settings, None).await?;
    let report = engine.write_appointments(&appts).await?;
    bar.set_message("opening campaigns");
    let planned = engine.plan().await?;
    bar.finish_and_clear();
    outln!(
        "imported {} appointments: {} new, {} moved, {} cancelled, {} unchanged; {} campaigns opened",
        appts.len(),
        report.created,
        report.moved,
        report.cancelled,
        report.unchanged,
        planned.opened
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `classify`: one JSON classification per line of standard input.
fn classify(config_dir: Option<&Path>, lang: Option<String>, site: Option<String>) -> Result<()> {
    let lang = lang.as_deref().and_then(Lang::parse);
    let vocab = match site {
        None => reply::Vocabulary::default(),
        Some(id) => {
            let settings = load_settings(config_dir)?;
            settings
                .site(&id)
                .with_context(|| format!("--site: no site '{id}' in the configuration"))?
                .vocabulary
                .clone()
        }
    };
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.context("reading standard input")?;
        let c = reply::classify(&line, lang, &vocab);
        outln!("{}", serde_json::to_string(&c)?)?;
    }
    Ok(())
}

/// One line of `check-config`'s template table.
fn print_template_line(
    templates: &Templates,
    locale: &str,
    name: &str,
    encoding: &str,
    chars: usize,
    segments: &str,
) -> Result<()> {
    let key = format!("{locale}/{name}");
    let source = templates
        .sources
        .iter()
        .find(|(n, _)| *n == key)
        .map(|(_, s)| s.as_str())
        .unwrap_or("");
    outln!("{key:<22} {encoding:<10} {chars:>6} {segments:>9}  {source}")
}

/// A realistic worst case for segment counts: the longest site name, a long date, preparation.
fn sample_context(
    settings: &Settings,
    site: &config::Site,
    locale: &str,
) -> templates::MessageContext {
    let longest = settings
        .sites
        .values()
        .max_by_key(|s| s.name.chars().count())
        .unwrap_or(site);
    let preparation = settings
        .exams
        .values()
        .map(|e| templates::preparation(e, locale))
        .max_by_key(|p| p.chars().count())
        .unwrap_or_default();
    templates::MessageContext {
        preparation,
        late: true,
        ..templates::MessageContext::new(longest, locale, chrono::Utc::now())
    }
}
