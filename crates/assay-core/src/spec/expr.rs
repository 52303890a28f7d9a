//! `{{ ... }}` expressions in workflow text.
//!
//! Supported inside the braces (whitespace around it is fine):
//! - `config.<name>`: the value of a parameter of the document the text belongs to;
//! - a string literal, `"..."` or `'...'`, inserted as written. It is the escape hatch for
//!   text that must contain braces: `{{"{{"}}` gives `{{`.
//!
//! Anything else (`{{ env.X }}`, `{{ config.a + 1 }}`) is rejected when the document is
//! parsed, so nothing is left unexpanded at run time. How a value is inserted depends on
//! where the text goes: verbatim for data (env values, arguments of a program run without a
//! shell, paths), shell-quoted in shell scripts (see `shell`).

use std::fmt;

/// One piece of text: literal text or a reference to a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Param(String),
}

/// Text split into literal pieces and parameter references.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Template {
    pub pieces: Vec<Piece>,
}

impl Template {
    /// Names of the parameters referenced, in order of appearance (repeats kept).
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Param(name) => Some(name.as_str()),
            Piece::Text(_) => None,
        })
    }

    pub fn has_params(&self) -> bool {
        self.params().next().is_some()
    }

    /// Inserts values as they are (no quoting). `value` returns `None` for an unknown name,
    /// which is reported as an error naming it.
    pub fn render_verbatim<'v>(
        &self,
        value: impl Fn(&str) -> Option<&'v str>,
    ) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Param(name) => match value(name) {
                    Some(v) => out.push_str(v),
                    None => return Err(unknown_parameter(name)),
                },
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => f.write_str(t)?,
                Piece::Param(name) => write!(f, "{{{{config.{name}}}}}")?,
            }
        }
        Ok(())
    }
}

pub(crate) fn unknown_parameter(name: &str) -> String {
    format!("{{{{config.{name}}}}} refers to an unknown parameter")
}

/// Splits text into pieces. Errors name the offending expression.
pub(crate) fn parse(text: &str) -> Result<Template, String> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        literal.push_str(&rest[..start]);
        let after_open = &rest[start + 2..];
        let Some(end) = after_open.find("}}") else {
            return Err(format!(
                "unclosed \"{{{{\" in {:?}; write {{{{\"{{{{\"}}}} for literal braces",
                excerpt(&rest[start..])
            ));
        };
        let inner = after_open[..end].trim();
        match expression(inner) {
            Some(Expr::Param(name)) => {
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Param(name.to_owned()));
            }
            Some(Expr::Literal(s)) => literal.push_str(s),
            None => {
                return Err(format!(
                    "unsupported expression \"{{{{{}}}}}\": only {{{{config.<name>}}}} and string \
                     literals such as {{{{\"{{{{\"}}}} are supported",
                    excerpt(&after_open[..end])
                ));
            }
        }
        rest = &after_open[end + 2..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(Template { pieces })
}

enum Expr<'a> {
    Param(&'a str),
    Literal(&'a str),
}

fn expression(inner: &str) -> Option<Expr<'_>> {
    if let Some(name) = inner.strip_prefix("config.") {
        return is_identifier(name).then_some(Expr::Param(name));
    }
    for quote in ['"', '\''] {
        if inner.len() >= 2 && inner.starts_with(quote) && inner.ends_with(quote) {
            let body = &inner[1..inner.len() - 1];
            if !body.contains(quote) {
                return Some(Expr::Literal(body));
            }
        }
    }
    None
}

/// Parameter names: `[A-Za-z_][A-Za-z0-9_]*`, at most 63 characters, so that
/// `{{config.name}}` is unambiguous.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn text(s: &str) -> Piece {
        Piece::Text(s.into())
    }
    fn param(s: &str) -> Piece {
        Piece::Param(s.into())
    }

    #[test]
    fn splits_text_and_parameters() {
        let t = parse("echo {{config.a}} and {{ config.b_2 }}!").unwrap();
        assert_eq!(
            t.pieces,
            vec![
                text("echo "),
                param("a"),
                text(" and "),
                param("b_2"),
                text("!")
            ]
        );
        assert_eq!(t.params().collect::<Vec<_>>(), vec!["a", "b_2"]);
        assert_eq!(t.to_string(), "echo {{config.a}} and {{config.b_2}}!");
        assert_eq!(parse("").unwrap().pieces, vec![]);
        assert_eq!(parse("{{config.x}}").unwrap().pieces, vec![param("x")]);
        assert_eq!(parse("plain } {").unwrap().pieces, vec![text("plain } {")]);
        assert_eq!(parse("a }} b").unwrap().pieces, vec![text("a }} b")]);
    }

    #[test]
    fn string_literals_escape_braces() {
        // `}}` needs no escape: without an opening `{{` it is plain text.
        let t = parse(r#"docker inspect -f '{{"{{"}}.Id}}'"#).unwrap();
        assert_eq!(t.pieces, vec![text("docker inspect -f '{{.Id}}'")]);
        assert!(!t.has_params());
    }

    #[test]
    fn rejects_unsupported_and_unclosed() {
        assert_eq!(
            parse("echo {{ env.HOME }}").unwrap_err(),
            "unsupported expression \"{{ env.HOME }}\": only {{config.<name>}} and string literals such as {{\"{{\"}} are supported"
        );
        assert!(
            parse("{{config.a + 1}}")
                .unwrap_err()
                .starts_with("unsupported expression")
        );
        assert!(
            parse("{{config.}}")
                .unwrap_err()
                .starts_with("unsupported expression")
        );
        assert!(
            parse("{{config.a-b}}")
                .unwrap_err()
                .starts_with("unsupported expression")
        );
        assert!(
            parse("{{}}")
                .unwrap_err()
                .starts_with("unsupported expression")
        );
        assert_eq!(
            parse("echo {{config.a").unwrap_err(),
            "unclosed \"{{\" in \"{{config.a\"; write {{\"{{\"}} for literal braces"
        );
    }

    #[test]
    fn renders_verbatim() {
        let t = parse("--url={{config.url}} {{config.url}}").unwrap();
        let out = t
            .render_verbatim(|n| (n == "url").then_some("$(x); 'y'"))
            .unwrap();
        assert_eq!(out, "--url=$(x); 'y' $(x); 'y'");
        assert_eq!(
            t.render_verbatim(|_| None).unwrap_err(),
            "{{config.url}} refers to an unknown parameter"
        );
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("browser"));
        assert!(is_identifier("_x9"));
        assert!(!is_identifier("9x"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
        assert!(!is_identifier(&"a".repeat(64)));
    }
}
