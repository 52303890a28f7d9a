//! Reading /proc: which processes belong to a process group, and what they use.

use std::sync::OnceLock;

/// What /proc/<pid>/stat says about one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub pid: i32,
    pub pgrp: i32,
    pub state: char,
    /// utime + stime + cutime + cstime, in clock ticks. Waited-for children are included so
    /// CPU time does not vanish when a short-lived child of the group is reaped.
    pub ticks: u64,
}

impl ProcStat {
    /// Zombies and dead entries hold no resources and cannot be signalled away; they only
    /// wait for a parent (possibly PID 1) to reap them.
    pub fn is_alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the content of /proc/<pid>/stat. The command name may contain spaces and
/// parentheses, so fields are counted after the last `)`.
pub(crate) fn parse_stat(content: &str) -> Option<ProcStat> {
    let open = content.find('(')?;
    let close = content.rfind(')')?;
    let pid = content.get(..open)?.trim().parse().ok()?;
    let rest: Vec<&str> = content.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { rest.get(n - 3)?.parse().ok() };
    let state = rest.first()?.chars().next()?;
    let pgrp = rest.get(2)?.parse().ok()?;
    let ticks = field(14)? + field(15)? + field(16)? + field(17)?;
    Some(ProcStat {
        pid,
        pgrp,
        state,
        ticks,
    })
}

/// Every process whose process group is `pgid` (zombies included; see `is_alive`).
pub(crate) fn group_members(pgid: i32) -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|s| parse_stat(&s))
        .filter(|s| s.pgrp == pgid)
        .collect()
}

/// Whether any live (non-zombie) process is left in the group.
pub(crate) fn group_alive(pgid: i32) -> bool {
    group_members(pgid).iter().any(ProcStat::is_alive)
}

/// Resident set size of one process, from /proc/<pid>/statm.
pub(crate) fn rss_bytes(pid: i32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

pub(crate) fn clock_ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap_or(100))
}

pub(crate) fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| sysconf(nix::unistd::SysconfVar::PAGE_SIZE).unwrap_or(4096))
}

fn sysconf(var: nix::unistd::SysconfVar) -> Option<u64> {
    let value = nix::unistd::sysconf(var).ok()??;
    u64::try_from(value).ok().filter(|v| *v > 0)
}

/// Process groups of live processes whose environment holds exactly `entry`
/// (e.g. `ASSAY_EXECUTION_ID=<id>`). Every step process gets that variable, so this finds
/// an execution's processes even after the server that started them is gone.
pub(crate) fn groups_with_env_entry(entry: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut groups: Vec<i32> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == entry.as_bytes()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|s| parse_stat(&s))
        .filter(|s| s.is_alive())
        .map(|s| s.pgrp)
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "4242 (my (odd) cmd) S 1 4240 4240 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 \
                    123 4096 10 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.pid, 4242);
        assert_eq!(stat.pgrp, 4240);
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ticks, 13);
        assert!(stat.is_alive());
    }

    #[test]
    fn sees_own_process_group() {
        let me = std::process::id() as i32;
        let pgid = nix::unistd::getpgid(None).unwrap().as_raw();
        assert!(group_members(pgid).iter().any(|s| s.pid == me));
        assert!(rss_bytes(me).unwrap() > 0);
    }
}
