//! JUnit XML reports among the artifacts: totals and the failing cases. Parsing streams
//! (quick-xml) with bounded buffers; entity references other than the five predefined ones
//! and character references are kept literally, never expanded, so entity bombs are inert.

use crate::artifacts::read::open_verified;
use assay_core::execution::{Artifact, JunitCase, JunitSummary};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use std::io::BufRead;
use std::path::Path;

/// Reports larger than this are not parsed.
pub(crate) const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;
const MAX_CASES: usize = 100;
/// Each part of a failing case's output (failure body, system-out, system-err).
const MAX_PART: usize = 4096;
const MAX_DEPTH: usize = 256;

/// Summarises every JUnit report among `artifacts` (`None` when there is none).
pub(crate) fn summarize(root: &Path, artifacts: &[Artifact]) -> Option<JunitSummary> {
    let mut summary = JunitSummary::default();
    for artifact in artifacts {
        if !artifact.path.to_ascii_lowercase().ends_with(".xml") || artifact.size > MAX_REPORT_BYTES
        {
            continue;
        }
        let Ok(file) = open_verified(root, &artifact.path) else {
            continue;
        };
        let reader = std::io::BufReader::with_capacity(64 * 1024, file);
        if parse_report(reader, &artifact.path, &mut summary) {
            summary.reports.push(artifact.path.clone());
        }
    }
    (!summary.reports.is_empty()).then_some(summary)
}

#[derive(Default)]
struct Case {
    name: String,
    classname: String,
    kind: Option<&'static str>,
    skipped: bool,
    message: String,
    body: String,
    out: String,
    err: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Capture {
    None,
    Body,
    Out,
    Err,
}

/// Adds one report to `summary`; false when the document is not a JUnit report.
fn parse_report(input: impl BufRead, report: &str, summary: &mut JunitSummary) -> bool {
    let mut reader = Reader::from_reader(input);
    reader.config_mut().trim_text(false);
    let mut buf = Vec::new();
    let mut depth: Vec<Vec<u8>> = Vec::new();
    let mut root_seen = false;
    let mut root_attrs = Counts::default();
    let mut suite_time = 0.0f64;
    let mut root_time: Option<f64> = None;
    let mut case: Option<Case> = None;
    let mut capture = Capture::None;
    let mut cases = 0u64;

    loop {
        buf.clear();
        let event = match reader.read_event_into(&mut buf) {
            Ok(e) => e,
            // A malformed or truncated report still contributes what was read.
            Err(_) => break,
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.local_name().as_ref().to_vec();
                if !root_seen {
                    if name != b"testsuites" && name != b"testsuite" {
                        return false;
                    }
                    root_seen = true;
                    root_attrs = Counts::from_attrs(e, &reader);
                    root_time = attr(e, &reader, b"time").and_then(|t| t.parse().ok());
                } else if name == b"testsuite" && depth.len() == 1 {
                    suite_time += attr(e, &reader, b"time")
                        .and_then(|t| t.parse::<f64>().ok())
                        .unwrap_or(0.0);
                }
                match name.as_slice() {
                    b"testcase" => {
                        cases += 1;
                        summary.tests += 1;
                        let c = Case {
                            name: attr(e, &reader, b"name").unwrap_or_default(),
                            classname: attr(e, &reader, b"classname").unwrap_or_default(),
                            ..Case::default()
                        };
                        if empty {
                            finish_case(c, report, summary);
                        } else {
                            case = Some(c);
                        }
                    }
                    b"failure" | b"error" if case.is_some() => {
                        if let Some(c) = case.as_mut()
                            && c.kind.is_none()
                        {
                            c.kind = Some(if name == b"failure" {
                                "failure"
                            } else {
                                "error"
                            });
                            c.message = attr(e, &reader, b"message").unwrap_or_default();
                        }
                        capture = if empty { Capture::None } else { Capture::Body };
                    }
                    b"skipped" if case.is_some() => {
                        if let Some(c) = case.as_mut() {
                            c.skipped = true;
                        }
                    }
                    b"system-out" if case.is_some() && !empty => capture = Capture::Out,
                    b"system-err" if case.is_some() && !empty => capture = Capture::Err,
                    _ => {}
                }
                if !empty {
                    if depth.len() >= MAX_DEPTH {
                        break;
                    }
                    depth.push(name);
                }
            }
            Event::End(ref e) => {
                let name = e.local_name().as_ref().to_vec();
                depth.pop();
                match name.as_slice() {
                    b"testcase" => {
                        if let Some(c) = case.take() {
                            finish_case(c, report, summary);
                        }
                        capture = Capture::None;
                    }
                    b"failure" | b"error" | b"system-out" | b"system-err" => {
                        capture = Capture::None;
                    }
                    _ => {}
                }
            }
            Event::Text(ref t) => {
                if let Ok(text) = t.decode() {
                    append(&mut case, capture, &text);
                }
            }
            Event::CData(ref t) => {
                if let Ok(text) = t.decode() {
                    append(&mut case, capture, &text);
                }
            }
            Event::GeneralRef(ref r) => {
                let text = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    _ => {
                        let name = String::from_utf8_lossy(r).into_owned();
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(s) => s.to_string(),
                            None => format!("&{name};"),
                        }
                    }
                };
                append(&mut case, capture, &text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen {
        return false;
    }
    if cases == 0 {
        // Reports with totals only.
        summary.tests += root_attrs.tests;
        summary.failures += root_attrs.failures;
        summary.errors += root_attrs.errors;
        summary.skipped += root_attrs.skipped;
    }
    summary.time_seconds += root_time.unwrap_or(suite_time);
    true
}

#[derive(Default)]
struct Counts {
    tests: u64,
    failures: u64,
    errors: u64,
    skipped: u64,
}

impl Counts {
    fn from_attrs<R>(e: &BytesStart<'_>, reader: &Reader<R>) -> Self {
        let n = |key: &[u8]| {
            attr(e, reader, key)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        Self {
            tests: n(b"tests"),
            failures: n(b"failures"),
            errors: n(b"errors"),
            skipped: n(b"skipped").max(n(b"disabled")),
        }
    }
}

fn attr<R>(e: &BytesStart<'_>, reader: &Reader<R>, key: &[u8]) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        (a.key.local_name().as_ref() == key).then(|| {
            a.decode_and_unescape_value(reader.decoder())
                .map(|v| v.into_owned())
                // Undefined entities are not expanded: keep the raw text.
                .unwrap_or_else(|_| String::from_utf8_lossy(&a.value).into_owned())
        })
    })
}

