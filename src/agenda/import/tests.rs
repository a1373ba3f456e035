//! Import files as centres really write them: Excel's French CSV in Windows-1252, UTF-8 with a
//! byte-order mark, extra columns, empty or half-written files, hostile values.

use super::*;
use crate::config::{self, Settings};
use chrono::TimeZone;

fn settings() -> Settings {
    let layers = config::read_layers(None).expect("built-in config");
    config::load_from(&layers, &[]).expect("built-in settings")
}

/// Friday 2026-11-20, noon UTC: the appointments below are the next week's.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

fn import(name: &str, bytes: &[u8]) -> Result<Import, ImportError> {
    parse_import(name, bytes, &settings(), now())
}

fn rejected(name: &str, bytes: &[u8]) -> String {
    match import(name, bytes) {
        Ok(i) => panic!("accepted {} appointments", i.appointments.len()),
        Err(e) => e.to_string(),
    }
}

const HEADER: &str =
    "external_id,site,exam_code,start,duration_min,patient_name,phone,locale,channel\n";

fn row(id: &str, start: &str) -> String {
    format!("{id},paris-nord,RX-THO,{start},,Patient {id},+33612345678,fr,sms\n")
}

/// What Excel (French Windows) writes with "CSV (séparateur : point-virgule)": `;`, CRLF,
/// Windows-1252, dates as the cells show them.
fn excel_french_csv(rows: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut text = String::from(
        "external_id;site;exam_code;start;duration_min;patient_name;phone;locale;channel\r\n",
    );
    for (id, start, name) in rows {
        text.push_str(&format!(
            "{id};paris-nord;IRM-CER;{start};;{name};06 12 34 56 78;fr;sms\r\n"
        ));
    }
    let (bytes, _, unmappable) = WINDOWS_1252.encode(&text);
    assert!(!unmappable);
    bytes.into_owned()
}

#[test]
fn a_json_array_with_a_byte_order_mark_imports_every_row() {
    let json = "\u{feff}[{\"external_id\":\"J1\",\"site\":\"paris-nord\",\"exam_code\":\"RX-THO\",\
                \"start\":\"2026-11-25T10:00\",\"patient_name\":\"Hélène Dupré\"}]";
    let i = import("agenda.json", json.as_bytes()).unwrap();
    assert_eq!(i.appointments.len(), 1);
    assert_eq!(i.appointments[0].patient_name, "Hélène Dupré");
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
}

#[test]
fn a_csv_with_a_byte_order_mark_reads_its_first_column() {
    let csv = format!("\u{feff}{HEADER}{}", row("B1", "2026-11-25T10:00"));
    let i = import("agenda.csv", csv.as_bytes()).unwrap();
    assert_eq!(i.appointments[0].external_id, "B1");
}

#[test]
fn a_french_excel_export_in_windows_1252_with_semicolons_and_french_dates_is_read() {
    let bytes = excel_french_csv(&[
        ("E1", "24/11/2026 14:30", "Hélène Dupré"),
        ("E2", "25/11/2026 9:05", "François Lefèvre"),
    ]);
    assert!(std::str::from_utf8(&bytes).is_err(), "not UTF-8");
    let i = import("agenda.csv", &bytes).unwrap();
    let a = &i.appointments;
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].patient_name, "Hélène Dupré");
    assert_eq!(a[1].patient_name, "François Lefèvre");
    // 14:30 in Paris in November is 13:30 UTC.
    assert_eq!(
        a[0].starts_at,
        Utc.with_ymd_and_hms(2026, 11, 24, 13, 30, 0).unwrap()
    );
    assert_eq!(
        a[1].starts_at,
        Utc.with_ymd_and_hms(2026, 11, 25, 8, 5, 0).unwrap()
    );
    assert!(
        i.warnings.iter().any(|w| w.contains("Windows-1252")),
        "the encoding read is said: {:?}",
        i.warnings
    );
}

#[test]
fn a_utf16_export_with_tabs_is_read() {
    let text = format!("{HEADER}{}", row("U1", "2026-11-25T10:00")).replace(',', "\t");
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    let i = import("agenda.txt", &bytes).unwrap();
    assert_eq!(i.appointments[0].external_id, "U1");
}

