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