fn append(case: &mut Option<Case>, capture: Capture, text: &str) {
    let Some(c) = case.as_mut() else {
        return;
    };
    let target = match capture {
        Capture::None => return,
        Capture::Body => &mut c.body,
        Capture::Out => &mut c.out,
        Capture::Err => &mut c.err,
    };
    push_bounded(target, text);
}

/// Appends up to `MAX_PART` bytes in total, on a character boundary, marking the cut.
fn push_bounded(target: &mut String, text: &str) {
    if target.len() >= MAX_PART {
        return;
    }
    let room = MAX_PART - target.len();
    if text.len() <= room {
        target.push_str(text);
        return;
    }
    let mut cut = room;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    target.push_str(&text[..cut]);
    target.push('…');
}

fn finish_case(c: Case, report: &str, summary: &mut JunitSummary) {
    if c.skipped && c.kind.is_none() {
        summary.skipped += 1;
    }
    let Some(kind) = c.kind else {
        return;
    };
    if kind == "failure" {
        summary.failures += 1;
    } else {
        summary.errors += 1;
    }
    if summary.failed_cases.len() >= MAX_CASES {
        summary.truncated = true;
        return;
    }
    let mut output = c.body.trim().to_string();
    for (label, part) in [("system-out", &c.out), ("system-err", &c.err)] {
        let part = part.trim();
        if !part.is_empty() {
            if !output.is_empty() {
                output.push('\n');
            }
            output.push_str(&format!("--- {label} ---\n{part}"));
        }
    }
    summary.failed_cases.push(JunitCase {
        name: c.name,
        classname: c.classname,
        kind: kind.to_string(),
        message: c.message,
        output,
        report: report.to_string(),
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(xml: &str) -> (bool, JunitSummary) {
        let mut s = JunitSummary::default();
        let ok = parse_report(xml.as_bytes(), "r.xml", &mut s);
        (ok, s)
    }

    #[test]
    fn ignores_other_xml() {
        assert!(!parse("<project><testcase name='x'/></project>").0);
        assert!(!parse("not xml at all").0);
    }

    #[test]
    fn counts_cases_and_collects_failures() {
        let (ok, s) = parse(
            r#"<?xml version="1.0"?>
            <testsuites time="2.5">
              <testsuite name="a" time="2.0">
                <testcase name="t1" classname="A"/>
                <testcase name="t2" classname="A"><failure message="a &lt; b">trace &amp; more</failure>
                  <system-out>out</system-out><system-err><![CDATA[err]]></system-err></testcase>
                <testcase name="t3" classname="A"><error message="boom"/></testcase>
                <testcase name="t4" classname="A"><skipped/></testcase>
              </testsuite>
            </testsuites>"#,
        );
        assert!(ok);
        assert_eq!((s.tests, s.failures, s.errors, s.skipped), (4, 1, 1, 1));
        assert_eq!(s.time_seconds, 2.5);
        assert_eq!(s.failed_cases.len(), 2);
        assert_eq!(s.failed_cases[0].message, "a < b");
        assert_eq!(
            s.failed_cases[0].output,
            "trace & more\n--- system-out ---\nout\n--- system-err ---\nerr"
        );
        assert_eq!(s.failed_cases[1].kind, "error");
        assert_eq!(s.failed_cases[1].output, "");
    }

    #[test]
    fn entity_bombs_stay_inert() {
        let mut xml =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
        for i in 1..10 {
            let prev = if i == 1 {
                "lol".to_string()
            } else {
                format!("lol{}", i - 1)
            };
            xml.push_str(&format!(
                "<!ENTITY lol{i} \"{}\">\n",
                format!("&{prev};").repeat(10)
            ));
        }
        xml.push_str("]>\n<testsuite time=\"1\"><testcase name=\"x\"><failure message=\"&lol9;\">&lol9;</failure></testcase></testsuite>");
        let (ok, s) = parse(&xml);
        assert!(ok);
        assert_eq!(s.failures, 1);
        assert_eq!(s.failed_cases[0].message, "&lol9;");
        assert_eq!(s.failed_cases[0].output, "&lol9;");
    }

    #[test]
    fn output_parts_are_bounded() {
        let xml = format!(
            "<testsuite><testcase name='x'><failure>{}</failure></testcase></testsuite>",
            "é".repeat(5000)
        );
        let (_, s) = parse(&xml);
        assert!(s.failed_cases[0].output.len() <= MAX_PART + 3);
        assert!(s.failed_cases[0].output.ends_with('…'));
    }

    #[test]
    fn totals_only_reports_use_attributes() {
        let (ok, s) =
            parse("<testsuite tests='7' failures='2' errors='1' skipped='1' time='0.5'/>");
        assert!(ok);
        assert_eq!((s.tests, s.failures, s.errors, s.skipped), (7, 2, 1, 1));
        assert_eq!(s.time_seconds, 0.5);
    }
}
