//! A SQL statement under construction plus its arguments. Placeholders are `$n`,
//! which PostgreSQL and SQLite (as numbered parameters) both understand, so each
//! statement is written once for both backends.

use assay_core::Timestamp;
use uuid::Uuid;

/// One bound value. Backends map each variant to their own encoding (UUIDs are BLOBs
/// on SQLite and `uuid` on PostgreSQL; times are integer microseconds or `timestamptz`).
#[derive(Debug, Clone)]
pub enum Arg {
    Uuid(Uuid),
    OptUuid(Option<Uuid>),
    Text(String),
    OptText(Option<String>),
    I64(i64),
    OptI64(Option<i64>),
    Bool(bool),
    Time(Timestamp),
    OptTime(Option<Timestamp>),
}

impl From<Uuid> for Arg {
    fn from(v: Uuid) -> Self {
        Arg::Uuid(v)
    }
}
impl From<Option<Uuid>> for Arg {
    fn from(v: Option<Uuid>) -> Self {
        Arg::OptUuid(v)
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(v)
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptI64(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl From<Timestamp> for Arg {
    fn from(v: Timestamp) -> Self {
        Arg::Time(v)
    }
}
impl From<Option<Timestamp>> for Arg {
    fn from(v: Option<Timestamp>) -> Self {
        Arg::OptTime(v)
    }
}

/// SQL text and its arguments. Only static fragments are pushed as text; every value
/// goes through [`Sql::bind`] or [`Sql::arg`], so nothing from input reaches the text.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    /// A statement whose text already names its placeholders (`$1`, `$2`, …); add the
    /// values in order with [`Sql::arg`].
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    /// Adds the value for the next numbered placeholder already in the text.
    pub fn arg(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Appends static SQL.
    pub fn push(&mut self, fragment: &str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Appends ` LIMIT n` with `n` written into the text, not bound: SQLite's planner peeks
    /// at a bound LIMIT, which makes the prepared statement expire whenever that parameter
    /// is bound again, i.e. a full re-parse on every execution. An integer carries no SQL.
    pub fn push_limit(&mut self, n: i64) -> &mut Self {
        self.text.push_str(" LIMIT ");
        self.text.push_str(&n.to_string());
        self
    }

    /// Appends `(p1, p2, …)` with one placeholder per value.
    pub fn bind_tuple(&mut self, values: impl IntoIterator<Item = Arg>) -> &mut Self {
        self.text.push('(');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(v);
        }
        self.text.push(')');
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_bind_order() {
        let mut q = Sql::new("SELECT 1 FROM t WHERE a = $1").arg(7i64);
        q.push(" AND b = ").bind("x").push(" AND c IN ");
        q.bind_tuple([Arg::I64(1), Arg::I64(2)]);
        assert_eq!(
            q.text,
            "SELECT 1 FROM t WHERE a = $1 AND b = $2 AND c IN ($3, $4)"
        );
        assert_eq!(q.args.len(), 4);
    }
}
