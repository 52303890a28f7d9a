//! Environment permission levels, ordered `read < run < write < admin` (DESIGN.md §3).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Read,
    Run,
    Write,
    Admin,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Run => "run",
            Level::Write => "write",
            Level::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Level::Read),
            "run" => Ok(Level::Run),
            "write" => Ok(Level::Write),
            "admin" => Ok(Level::Admin),
            other => Err(format!(
                "unknown permission level {other:?} (expected read, run, write or admin)"
            )),
        }
    }
}
