//! Tests of the layered configuration: the built-in files, environment overrides, and errors
//! that name their file or variable and key.

use super::*;

fn builtin() -> Vec<Layer> {
    read_layers(None).unwrap()
}

#[test]
fn the_builtin_configuration_is_valid() {
    let s = load_from(&builtin(), &[]).unwrap();
    assert!(s.sites.contains_key("paris-nord"));
    assert_eq!(s.policies["standard"].steps.len(), 3);
    assert_eq!(s.exams["IRM-CER"].family, ExamFamily::Mri);
}

#[test]
fn an_environment_variable_overrides_a_file_key() {
    let env = [("RAPPEL__WORKER__BATCH_SIZE".to_string(), "42".to_string())];
    let s = load_from(&builtin(), &env).unwrap();
    assert_eq!(s.worker.batch_size, 42);
}

#[test]
fn a_bad_environment_value_names_the_variable_and_key() {
    let env = [("RAPPEL__WORKER__BATCH_SIZE".to_string(), "many".to_string())];
    let e = load_from(&builtin(), &env).unwrap_err();
    assert_eq!(e.source, "environment variable RAPPEL__WORKER__BATCH_SIZE");
    assert!(e.key.contains("worker.batch_size"), "{e}");
}

#[test]
fn an_unknown_key_names_the_file_and_the_key() {
    let mut layers = builtin();
    layers.push(Layer {
        name: "config/prod.toml".into(),
        text: "[worker]\nbatch_sise = 3\n".into(),
    });
    let e = load_from(&layers, &[]).unwrap_err();
    assert_eq!(e.source, "config/prod.toml");
    assert!(e.message.contains("batch_sise"), "{e}");
}

#[test]
fn a_bad_time_zone_names_the_site_key_and_its_file() {
    let mut layers = builtin();
    layers.push(Layer {
        name: "config/prod.toml".into(),
        text: "[sites.paris-nord]\ntime_zone = \"Europe/Pariss\"\n".into(),
    });
    let e = load_from(&layers, &[]).unwrap_err();
    assert_eq!(e.source, "config/prod.toml");
    assert_eq!(e.key, "sites.paris-nord.time_zone");
}

#[test]
fn a_window_after_eight_pm_is_refused() {
    let mut layers = builtin();
    layers.push(Layer {
        name: "config/prod.toml".into(),
        text: "[[sites.paris-nord.windows.sms]]\ndays = \"mon-fri\"\nhours = [\"18:00-21:00\"]\n"
            .into(),
    });
    let e = load_from(&layers, &[]).unwrap_err();
    assert_eq!(e.key, "sites.paris-nord.windows.sms");
}

#[test]
fn a_toml_syntax_error_gives_the_line() {
    let layers = vec![Layer {
        name: "config/default.toml".into(),
        text: "[server]\nbind = \n".into(),
    }];
    let e = load_from(&layers, &[]).unwrap_err();
    assert!(e.source.starts_with("config/default.toml:2:"), "{e}");
}

#[test]
fn a_policy_reference_to_nothing_is_refused() {
    let mut layers = builtin();
    layers.push(Layer {
        name: "config/prod.toml".into(),
        text: "[sites.paris-nord.policies]\nct = \"turbo\"\n".into(),
    });
    let e = load_from(&layers, &[]).unwrap_err();
    assert_eq!(e.key, "sites.paris-nord.policies.ct");
}

// ---------------------------------------------------------------------------------------------
// A configuration directory over the built-in files.

const LYON: &str = "[sites.lyon-est]\nname = \"Radiologie Lyon Est\"\ntime_zone = \"Europe/Paris\"\n\
                    default_policy = \"standard\"\n[sites.lyon-est.senders]\nsms = \"+33757000099\"\n";

/// A temporary configuration directory holding `files` (name, text).
fn directory(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn names(layers: &[Layer]) -> Vec<String> {
    layers.iter().map(|l| l.name.clone()).collect()
}

#[test]
fn a_directory_with_only_sites_toml_runs_its_sites_over_the_builtin_rest() {
    let dir = directory(&[("sites.toml", LYON)]);
    let layers = read_layers(Some(dir.path())).unwrap();
    let sites_file = dir.path().join("sites.toml").display().to_string();
    assert_eq!(
        names(&layers),
        [
            "builtin:config/default.toml",
            "builtin:config/exams.toml",
            sites_file.as_str()
        ]
    );
    let s = load_from(&layers, &[]).unwrap();
    assert_eq!(
        s.sites.keys().collect::<Vec<_>>(),
        ["lyon-est"],
        "the directory's sites replace the example ones"
    );
    assert_eq!(s.exams["IRM-CER"].family, ExamFamily::Mri, "built-in exams");
    assert!(s.policies.contains_key("standard"), "built-in policies");
}

#[test]
fn a_default_toml_with_one_key_overrides_only_that_key() {
    let dir = directory(&[("default.toml", "[worker]\nbatch_size = 7\n")]);
    let layers = read_layers(Some(dir.path())).unwrap();
    assert_eq!(
        layers.len(),
        4,
        "built-in default.toml, the directory's, exams, sites"
    );
    let s = load_from(&layers, &[]).unwrap();
    let builtin = load_from(&builtin(), &[]).unwrap();
    assert_eq!(s.worker.batch_size, 7);
    assert_eq!(s.worker.claim_lease, builtin.worker.claim_lease);
    assert_eq!(s.server.bind, builtin.server.bind);
    assert_eq!(s.policies.len(), builtin.policies.len());
    assert!(s.sites.contains_key("paris-nord"), "built-in sites");
}

#[test]
fn an_error_in_a_directory_file_names_that_file_and_the_key() {
    let bad = LYON.replace("Europe/Paris", "Europe/Lyon");
    let dir = directory(&[("sites.toml", &bad)]);
    let e = load_from(&read_layers(Some(dir.path())).unwrap(), &[]).unwrap_err();
    assert_eq!(
        e.source,
        dir.path().join("sites.toml").display().to_string()
    );
    assert_eq!(e.key, "sites.lyon-est.time_zone");
}

#[test]
fn a_missing_or_empty_directory_is_an_error_not_the_builtin_defaults() {
    let empty = directory(&[]);
    let e = read_layers(Some(empty.path())).err().unwrap();
    assert!(e.message.contains("holds no configuration file"), "{e}");
    let e = read_layers(Some(&empty.path().join("nowhere")))
        .err()
        .unwrap();
    assert!(e.message.contains("not a configuration directory"), "{e}");
}
