//! Putting parameter values into shell scripts without letting them become code.
//!
//! Someone allowed only to *run* a workflow chooses its config values; the script belongs
//! to the workflow's author. A value must therefore arrive in the script as data, whatever
//! it contains (`;`, `$(...)`, backticks, quotes, newlines). POSIX single quotes make
//! everything literal, so a string value becomes `'...'` with each `'` written `'\''`. That
//! is only right where the expression stands unquoted, so the script is scanned (a small
//! POSIX sh lexer) to learn the context of every expression:
//!
//! | context                      | a string value is written as              |
//! |------------------------------|-------------------------------------------|
//! | unquoted                     | `'v'`                                     |
//! | inside `'...'`               | `v` with `'` → `'\''`                     |
//! | inside `"..."`               | `"'v'"` (close, single-quote, reopen)     |
//! | here-document, `<<EOF`       | `v` with `\`, `$`, `` ` `` escaped; no newline allowed |
//! | here-document, `<<'EOF'`     | `v` as is; no newline allowed             |
//! | comment                      | the expression is left as written         |
//!
//! Expressions of string parameters inside backticks, `${...}`, `$((...))`, right after a
//! backslash, or where the lexer cannot be sure (a `case` inside `$(...)`, quotes inside
//! `${...}`) are rejected when the document is parsed, with a hint to assign the value to a
//! variable first. Integer, number and boolean values are validated to contain only
//! `[A-Za-z0-9.+-]`, so they are inserted as they are anywhere (`$(( {{config.n}} + 1 ))`).
//!
//! After rendering, the result is scanned again and checked: every character the author
//! wrote must be in the same lexical state as before, and every character of a string
//! value must be inert data. Any difference rejects the value, so a flaw in the quoting
//! above fails closed instead of running code.
//!
//! Values are protected for one level of shell evaluation: a script that passes a value to
//! `eval` or to a nested `sh -c "..."` evaluates it again, which no quoting can prevent.

use super::config::Resolved;
use super::document::ParameterType;
use super::expr::{Piece, Template};
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Stands for an expression while scanning; NUL never occurs in a valid script.
const MARK: char = '\u{0}';

/// Where an expression stands in a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    Unquoted,
    Single,
    Double,
    Comment,
    HeredocExpanding,
    HeredocLiteral,
}

/// Places where a string value cannot be quoted reliably.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsafe {
    Backtick,
    ParamExpansion,
    Arithmetic,
    Escaped,
    Uncertain,
}

