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

/// The process listening on TCP `port` (IPv4 or IPv6): the socket's inode from
/// /proc/net/tcp*, then the process holding it open.
pub fn listening_on(port: u16) -> Option<u32> {
    let hex_port = format!(":{port:04X}");
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            std::fs::read_to_string(table)
                .ok()?
                .lines()
                .skip(1)
                .find_map(|line| {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    // local_address, state (0A = LISTEN), inode.
                    (f.get(1)?.ends_with(&hex_port) && *f.get(3)? == "0A")
                        .then(|| f.get(9).map(|i| (*i).to_owned()))
                        .flatten()
                })
        })?;
    let socket = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.filter_map(Result::ok).any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == socket.as_str())
                })
            })
        })
}