#[test]
fn a_latin1_line_in_a_utf8_file_is_refused_with_its_line() {
    let mut bytes = format!("{HEADER}{}", row("M1", "2026-11-25T10:00"))
        .replace("Patient M1", "Hélène")
        .into_bytes();
    bytes.extend(b"M2,paris-nord,RX-THO,2026-11-25T11:00,,Dupr\xE9,,fr,sms\n");
    let err = rejected("agenda.csv", &bytes);
    assert!(err.contains("line 3") && err.contains("UTF-8"), "{err}");
}

#[test]
fn an_excel_workbook_is_refused_with_how_to_save_it_as_csv() {
    let err = rejected("agenda.xlsx", b"PK\x03\x04\x14\x00\x06\x00rest of a zip");
    assert!(
        err.contains("Excel workbook") && err.contains("CSV"),
        "{err}"
    );
}

#[test]
fn an_extra_column_is_ignored_with_a_warning_naming_it() {
    let csv = format!("{},salle\n", HEADER.trim_end())
        + &row("X1", "2026-11-25T10:00").replace(",sms\n", ",sms,Salle 2\n");
    let i = import("agenda.csv", csv.as_bytes()).unwrap();
    assert_eq!(i.appointments.len(), 1);
    assert!(
        i.warnings
            .iter()
            .any(|w| w.contains("line 1") && w.contains("`salle`") && w.contains("ignored")),
        "{:?}",
        i.warnings
    );
}

#[test]
fn an_unknown_json_key_is_ignored_with_a_warning_naming_it() {
    let json = "[{\"external_id\":\"K1\",\"site\":\"paris-nord\",\"exam_code\":\"RX-THO\",\
                \"start\":\"2026-11-25T10:00\",\"patient_name\":\"A\",\"room\":\"2\"}]";
    let i = import("agenda.json", json.as_bytes()).unwrap();
    assert!(
        i.warnings.iter().any(|w| w.contains("`room`")),
        "{:?}",
        i.warnings
    );
}

#[test]
fn an_empty_file_a_header_only_file_an_object_null_and_an_empty_array_are_refused() {
    for (name, text, says) in [
        ("empty.csv", "", "empty"),
        ("blank.csv", " \r\n\n", "empty"),
        ("header.csv", HEADER, "no appointments"),
        (
            "header-bom.csv",
            "\u{feff}external_id;site;exam_code;start;patient_name\r\n",
            "no appointments",
        ),
        ("object.json", "{\"external_id\":\"O1\"}", "a JSON object"),
        ("null.json", "null", "`null`"),
        ("null.csv", "null\n", "`null`"),
        ("empty.json", "[]", "empty array"),
        ("bom-empty.json", "\u{feff}[ ]", "empty array"),
    ] {
        let err = rejected(name, text.as_bytes());
        assert!(err.starts_with(name) && err.contains(says), "{name}: {err}");
    }
}

#[test]
fn a_header_with_missing_columns_is_one_error_naming_them() {
    let csv = format!(
        "external_id|site|start\n{}",
        "A|paris-nord|2026-11-25T10:00\n".repeat(12)
    );
    let err = rejected("agenda.csv", csv.as_bytes());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("line 1: missing column(s) `external_id`"),
        "{err}"
    );
}

#[test]
fn years_outside_2000_to_2200_are_refused_naming_the_field() {
    for start in [
        "-2026-11-25T10:00",
        "+12026-11-25T10:00",
        "1999-11-25T10:00",
        "25/11/2201 10:00",
    ] {
        let err = rejected(
            "agenda.csv",
            format!("{HEADER}{}", row("Y1", start)).as_bytes(),
        );
        assert!(
            err.contains("line 2: field `start`") && err.contains("outside 2000–2200"),
            "{start}: {err}"
        );
    }
}

#[test]
fn a_one_megabyte_field_gives_a_one_line_error() {
    let huge = "9".repeat(1 << 20);
    for bad in [
        row("H1", &huge),
        row("H2", "2026-11-25T10:00").replace("paris-nord", &huge),
        row("H3", "2026-11-25T10:00").replace(",fr,", &format!(",{huge},")),
        row("H4", "2026-11-25T10:00").replace(",,", &format!(",{huge},")),
    ] {
        let err = rejected("agenda.csv", format!("{HEADER}{bad}").as_bytes());
        assert!(err.len() < 400, "{} bytes: {}", err.len(), &err[..400]);
        assert!(err.contains("line 2: field `"), "{err}");
    }
    let json = format!(
        "[{{\"external_id\":\"J\",\"site\":\"paris-nord\",\"exam_code\":\"RX-THO\",\
         \"start\":\"2026-11-25T10:00\",\"patient_name\":\"A\",\"duration_min\":\"{huge}\"}}]"
    );
    let err = rejected("agenda.json", json.as_bytes());
    assert!(
        err.len() < 400 && err.contains("item 1: field `duration_min`"),
        "{}",
        &err[..400.min(err.len())]
    );
}