impl Unsafe {
    fn explain(self, name: &str) -> String {
        let expr = format!("{{{{config.{name}}}}}");
        let hint =
            format!("assign it to a variable first (X={expr} on its own line) and use \"$X\"");
        match self {
            Unsafe::Backtick => format!(
                "{expr} is inside `...`, where a value cannot be quoted safely; use $(...) or {hint}"
            ),
            Unsafe::ParamExpansion => {
                format!("{expr} is inside ${{...}}, where a value cannot be quoted safely; {hint}")
            }
            Unsafe::Arithmetic => format!(
                "{expr} is inside $((...)), where a string value cannot be quoted safely; \
                 declare the parameter as an integer or {hint}"
            ),
            Unsafe::Escaped => format!("{expr} follows a backslash; remove the backslash"),
            Unsafe::Uncertain => format!(
                "cannot tell how {expr} is quoted here (after a case statement inside $(...), \
                 quotes inside ${{...}} or $((...)), or an expression in a here-document \
                 delimiter); {hint}"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Frame {
    /// Top level or inside `$(...)`.
    Code {
        subst: bool,
        parens: u32,
        cases: u32,
    },
    Double,
    Backtick,
    Param {
        braces: u32,
    },
    Arith {
        parens: u32,
    },
    Heredoc {
        delim: Vec<char>,
        strip_tabs: bool,
        expand: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct CharInfo {
    /// Digest of the lexical state in which the character is read.
    sig: u64,
    /// The character is plain data (quoted, escaped, or in a comment or literal body).
    inert: bool,
}

struct Scanner {
    frames: Vec<Frame>,
    single: bool,
    comment: bool,
    word_start: bool,
    word: String,
    line_start: bool,
    pending: Vec<Frame>,
    /// `frame_hashes[i]` digests `frames[..=i]`, so a state digest costs O(1) per character.
    frame_hashes: Vec<u64>,
    pending_hash: u64,
    uncertain: bool,
    info: Vec<CharInfo>,
    marks: Vec<Result<Context, Unsafe>>,
}

fn is_shell_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl Scanner {
    fn scan(chars: &[char]) -> Scanner {
        let mut s = Scanner {
            frames: vec![Frame::Code {
                subst: false,
                parens: 0,
                cases: 0,
            }],
            single: false,
            comment: false,
            word_start: true,
            word: String::new(),
            line_start: false,
            pending: Vec::new(),
            frame_hashes: Vec::new(),
            pending_hash: 0,
            uncertain: false,
            info: Vec::with_capacity(chars.len()),
            marks: Vec::new(),
        };
        let mut i = 0;
        while i < chars.len() {
            let sig = s.sig();
            let used = s.step(chars, i, sig);
            i += used.max(1);
        }
        s
    }

    /// Digest of the lexical state. A step changes only the frame on top when it starts
    /// (in place or by popping it) and may push new ones, so every digest below that frame
    /// is still valid.
    fn sig(&mut self) -> u64 {
        let valid = self
            .frame_hashes
            .len()
            .min(self.frames.len())
            .saturating_sub(1);
        self.frame_hashes.truncate(valid);
        while self.frame_hashes.len() < self.frames.len() {
            let below = self.frame_hashes.last().copied().unwrap_or(0);
            let mut h = DefaultHasher::new();
            below.hash(&mut h);
            self.frames[self.frame_hashes.len()].hash(&mut h);
            self.frame_hashes.push(h.finish());
        }
        let mut h = DefaultHasher::new();
        self.frame_hashes.last().hash(&mut h);
        self.single.hash(&mut h);
        self.comment.hash(&mut h);
        self.pending_hash.hash(&mut h);
        h.finish()
    }

    fn emit(&mut self, sig: u64, inert: bool) {
        self.info.push(CharInfo { sig, inert });
    }

    fn emit_n(&mut self, sig: u64, inert: bool, n: usize) {
        for _ in 0..n {
            self.emit(sig, inert);
        }
    }

    fn mark(&mut self, sig: u64, result: Result<Context, Unsafe>) -> usize {
        let result = match result {
            Ok(_) if self.uncertain => Err(Unsafe::Uncertain),
            other => other,
        };
        self.marks.push(result);
        self.emit(sig, false);
        1
    }

    fn step(&mut self, chars: &[char], i: usize, sig: u64) -> usize {
        match self.frames.last().cloned() {
            Some(Frame::Code { .. }) | None => self.step_code(chars, i, sig),
            Some(Frame::Double) => self.step_double(chars, i, sig),
            Some(Frame::Backtick) => self.step_backtick(chars, i, sig),
            Some(Frame::Param { .. }) => self.step_param(chars, i, sig),
            Some(Frame::Arith { .. }) => self.step_arith(chars, i, sig),
            Some(Frame::Heredoc {
                delim,
                strip_tabs,
                expand,
            }) => self.step_heredoc(chars, i, sig, &delim, strip_tabs, expand),
        }
    }

    fn code_frame(&mut self) -> Option<(&mut bool, &mut u32, &mut u32)> {
        match self.frames.last_mut() {
            Some(Frame::Code {
                subst,
                parens,
                cases,
            }) => Some((subst, parens, cases)),
            _ => None,
        }
    }

    fn end_word(&mut self) {
        let word = std::mem::take(&mut self.word);
        let in_subst = matches!(self.frames.last(), Some(Frame::Code { subst: true, .. }));
        if let Some((_, _, cases)) = self.code_frame() {
            if word == "case" {
                *cases += 1;
                // `)` ends a case pattern *and* a `$(...)`: past this point the lexer could
                // pair them wrongly, so it stops trusting itself.
                if in_subst {
                    self.uncertain = true;
                }
            } else if word == "esac" {
                *cases = cases.saturating_sub(1);
            }
        }
    }

    /// `$(`, `$((` and `${` open frames in code, double quotes and here-documents.
    /// A backslash where only `escapable` characters (and a newline) lose their meaning:
    /// inside double quotes, or in an expanding here-document (where `"` stays literal).
    fn backslash(&mut self, chars: &[char], i: usize, sig: u64, escapable: &[char]) -> usize {
        match chars.get(i + 1) {
            Some(&MARK) => {
                self.emit(sig, false);
                self.marks.push(Err(Unsafe::Escaped));
                self.emit(sig, false);
                2
            }
            Some('\n') => {
                self.emit_n(sig, false, 2);
                2
            }
            Some(c) if escapable.contains(c) => {
                self.emit(sig, false);
                self.emit(sig, true);
                2
            }
            _ => {
                self.emit(sig, true);
                1
            }
        }
    }

    fn dollar(&mut self, chars: &[char], i: usize, sig: u64) -> usize {
        match (chars.get(i + 1), chars.get(i + 2)) {
            (Some('('), Some('(')) => {
                self.frames.push(Frame::Arith { parens: 0 });
                self.emit_n(sig, false, 3);
                3
            }
            (Some('('), _) => {
                self.frames.push(Frame::Code {
                    subst: true,
                    parens: 0,
                    cases: 0,
                });
                self.word_start = true;
                self.emit_n(sig, false, 2);
                2
            }
            (Some('{'), _) => {
                self.frames.push(Frame::Param { braces: 0 });
                self.emit_n(sig, false, 2);
                2
            }
            _ => {
                self.emit(sig, false);
                1
            }
        }
    }

    fn newline(&mut self, sig: u64) -> usize {
        self.emit(sig, false);
        self.word_start = true;
        if !self.pending.is_empty() {
            // Bodies follow in the order the here-documents were declared.
            let mut pending = std::mem::take(&mut self.pending);
            self.pending_hash = 0;
            pending.reverse();
            self.frames.extend(pending);
            self.line_start = true;
        }
        1
    }

    fn step_code(&mut self, chars: &[char], i: usize, sig: u64) -> usize {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if self.single {
            if c == MARK {
                return self.mark(sig, Ok(Context::Single));
            }
            if c == '\'' {
                self.single = false;
                self.emit(sig, false);
            } else {
                self.emit(sig, true);
            }
            return 1;
        }
        if self.comment {
            if c == '\n' {
                self.comment = false;
                return self.newline(sig);
            }
            if c == MARK {
                self.marks.push(Ok(Context::Comment));
            }
            self.emit(sig, true);
            return 1;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            self.word.push(c);
        } else {
            self.end_word();
        }
        let at_word_start = self.word_start;
        // After a blank or an operator a new token starts, where `#` begins a comment.
        self.word_start = matches!(
            c,
            ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>'
        );
        match c {
            MARK => self.mark(sig, Ok(Context::Unquoted)),
            '\\' => {
                self.emit(sig, false);
                match next {
                    Some(MARK) => {
                        self.marks.push(Err(Unsafe::Escaped));
                        self.emit(sig, false);
                        2
                    }
                    Some('\n') => {
                        self.emit(sig, false);
                        2
                    }
                    Some(_) => {
                        self.emit(sig, true);
                        2
                    }
                    None => 1,
                }
            }
            '\'' => {
                self.single = true;
                self.emit(sig, false);
                1
            }
            '"' => {
                self.frames.push(Frame::Double);
                self.emit(sig, false);
                1
            }
            '`' => {
                self.frames.push(Frame::Backtick);
                self.emit(sig, false);
                1
            }
            '$' => {
                if next == Some('\'') {
                    // bash's $'...' has escapes plain quotes lack; do not guess.
                    self.uncertain = true;
                }
                self.dollar(chars, i, sig)
            }
            '(' => {
                if let Some((_, parens, _)) = self.code_frame() {
                    *parens += 1;
                }
                self.emit(sig, false);
                1
            }
            ')' => {
                let mut pop = false;
                if let Some((subst, parens, cases)) = self.code_frame() {
                    if *parens > 0 {
                        *parens -= 1;
                    } else if *cases > 0 {
                        // A case pattern's closing parenthesis.
                    } else if *subst {
                        pop = true;
                    }
                }
                if pop {
                    self.frames.pop();
                }
                self.emit(sig, false);
                1
            }
            '#' if at_word_start => {
                self.comment = true;
                self.emit(sig, true);
                1
            }
            '<' if next == Some('<') => self.heredoc_declaration(chars, i, sig),
            '\n' => self.newline(sig),
            _ => {
                self.emit(sig, false);
                1
            }
        }
    }

    /// `<<WORD`, `<<-WORD`, `<<'WORD'`: remembers the here-document whose body starts on
    /// the next line. Returns the characters consumed.
    fn heredoc_declaration(&mut self, chars: &[char], i: usize, sig: u64) -> usize {
        if chars.get(i + 2) == Some(&'<') {
            // bash's here-string `<<<word`: an ordinary word follows.
            self.emit_n(sig, false, 3);
            return 3;
        }
        let mut k = i + 2;
        let strip_tabs = chars.get(k) == Some(&'-');
        if strip_tabs {
            k += 1;
        }
        let operator_end = k;
        while k < chars.len() && is_shell_blank(chars[k]) {
            k += 1;
        }
        let mut delim = Vec::new();
        let mut quoted = false;
        let mut has_mark = false;
        while k < chars.len() {
            let ch = chars[k];
            match ch {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => break,
                '\'' | '"' => {
                    quoted = true;
                    k += 1;
                    while k < chars.len() && chars[k] != ch {
                        if ch == '"' && chars[k] == '\\' && k + 1 < chars.len() {
                            k += 1;
                        }
                        has_mark |= chars[k] == MARK;
                        delim.push(chars[k]);
                        k += 1;
                    }
                    k += 1;
                }
                '\\' => {
                    quoted = true;
                    if let Some(&escaped) = chars.get(k + 1) {
                        has_mark |= escaped == MARK;
                        delim.push(escaped);
                    }
                    k += 2;
                }
                _ => {
                    has_mark |= ch == MARK;
                    delim.push(ch);
                    k += 1;
                }
            }
        }
        let k = k.min(chars.len());
        if has_mark || delim.is_empty() {
            // A delimiter made of a value cannot be trusted; leave the rest to the lexer.
            self.uncertain |= has_mark;
            self.emit_n(sig, false, operator_end - i);
            return operator_end - i;
        }
        let frame = Frame::Heredoc {
            delim,
            strip_tabs,
            expand: !quoted,
        };
        let mut h = DefaultHasher::new();
        self.pending_hash.hash(&mut h);
        frame.hash(&mut h);
        self.pending_hash = h.finish();
        self.pending.push(frame);
        self.emit_n(sig, false, k - i);
        k - i
    }

    fn step_double(&mut self, chars: &[char], i: usize, sig: u64) -> usize {
        let c = chars[i];
        match c {
            MARK => self.mark(sig, Ok(Context::Double)),
            '"' => {
                self.frames.pop();
                self.emit(sig, false);
                1
            }
            '\\' => self.backslash(chars, i, sig, &['$', '`', '"', '\\']),
            '$' => self.dollar(chars, i, sig),
            '`' => {
                self.frames.push(Frame::Backtick);
                self.emit(sig, false);
                1
            }
            _ => {
                self.emit(sig, true);
                1
            }
        }
    }

    fn step_backtick(&mut self, chars: &[char], i: usize, sig: u64) -> usize {
        match chars[i] {
            MARK => self.mark(sig, Err(Unsafe::Backtick)),
            '`' => {
                self.frames.pop();
                self.emit(sig, false);
                1
            }
            '\\' => {
                self.emit(sig, false);
                match chars.get(i + 1) {
                    Some(&MARK) => {
                        self.marks.push(Err(Unsafe::Backtick));
                        self.emit(sig, false);
                        2
                    }
                    Some(_) => {
                        self.emit(sig, false);
                        2
                    }
                    None => 1,
                }
            }
            _ => {
                self.emit(sig, false);
                1
            }
        }
    }

    fn step_param(&mut self, chars: &[char], i: usize, sig: u64) -> usize {
        let c = chars[i];
        match c {
            MARK => return self.mark(sig, Err(Unsafe::ParamExpansion)),
            '{' => {
                if let Some(Frame::Param { braces }) = self.frames.last_mut() {
                    *braces += 1;
                }
            }
            '}' => match self.frames.last_mut() {
                Some(Frame::Param { braces }) if *braces > 0 => *braces -= 1,
                _ => {
                    self.frames.pop();
                }
            },
            '\'' | '"' | '`' => self.uncertain = true,
            '$' if chars.get(i + 1) == Some(&'(') => self.uncertain = true,
            '\\' => {
                self.emit(sig, false);
                if chars.get(i + 1) == Some(&MARK) {
                    self.marks.push(Err(Unsafe::ParamExpansion));
                }
                if i + 1 < chars.len() {
                    self.emit(sig, false);
                    return 2;
                }
                return 1;
            }
            _ => {}
        }
        self.emit(sig, false);
        1
    }

    fn step_arith(&mut self, chars: &[char], i: usize, sig: u64) -> usize {
        let c = chars[i];
        match c {
            MARK => return self.mark(sig, Err(Unsafe::Arithmetic)),
            '(' => {
                if let Some(Frame::Arith { parens }) = self.frames.last_mut() {
                    *parens += 1;
                }
            }
            ')' => {
                let open =
                    matches!(self.frames.last(), Some(Frame::Arith { parens }) if *parens > 0);
                if open {
                    if let Some(Frame::Arith { parens }) = self.frames.last_mut() {
                        *parens -= 1;
                    }
                } else if chars.get(i + 1) == Some(&')') {
                    self.frames.pop();
                    self.emit_n(sig, false, 2);
                    return 2;
                } else {
                    self.uncertain = true;
                }
            }
            '\'' | '"' | '`' | '\\' => self.uncertain = true,
            _ => {}
        }
        self.emit(sig, false);
        1
    }

    fn step_heredoc(
        &mut self,
        chars: &[char],
        i: usize,
        sig: u64,
        delim: &[char],
        strip_tabs: bool,
        expand: bool,
    ) -> usize {
        if self.line_start {
            let end = chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |p| i + p);
            let mut line = &chars[i..end];
            if strip_tabs {
                while let Some(('\t', rest)) = line.split_first() {
                    line = rest;
                }
            }
            if line == delim {
                let used = end - i + usize::from(end < chars.len());
                self.emit_n(sig, false, used);
                self.frames.pop();
                self.line_start = matches!(self.frames.last(), Some(Frame::Heredoc { .. }));
                return used;
            }
            self.line_start = false;
        }
        let c = chars[i];
        if c == '\n' {
            self.line_start = true;
            self.emit(sig, false);
            return 1;
        }
        if c == MARK {
            return self.mark(
                sig,
                Ok(if expand {
                    Context::HeredocExpanding
                } else {
                    Context::HeredocLiteral
                }),
            );
        }
        if !expand {
            self.emit(sig, true);
            return 1;
        }
        match c {
            '\\' => self.backslash(chars, i, sig, &['$', '`', '\\']),
            '$' => self.dollar(chars, i, sig),
            '`' => {
                self.frames.push(Frame::Backtick);
                self.emit(sig, false);
                1
            }
            _ => {
                self.emit(sig, true);
                1
            }
        }
    }
}

fn with_marks(template: &Template) -> Vec<char> {
    let mut chars = Vec::new();
    for piece in &template.pieces {
        match piece {
            Piece::Text(t) => chars.extend(t.chars()),
            Piece::Param(_) => chars.push(MARK),
        }
    }
    chars
}

/// Checks, when a document is parsed, that every string parameter in a script stands where
/// it can be quoted. `is_string` tells whether a parameter is a string parameter.
pub(crate) fn check_script(template: &Template, is_string: impl Fn(&str) -> bool) -> Vec<String> {
    if !template.has_params() {
        return Vec::new();
    }
    let scan = Scanner::scan(&with_marks(template));
    template
        .params()
        .zip(scan.marks)
        .filter_map(|(name, context)| match context {
            Err(why) if is_string(name) => Some(why.explain(name)),
            _ => None,
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Author,
    Syntax,
    /// Index into the list of rendered parameters.
    Value(usize),
}

/// The characters allowed in non-string values, which need no quoting anywhere.
pub(crate) fn is_plain_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '+' || c == '-')
}

/// Renders a script with values quoted for their context, then verifies the result.
pub(crate) fn render_script(
    template: &Template,
    values: &BTreeMap<String, Resolved>,
) -> Result<String, String> {
    if !template.has_params() {
        return Ok(template.to_string());
    }
    let scan = Scanner::scan(&with_marks(template));
    let author_sigs: Vec<u64> = {
        let mut sigs = Vec::new();
        let mut idx = 0;
        for piece in &template.pieces {
            match piece {
                Piece::Text(t) => {
                    for _ in t.chars() {
                        sigs.push(scan.info[idx].sig);
                        idx += 1;
                    }
                }
                Piece::Param(_) => idx += 1,
            }
        }
        sigs
    };

    let mut out: Vec<(char, Origin)> = Vec::new();
    let mut names: Vec<(&str, bool)> = Vec::new();
    let mut marks = scan.marks.iter();
    for piece in &template.pieces {
        let name = match piece {
            Piece::Text(t) => {
                out.extend(t.chars().map(|c| (c, Origin::Author)));
                continue;
            }
            Piece::Param(name) => name.as_str(),
        };
        let context = marks.next().copied().unwrap_or(Err(Unsafe::Uncertain));
        let Some(value) = values.get(name) else {
            return Err(super::expr::unknown_parameter(name));
        };
        let is_string = value.kind == ParameterType::String;
        let index = names.len();
        names.push((name, is_string));
        let syntax = |out: &mut Vec<(char, Origin)>, s: &str| {
            out.extend(s.chars().map(|c| (c, Origin::Syntax)));
        };
        if context == Ok(Context::Comment) {
            syntax(&mut out, &format!("{{{{config.{name}}}}}"));
            continue;
        }
        if !is_string {
            if !is_plain_token(&value.text) {
                return Err(format!(
                    "the value of config.{name} is not a plain {} token",
                    value.kind.as_str()
                ));
            }
            out.extend(value.text.chars().map(|c| (c, Origin::Value(index))));
            continue;
        }
        let context = context.map_err(|why| why.explain(name))?;
        let single_quoted_body = |out: &mut Vec<(char, Origin)>| {
            for c in value.text.chars() {
                if c == '\'' {
                    out.push(('\'', Origin::Syntax));
                    out.push(('\\', Origin::Syntax));
                    out.push(('\'', Origin::Value(index)));
                    out.push(('\'', Origin::Syntax));
                } else {
                    out.push((c, Origin::Value(index)));
                }
            }
        };
        match context {
            Context::Unquoted => {
                syntax(&mut out, "'");
                single_quoted_body(&mut out);
                syntax(&mut out, "'");
            }
            Context::Single => single_quoted_body(&mut out),
            Context::Double => {
                syntax(&mut out, "\"'");
                single_quoted_body(&mut out);
                syntax(&mut out, "'\"");
            }
            Context::HeredocExpanding | Context::HeredocLiteral => {
                if value.text.contains('\n') || value.text.contains('\r') {
                    return Err(format!(
                        "the value of config.{name} contains a line break, which is not \
                         allowed inside a here-document"
                    ));
                }
                for c in value.text.chars() {
                    if context == Context::HeredocExpanding && matches!(c, '\\' | '$' | '`') {
                        out.push(('\\', Origin::Syntax));
                    }
                    out.push((c, Origin::Value(index)));
                }
            }
            Context::Comment => {}
        }
    }

    // Verify: the author's characters keep their lexical state, and string values are data.
    let rendered: Vec<char> = out.iter().map(|(c, _)| *c).collect();
    let check = Scanner::scan(&rendered);
    let mut author = author_sigs.iter();
    for ((_, origin), info) in out.iter().zip(&check.info) {
        match origin {
            Origin::Author => {
                if author.next() != Some(&info.sig) {
                    return Err(structure_error(&names));
                }
            }
            Origin::Value(i) => {
                if names.get(*i).is_some_and(|(_, is_string)| *is_string) && !info.inert {
                    let name = names.get(*i).map_or("?", |(n, _)| n);
                    return Err(format!(
                        "the value of config.{name} cannot be inserted into this script safely"
                    ));
                }
            }
            Origin::Syntax => {}
        }
    }
    Ok(rendered.into_iter().collect())
}

fn structure_error(names: &[(&str, bool)]) -> String {
    let list: Vec<String> = names.iter().map(|(n, _)| format!("config.{n}")).collect();
    format!(
        "the value of {} would change how the rest of the script is read (e.g. it ends a \
         here-document); it is rejected",
        list.join(", ")
    )
}

const SHELLS: [&str; 7] = ["sh", "bash", "dash", "ash", "ksh", "mksh", "zsh"];

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// For a program run without a shell: the index of the argument that is a shell script
/// (`sh -c 'script'`, `bash -ec 'script'`, `env FOO=1 sh -c ...`, `busybox sh -c ...`).
pub(crate) fn script_argument(argv: &[String]) -> Option<usize> {
    let mut i = 0;
    // Wrappers that run their first operand as the program.
    loop {
        let program = basename(argv.get(i)?);
        if program == "env" {
            i += 1;
            while argv
                .get(i)
                .is_some_and(|a| a.starts_with('-') || a.contains('='))
            {
                i += 1;
            }
        } else if program == "busybox" {
            i += 1;
        } else {
            break;
        }
    }
    if !SHELLS.contains(&basename(argv.get(i)?)) {
        return None;
    }
    let mut saw_c = false;
    for (j, arg) in argv.iter().enumerate().skip(i + 1) {
        if arg == "--" {
            continue;
        }
        if let Some(flags) = arg.strip_prefix('-').or_else(|| arg.strip_prefix('+'))
            && !flags.is_empty()
            && flags.chars().all(|c| c.is_ascii_alphabetic())
        {
            saw_c |= flags.contains('c');
            continue;
        }
        return saw_c.then_some(j);
    }
    None
}

/// Whether an inline file is a shell script (its values then get shell quoting).
pub(crate) fn is_shell_file(path: &str, content: &str) -> bool {
    if path.ends_with(".sh") || path.ends_with(".bash") {
        return true;
    }
    let Some(first) = content.lines().next() else {
        return false;
    };
    let Some(shebang) = first.strip_prefix("#!") else {
        return false;
    };
    let mut words = shebang.split_whitespace();
    let Some(program) = words.next() else {
        return false;
    };
    let program = if basename(program) == "env" {
        words.find(|w| !w.starts_with('-')).unwrap_or("")
    } else {
        program
    };
    SHELLS.contains(&basename(program))
}

/// POSIX single-quoting of one word: `it's` → `'it'\''s'`.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::spec::expr::parse;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, Resolved> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Resolved {
                        text: v.to_string(),
                        json: serde_json::Value::String(v.to_string()),
                        kind: ParameterType::String,
                        sensitive: false,
                    },
                )
            })
            .collect()
    }

    fn int(name: &str, v: i64) -> (String, Resolved) {
        (
            name.to_string(),
            Resolved {
                text: v.to_string(),
                json: v.into(),
                kind: ParameterType::Integer,
                sensitive: false,
            },
        )
    }

    fn render(script: &str, pairs: &[(&str, &str)]) -> Result<String, String> {
        render_script(&parse(script).unwrap(), &values(pairs))
    }

    fn check(script: &str) -> Vec<String> {
        check_script(&parse(script).unwrap(), |_| true)
    }

    const NASTY: &[&str] = &[
        "$(touch /tmp/pwned); rm -rf",
        "`touch /tmp/pwned`",
        "a; touch /tmp/pwned",
        "it's",
        "'",
        "''\\''",
        "\"",
        "\\",
        "a\\",
        "line1\nline2",
        "$HOME ${HOME} $((1+1))",
        "x' ; touch /tmp/pwned ; echo '",
        "x\" ; touch /tmp/pwned ; echo \"",
        "-n",
        "",
        "  spaces  ",
        "*",
        "EOF",
        "#",
        "|| touch /tmp/pwned",
        "\r\n",
        "ünïcødé ✓",
    ];

    #[test]
    fn unquoted_values_become_single_quoted_words() {
        assert_eq!(
            render("echo {{config.x}}", &[("x", "$(touch /tmp/pwned); rm -rf")]).unwrap(),
            "echo '$(touch /tmp/pwned); rm -rf'"
        );
        assert_eq!(
            render("echo {{config.x}}", &[("x", "it's")]).unwrap(),
            "echo 'it'\\''s'"
        );
        assert_eq!(
            render("echo {{config.x}}", &[("x", "")]).unwrap(),
            "echo ''"
        );
        assert_eq!(
            render("echo a{{config.x}}b", &[("x", "1 2")]).unwrap(),
            "echo a'1 2'b"
        );
        assert_eq!(
            render("echo {{config.x}}", &[("x", "a\nb")]).unwrap(),
            "echo 'a\nb'"
        );
    }

    #[test]
    fn values_inside_quotes() {
        assert_eq!(
            render("echo \"v={{config.x}}.\"", &[("x", "$(id)")]).unwrap(),
            "echo \"v=\"'$(id)'\".\""
        );
        assert_eq!(
            render("echo 'v={{config.x}}.'", &[("x", "it's $(id)")]).unwrap(),
            "echo 'v=it'\\''s $(id).'"
        );
        assert_eq!(
            render("X=\"$(echo \"{{config.x}}\")\"", &[("x", "`id`")]).unwrap(),
            "X=\"$(echo \"\"'`id`'\"\")\""
        );
    }

    #[test]
    fn here_documents() {
        assert_eq!(
            render(
                "cat <<EOF\nurl={{config.x}}\nEOF\necho {{config.x}}",
                &[("x", "$(id)`id`\\")]
            )
            .unwrap(),
            "cat <<EOF\nurl=\\$(id)\\`id\\`\\\\\nEOF\necho '$(id)`id`\\'"
        );
        assert_eq!(
            render("cat <<'EOF'\nurl={{config.x}}\nEOF\n", &[("x", "$(id)")]).unwrap(),
            "cat <<'EOF'\nurl=$(id)\nEOF\n"
        );
        assert_eq!(
            render("cat <<-EOF\n\turl={{config.x}}\n\tEOF\n", &[("x", "v")]).unwrap(),
            "cat <<-EOF\n\turl=v\n\tEOF\n"
        );
        assert!(
            render(
                "cat <<EOF\n{{config.x}}\nEOF\nrm -rf /tmp/x\n",
                &[("x", "a\nEOF")]
            )
            .unwrap_err()
            .contains("line break")
        );
        // A value that is the delimiter would end the here-document early.
        assert_eq!(
            render(
                "cat <<EOF\n{{config.x}}\necho inside\nEOF\n",
                &[("x", "EOF")]
            )
            .unwrap_err(),
            "the value of config.x cannot be inserted into this script safely"
        );
        // An empty value leaves the author's own text to form the delimiter.
        assert_eq!(
            render("cat <<EOF\n{{config.x}}EOF\nrm -rf x\nEOF\n", &[("x", "")]).unwrap_err(),
            "the value of config.x would change how the rest of the script is read (e.g. it \
             ends a here-document); it is rejected"
        );
        assert!(render("cat <<EOF\nE{{config.x}}\nrm -rf x\nEOF\n", &[("x", "OF")]).is_err());
        // Two here-documents on one line.
        assert_eq!(
            render(
                "cat <<A <<'B'\n{{config.x}}\nA\n{{config.x}}\nB\necho {{config.x}}",
                &[("x", "$y")]
            )
            .unwrap(),
            "cat <<A <<'B'\n\\$y\nA\n$y\nB\necho '$y'"
        );
    }

    #[test]
    fn comments_keep_the_expression() {
        assert_eq!(
            render(
                "# echo {{config.x}}\necho {{config.x}}",
                &[("x", "a\nrm -rf /")]
            )
            .unwrap(),
            "# echo {{config.x}}\necho 'a\nrm -rf /'"
        );
        // Not a comment: `#` inside a word.
        assert_eq!(
            render("echo a#{{config.x}}", &[("x", "b c")]).unwrap(),
            "echo a#'b c'"
        );
    }

    #[test]
    fn unsafe_contexts_are_rejected_at_parse_time() {
        assert_eq!(
            check("echo {{config.x}} \"$(echo {{config.x}})\" '{{config.x}}'"),
            Vec::<String>::new()
        );
        let backtick = check("echo `echo {{config.x}}`");
        assert_eq!(backtick.len(), 1);
        assert!(backtick[0].contains("is inside `...`"), "{backtick:?}");
        assert!(check("echo ${X:-{{config.x}}}")[0].contains("inside ${...}"));
        assert!(check("echo $(( {{config.x}} + 1 ))")[0].contains("inside $((...))"));
        assert!(check("echo \\{{config.x}}")[0].contains("follows a backslash"));
        assert!(check("echo \"\\{{config.x}}\"")[0].contains("follows a backslash"));
        assert!(check("x=$(case a in a) echo;; esac) {{config.x}}")[0].contains("cannot tell"));
        assert!(check("cat <<{{config.x}}\nfoo\n")[0].contains("cannot tell"));
        assert!(check("echo $'a\\'b' {{config.x}}")[0].contains("cannot tell"));
        // `#` right after an operator starts a comment: the expression stays as written.
        assert_eq!(
            render("echo x >#{{config.x}}\necho {{config.x}}", &[("x", "a\nb")]).unwrap(),
            "echo x >#{{config.x}}\necho 'a\nb'"
        );
        // Integer parameters need no quoting, so they may stand anywhere.
        let t =
            parse("echo $(( {{config.n}} + 1 )) ${X:-{{config.n}}} `echo {{config.n}}`").unwrap();
        assert_eq!(check_script(&t, |_| false), Vec::<String>::new());
        let mut v = BTreeMap::new();
        v.extend([int("n", 3)]);
        assert_eq!(
            render_script(&t, &v).unwrap(),
            "echo $(( 3 + 1 )) ${X:-3} `echo 3`"
        );
    }

    #[test]
    fn nasty_values_stay_data_in_every_context() {
        let scripts = [
            "echo {{config.x}}",
            "echo \"{{config.x}}\"",
            "echo 'pre{{config.x}}post'",
            "echo \"a $(printf %s {{config.x}}) b\"",
            "cat <<'EOF'\n{{config.x}}\nEOF",
            "cat <<EOF\n{{config.x}}\nEOF",
            "f() { echo {{config.x}}; }; f",
            "case {{config.x}} in *) echo ok;; esac",
        ];
        for script in scripts {
            for value in NASTY {
                let heredoc = script.contains("<<");
                match render(script, &[("x", value)]) {
                    Ok(out) => {
                        assert!(!heredoc || !value.contains('\n') && !value.contains('\r'));
                        assert!(out.contains("echo") || out.contains("cat"), "{out}");
                    }
                    Err(e) => assert!(
                        heredoc
                            && (value.contains('\n') || value.contains('\r') || *value == "EOF"),
                        "{script:?} with {value:?}: {e}"
                    ),
                }
            }
        }
    }

    /// Runs the rendered scripts with the real /bin/sh: the value must come out exactly
    /// as given, and nothing it contains may run.
    #[test]
    fn real_shell_prints_values_verbatim() {
        let dir = std::env::temp_dir().join(format!("assay-shell-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let canary = dir.join("pwned");
        let canary_s = canary.display().to_string();
        let mut nasty: Vec<String> = NASTY
            .iter()
            .map(|v| v.replace("/tmp/pwned", &canary_s))
            .collect();
        nasty.push(format!("'; touch {canary_s}; echo '"));
        nasty.push(format!("\"; touch {canary_s}; echo \""));
        let scripts = [
            ("printf '%s' {{config.x}}", false),
            ("printf '%s' \"{{config.x}}\"", false),
            ("printf '%s' 'a{{config.x}}b'", true),
            ("printf '%s' \"$(printf '%s' {{config.x}})\"", false),
            ("cat <<'EOF'\n{{config.x}}\nEOF", false),
            ("cat <<EOF\n{{config.x}}\nEOF", false),
        ];
        for (script, wrapped) in scripts {
            for value in &nasty {
                let Ok(rendered) = render(script, &[("x", value)]) else {
                    assert!(script.contains("<<"), "{script:?} rejected {value:?}");
                    continue;
                };
                let out = std::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(&rendered)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{rendered:?}: {out:?}");
                let mut want = if wrapped {
                    format!("a{value}b")
                } else {
                    value.clone()
                };
                if script.contains("$(printf") {
                    // Command substitution drops trailing newlines.
                    want = want.trim_end_matches('\n').to_string();
                }
                if script.contains("<<") {
                    want.push('\n');
                }
                assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{rendered:?}");
                assert!(!canary.exists(), "injection through {rendered:?}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Scanning is linear: hostile nesting or many here-documents cannot make it quadratic.
    #[test]
    fn scanning_large_hostile_scripts_is_fast() {
        let nested = format!(
            "{}echo {{{{config.x}}}} {}{}",
            "$(".repeat(50_000),
            "y".repeat(100_000),
            ")".repeat(50_000)
        );
        let heredocs = format!(
            "cat{} {{{{config.x}}}} {}\n",
            " <<A".repeat(30_000),
            "z".repeat(100_000)
        );
        for script in [nested, heredocs] {
            let started = std::time::Instant::now();
            let t = parse(&script).unwrap();
            assert_eq!(check_script(&t, |_| true), Vec::<String>::new());
            let out = render_script(&t, &values(&[("x", "v")])).unwrap();
            assert!(out.contains("echo 'v'") || out.contains(" 'v' "));
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "{:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn shell_argument_detection() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(script_argument(&argv(&["sh", "-c", "echo"])), Some(2));
        assert_eq!(
            script_argument(&argv(&["/bin/bash", "-ec", "echo", "arg0"])),
            Some(2)
        );
        assert_eq!(
            script_argument(&argv(&["bash", "-e", "-c", "echo"])),
            Some(3)
        );
        assert_eq!(
            script_argument(&argv(&["/usr/bin/env", "A=1", "sh", "-c", "x"])),
            Some(4)
        );
        assert_eq!(
            script_argument(&argv(&["busybox", "sh", "-c", "x"])),
            Some(3)
        );
        assert_eq!(script_argument(&argv(&["sh", "script.sh"])), None);
        assert_eq!(script_argument(&argv(&["python3", "-c", "print(1)"])), None);
        assert_eq!(script_argument(&argv(&["ls"])), None);
        assert_eq!(script_argument(&argv(&[])), None);
    }

    #[test]
    fn shell_file_detection() {
        assert!(is_shell_file("run.sh", "echo"));
        assert!(is_shell_file("run", "#!/bin/sh\necho"));
        assert!(is_shell_file("run", "#!/usr/bin/env bash\necho"));
        assert!(!is_shell_file("run.py", "#!/usr/bin/env python3\n"));
        assert!(!is_shell_file("data.txt", "hello"));
    }

    #[test]
    fn quote_word() {
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
    }
}
