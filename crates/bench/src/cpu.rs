//! CPU time of whole process trees from /proc: a service, or a database or broker
//! server with its children (PostgreSQL's backends, RabbitMQ's helpers). A child
//! that has exited is counted in its parent's `cutime`/`cstime` once reaped, so a
//! tree's total only grows.

use std::collections::HashMap;

/// Clock ticks per second of /proc's times (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
const TICKS: f64 = 100.0;

/// `(ppid, ticks)` of one process: its own user and system time and its reaped
/// children's.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name's ")": state is field 3, ppid 4,
    // utime 14, stime 15, cutime 16, cstime 17.
    let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let ticks = f
        .get(11..15)?
        .iter()
        .map(|v| v.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some((ppid, ticks))
}

/// CPU seconds used so far by `root` and every live descendant.
pub fn tree_seconds(root: u32) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let procs: HashMap<u32, (u32, u64)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect();
    let in_tree = |mut pid: u32| {
        // Bounded walk up the parents: /proc's depth is small, a cycle impossible.
        for _ in 0..64 {
            if pid == root {
                return true;
            }
            match procs.get(&pid) {
                Some((ppid, _)) if *ppid != 0 => pid = *ppid,
                _ => return false,
            }
        }
        false
    };
    let ticks: u64 = procs
        .iter()
        .filter(|(pid, _)| in_tree(**pid))
        .map(|(_, (_, t))| t)
        .sum();
    ticks as f64 / TICKS
}

/// The pid of the oldest process whose command line contains every one of
/// `needles` (the server's main process rather than one of its children).
pub fn find_process(needles: &[&str]) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                needles.iter().all(|n| c.contains(n))
            })
        })
        .min()
}
