//! OAuth scopes for the MCP resource: `mcp:read` ⊂ `mcp:run` ⊂ `mcp:write`
//! (DESIGN.md §3). A scope caps the environment level a token may use; the user's role
//! caps it again, per environment, in `Principal::level_in`.

use assay_core::permission::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum McpScope {
    Read,
    Run,
    Write,
}

/// Asks for a refresh token; not a resource permission.
pub const OFFLINE_ACCESS: &str = "offline_access";

impl McpScope {
    pub const ALL: [McpScope; 3] = [McpScope::Read, McpScope::Run, McpScope::Write];

    pub fn as_str(self) -> &'static str {
        match self {
            McpScope::Read => "mcp:read",
            McpScope::Run => "mcp:run",
            McpScope::Write => "mcp:write",
        }
    }

    pub fn from_token(token: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == token)
    }

    /// The environment level this scope allows at most.
    pub fn level(self) -> Level {
        match self {
            McpScope::Read => Level::Read,
            McpScope::Run => Level::Run,
            McpScope::Write => Level::Write,
        }
    }

    /// The narrowest scope that covers `level`; `None` for admin, which no OAuth scope
    /// grants (environment settings are not an MCP operation).
    pub fn for_level(level: Level) -> Option<Self> {
        match level {
            Level::Read => Some(McpScope::Read),
            Level::Run => Some(McpScope::Run),
            Level::Write => Some(McpScope::Write),
            Level::Admin => None,
        }
    }

    /// The highest scope whose level does not exceed `level` (a user's role): what the
    /// consent page may offer at most.
    pub fn at_most(level: Level) -> Self {
        Self::for_level(level).unwrap_or(McpScope::Write)
    }

    /// Whether a token with this scope may do what `needed` allows.
    pub fn covers(self, needed: McpScope) -> bool {
        self >= needed
    }

    /// Narrows to `ceiling`: never wider than either.
    pub fn narrow_to(self, ceiling: McpScope) -> McpScope {
        self.min(ceiling)
    }

    /// The space-separated form for a token response or `scope` claim. Lists every
    /// implied scope, so a client that checks for `mcp:read` in a `mcp:run` grant finds it.
    pub fn to_scope_string(self) -> String {
        Self::ALL
            .into_iter()
            .filter(|s| *s <= self)
            .map(McpScope::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl std::fmt::Display for McpScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// RFC 6749 §3.3: tokens separated by single spaces, each `%x21 / %x23-5B / %x5D-7E`.
    #[error(
        "the scope parameter is malformed: tokens must be separated by single spaces and use printable ASCII other than '\"' and '\\'"
    )]
    Malformed,
}

/// A parsed `scope` parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeRequest {
    /// The widest MCP scope asked for (the scopes are nested, so that is all that
    /// matters); `None` when the request names none.
    pub mcp: Option<McpScope>,
    pub offline_access: bool,
    /// Tokens this server does not know. RFC 6749 §3.3 lets the server ignore them;
    /// they are kept so the caller can log or refuse them.
    pub unknown: Vec<String>,
}

impl ScopeRequest {
    pub fn parse(scope: &str) -> Result<Self, ScopeError> {
        let mut request = ScopeRequest::default();
        if scope.is_empty() {
            return Ok(request);
        }
        for token in scope.split(' ') {
            let valid = !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid {
                return Err(ScopeError::Malformed);
            }
            if let Some(s) = McpScope::from_token(token) {
                request.mcp = request.mcp.max(Some(s));
            } else if token == OFFLINE_ACCESS {
                request.offline_access = true;
            } else if !request.unknown.iter().any(|u| u == token) {
                request.unknown.push(token.to_owned());
            }
        }
        Ok(request)
    }

    /// What may be granted: the requested MCP scope (or `default` when none was asked
    /// for) narrowed to `ceiling` (the user's role, or what the user consented to).
    /// Never wider than what was requested or what the ceiling allows.
    pub fn grant(&self, default: McpScope, ceiling: McpScope) -> McpScope {
        self.mcp.unwrap_or(default).narrow_to(ceiling)
    }
}

