//! Memory and CPU of a process, read from Linux's `/proc`.
//!
//! The gateway runs as a child process so that these figures are the gateway's own,
//! not the harness's.

use std::io;

/// Linux reports CPU time in `/proc/PID/stat` in USER_HZ ticks, which the kernel fixes
/// at 100 per second for user space on every architecture we run on.
const TICKS_PER_SEC: f64 = 100.0;

/// One reading of a process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcSample {
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// User + system CPU time so far, seconds.
    pub cpu_secs: f64,
}

/// Reads the process `pid` now.
pub fn sample(pid: u32) -> io::Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rss_bytes = parse_rss(&status).ok_or_else(|| bad("VmRSS missing"))?;
    let cpu_secs = parse_cpu(&stat).ok_or_else(|| bad("stat fields missing"))?;
    Ok(ProcSample {
        rss_bytes,
        cpu_secs,
    })
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// `VmRSS:   12345 kB` → bytes.
fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Fields 14 and 15 (utime, stime) of `/proc/PID/stat`, counted after the command
/// name, which is in parentheses and may itself contain spaces.
fn parse_cpu(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

/// CPU use between two samples, in percent of one core.
pub fn cpu_percent(before: &ProcSample, after: &ProcSample, wall_secs: f64) -> f64 {
    if wall_secs <= 0.0 {
        return 0.0;
    }
    (after.cpu_secs - before.cpu_secs).max(0.0) / wall_secs * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rss_and_cpu_from_proc_text() {
        let status = "Name:\tgateway\nVmPeak:\t 9999 kB\nVmRSS:\t   2048 kB\n";
        assert_eq!(parse_rss(status), Some(2048 * 1024));
        let stat = "4242 (load test) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0";
        assert_eq!(parse_cpu(stat), Some(3.0));
        assert_eq!(parse_rss("Name: x\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
        let pct = cpu_percent(
            &ProcSample {
                rss_bytes: 0,
                cpu_secs: 1.0,
            },
            &ProcSample {
                rss_bytes: 0,
                cpu_secs: 1.5,
            },
            1.0,
        );
        assert!((pct - 50.0).abs() < 1e-9);
    }
}
