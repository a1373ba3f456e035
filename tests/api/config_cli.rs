//! The command line and its configuration, run as the real `rappel` binary: a partial
//! configuration directory over the built-in files, `--config` for every command, a closed
//! standard output, and `serve` on a busy port.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const REPO_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");

/// A centre's own `sites.toml`: one site, nothing else.
const LYON_SITES: &str = "[sites.lyon-est]\nname = \"Radiologie Lyon Est\"\n\
    time_zone = \"Europe/Paris\"\nlocale = \"fr\"\ndefault_policy = \"standard\"\n\
    [sites.lyon-est.senders]\nsms = \"+33757000099\"\n";

/// `rappel` with a clean environment: no `RAPPEL__…` variable, no `RAPPEL_ENV` or
/// `RAPPEL_CONFIG_DIR` from the shell that runs the tests.
fn rappel(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rappel"));
    cmd.args(args)
        .env_remove("RAPPEL_ENV")
        .env_remove("RAPPEL_CONFIG_DIR")
        .env_remove("RUST_LOG");
    for (key, _) in std::env::vars() {
        if key.starts_with("RAPPEL__") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A configuration directory holding only the centre's `sites.toml`.
fn sites_only_directory() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sites.toml"), LYON_SITES).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd` with its standard output already closed by its reader (as `| head -1` does once
/// it has its line, but before the first write, so that every write meets the closed pipe).
fn run_with_stdout_closed(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut input = child.stdin.take().unwrap();
    // The child may be gone already: a failed write to its stdin is not the test's concern.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    child.wait_with_output().unwrap()
}

/// Exited quietly: success, or killed by SIGPIPE, and no panic or error message.
fn assert_quiet_exit(out: &Output, what: &str) {
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{what} panicked: {err}");
    #[cfg(unix)]
    let by_sigpipe = std::os::unix::process::ExitStatusExt::signal(&out.status) == Some(13);
    #[cfg(not(unix))]
    let by_sigpipe = false;
    assert!(
        out.status.success() || by_sigpipe,
        "{what}: {:?}, stderr: {err}",
        out.status
    );
    assert!(!err.contains("error"), "{what} reported an error: {err}");
}

#[test]
fn check_config_on_a_partial_directory_lists_its_layers_and_only_its_sites() {
    let dir = sites_only_directory();
    let secret = "a-secret-admin-token-0123456789";
    let out = rappel(&["check-config", "--config", dir.path().to_str().unwrap()])
        .env("RAPPEL__SERVER__ADMIN_TOKEN", secret)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sites_file = dir.path().join("sites.toml");
    for layer in [
        "layer builtin:config/default.toml".to_string(),
        "layer builtin:config/exams.toml".to_string(),
        format!("layer {}", sites_file.display()),
        "layer environment RAPPEL__SERVER__ADMIN_TOKEN".to_string(),
    ] {
        assert!(stdout.contains(&layer), "missing `{layer}` in:\n{stdout}");
    }
    assert!(
        !stdout.contains("builtin:config/sites.toml"),
        "the directory's sites.toml replaces the built-in one:\n{stdout}"
    );
    assert!(stdout.contains("site lyon-est (Europe/Paris)"), "{stdout}");
    assert!(
        !stdout.contains("paris-nord"),
        "the example sites do not run beside the centre's:\n{stdout}"
    );
    assert!(stdout.contains("1 sites, 12 exams"), "{stdout}");
    assert!(stdout.contains("database sqlite"), "{stdout}");
    assert!(stdout.contains("admin API on"), "{stdout}");
    assert!(stdout.contains("clock system"), "{stdout}");
    assert!(!stdout.contains(secret), "a secret was printed:\n{stdout}");
}

#[test]
fn check_config_into_a_closed_pipe_exits_quietly() {
    let out = run_with_stdout_closed(rappel(&["check-config", "--config", REPO_CONFIG]), "");
    assert_quiet_exit(&out, "check-config | head -1");
}

#[test]
fn classify_into_a_closed_pipe_exits_quietly() {
    let out = run_with_stdout_closed(rappel(&["classify"]), "oui\nnon merci\n");
    assert_quiet_exit(&out, "classify | head");
}

#[test]
fn serve_on_a_busy_port_names_the_address_and_creates_no_database() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rappel.db");
    let mut child = rappel(&["serve", "--config", REPO_CONFIG])
        .env("RAPPEL__SERVER__BIND", &addr)
        .env(
            "RAPPEL__DATABASE__URL",
            format!("sqlite://{}", db.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("rappel serve kept running on a busy port");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = text(&child.wait_with_output().unwrap().stderr);
    assert!(!status.success());
    assert!(
        err.contains(&addr) && err.contains("already in use"),
        "the error names the address and says it is in use: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        !db.exists() && left.is_empty(),
        "no database file (nor its journal) before the port is bound: {left:?}"
    );
    drop(busy);
}

#[test]
fn demo_with_a_config_directory_books_at_the_directory_s_site() {
    let dir = sites_only_directory();
    let scratch = tempfile::tempdir().unwrap();
    let out = rappel(&["demo", "--config", dir.path().to_str().unwrap()])
        // The demo keeps its database in the temporary directory: this test's own.
        .env("TMPDIR", scratch.path())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("130 appointments") && stdout.contains("at 1 site (Radiologie Lyon Est)"),
        "{stdout}"
    );
    assert!(!stdout.contains("Paris Nord"), "{stdout}");
    assert!(
        scratch_has_demo_db(scratch.path()),
        "the demo ran on its own database"
    );
}

fn scratch_has_demo_db(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .any(|e| e.path().join("demo.db").exists())
}