/// The MCP scope of a granted scope string (e.g. the `scope` claim of an access token).
/// Unknown tokens are ignored; `None` when no MCP scope is present.
pub fn granted_mcp_scope(scope: &str) -> Result<Option<McpScope>, ScopeError> {
    ScopeRequest::parse(scope).map(|r| r.mcp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use McpScope::{Read, Run, Write};

    #[test]
    fn hierarchy_and_levels() {
        assert!(Write.covers(Run) && Write.covers(Read) && Run.covers(Read));
        assert!(!Read.covers(Run) && !Run.covers(Write) && !Read.covers(Write));
        assert!(Read.covers(Read));
        assert_eq!(
            McpScope::ALL.map(McpScope::level),
            [Level::Read, Level::Run, Level::Write]
        );
        assert_eq!(McpScope::for_level(Level::Run), Some(Run));
        assert_eq!(McpScope::for_level(Level::Admin), None);
        assert_eq!(McpScope::at_most(Level::Admin), Write);
        assert_eq!(McpScope::at_most(Level::Read), Read);
    }

    #[test]
    fn format_lists_implied_scopes() {
        assert_eq!(Read.to_scope_string(), "mcp:read");
        assert_eq!(Run.to_scope_string(), "mcp:read mcp:run");
        assert_eq!(Write.to_scope_string(), "mcp:read mcp:run mcp:write");
        for s in McpScope::ALL {
            assert_eq!(granted_mcp_scope(&s.to_scope_string()), Ok(Some(s)));
            assert_eq!(McpScope::from_token(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
    }

    #[test]
    fn parse() {
        let cases: &[(&str, Option<McpScope>, bool, &[&str])] = &[
            ("", None, false, &[]),
            ("mcp:read", Some(Read), false, &[]),
            ("mcp:write mcp:read", Some(Write), false, &[]),
            ("mcp:read mcp:run", Some(Run), false, &[]),
            ("offline_access mcp:run", Some(Run), true, &[]),
            ("offline_access", None, true, &[]),
            (
                "openid profile mcp:read openid",
                Some(Read),
                false,
                &["openid", "profile"],
            ),
            // Scope tokens are case-sensitive.
            ("MCP:WRITE", None, false, &["MCP:WRITE"]),
            ("mcp:admin", None, false, &["mcp:admin"]),
            ("mcp:*", None, false, &["mcp:*"]),
        ];
        for (input, mcp, offline, unknown) in cases {
            let r = ScopeRequest::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.mcp, *mcp, "{input}");
            assert_eq!(r.offline_access, *offline, "{input}");
            assert_eq!(r.unknown, *unknown, "{input}");
        }
        for bad in [
            " ",
            "mcp:read ",
            " mcp:read",
            "mcp:read  mcp:run",
            "mcp:read\tmcp:run",
            "a\"b",
            "a\\b",
            "mcp:réad",
            "mcp:read\n",
        ] {
            assert_eq!(
                ScopeRequest::parse(bad),
                Err(ScopeError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn grant_never_widens() {
        let cases: &[(&str, McpScope, McpScope, McpScope)] = &[
            // (requested, default, ceiling, granted)
            ("mcp:write", Read, Write, Write),
            ("mcp:write", Read, Run, Run),
            ("mcp:write", Read, Read, Read),
            ("mcp:read", Read, Write, Read),
            ("mcp:run", Read, Write, Run),
            ("", Read, Write, Read),
            ("offline_access", Read, Write, Read),
            ("", Run, Read, Read),
            ("openid", Read, Write, Read),
        ];
        for (requested, default, ceiling, granted) in cases {
            let r = ScopeRequest::parse(requested).unwrap();
            assert_eq!(
                r.grant(*default, *ceiling),
                *granted,
                "{requested} {ceiling}"
            );
        }
        for a in McpScope::ALL {
            for b in McpScope::ALL {
                let n = a.narrow_to(b);
                assert!(n <= a && n <= b);
            }
        }
    }
}