#[test]
fn control_characters_are_refused_naming_the_field() {
    for (field, bad) in [
        (
            "patient_name",
            row("C1", "2026-11-25T10:00").replace("Patient C1", "Hélène\0Dupré"),
        ),
        (
            "patient_name",
            row("C2", "2026-11-25T10:00").replace("Patient C2", "\"Jean\nDupont\""),
        ),
        ("external_id", row("C3\u{1b}", "2026-11-25T10:00")),
        (
            "site",
            row("C4", "2026-11-25T10:00").replace("paris-nord", "paris-nord\u{7f}"),
        ),
    ] {
        let err = rejected("agenda.csv", format!("{HEADER}{bad}").as_bytes());
        assert!(
            err.contains(&format!("field `{field}`: contains a control character")),
            "{field}: {err}"
        );
        assert!(!err.contains('\0') && !err.contains('\u{1b}'), "{err:?}");
    }
}

#[test]
fn unknown_exam_codes_and_past_appointments_are_warnings_not_errors() {
    let csv = format!(
        "{HEADER}{}{}{}",
        row("W1", "2026-11-25T10:00").replace("RX-THO", "ARTHRO-EP"),
        row("W2", "2026-11-02T10:00"),
        row("W3", "2026-11-25T11:00")
    );
    let i = import("agenda.csv", csv.as_bytes()).unwrap();
    assert_eq!(i.appointments.len(), 3);
    let all = i.warnings.join("\n");
    assert!(
        all.contains("exam code `ARTHRO-EP` is not in the configuration (line 2)"),
        "{all}"
    );
    assert!(
        all.contains("1 appointment(s) already started (line 3)"),
        "{all}"
    );
}

#[test]
fn a_duplicate_names_both_lines() {
    let csv = format!(
        "{HEADER}{}{}",
        row("D1", "2026-11-25T10:00"),
        row("D1", "2026-11-25T11:00")
    );
    let err = rejected("agenda.csv", csv.as_bytes());
    assert!(
        err.contains("line 3: appointment `D1` of site `paris-nord` appears twice (also line 2)"),
        "{err}"
    );
}

#[test]
fn at_most_twenty_errors_are_reported() {
    let csv = format!("{HEADER}{}", row("Z", "not a date").repeat(50));
    let err = rejected("agenda.csv", csv.as_bytes());
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 21, "{err}");
    assert!(lines[20].contains("stopped after 20 errors"));
}

#[test]
fn a_value_with_the_separator_unquoted_is_refused_with_its_line() {
    let csv = format!(
        "{HEADER}{}",
        row("S1", "2026-11-25T10:00").replace("Patient S1", "Dupré, Hélène")
    );
    let err = rejected("agenda.csv", csv.as_bytes());
    assert!(
        err.contains("line 2: 10 fields where the header has 9"),
        "{err}"
    );
}

#[test]
fn lines_are_counted_right_with_excels_crlf_line_ends() {
    let bytes = excel_french_csv(&[
        ("L1", "24/11/2026 14:30", "Hélène Dupré"),
        ("L2", "24/11/2026 15:30", "Jean\u{7}Martin"),
    ]);
    let err = rejected("agenda.csv", &bytes);
    assert!(err.contains("line 3: field `patient_name`"), "{err}");
}

#[test]
fn a_spreadsheets_empty_rows_and_trailing_separators_are_ignored() {
    let mut bytes = excel_french_csv(&[("T1", "24/11/2026 14:30", "Hélène Dupré")]);
    bytes.extend(b";;;;;;;;\r\n;;;;;;;;\r\n");
    let i = import("agenda.csv", &bytes).unwrap();
    assert_eq!(i.appointments.len(), 1);
}

#[test]
fn progress_is_reported_up_to_the_last_row() {
    let rows: String = (0..1_200)
        .map(|n| row(&format!("P{n}"), "2026-11-25T10:00"))
        .collect();
    let mut seen = Vec::new();
    parse_import_with_progress(
        "big.csv",
        format!("{HEADER}{rows}").as_bytes(),
        &settings(),
        now(),
        &mut |p| seen.push(p),
    )
    .unwrap();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(
        seen.last(),
        Some(&Progress {
            done: 1_200,
            total: 1_200
        })
    );
}
