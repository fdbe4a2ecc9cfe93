//! Shared by the benches that time the real binary: wait for one child and read its own
//! resource usage.

use std::time::Duration;

/// CPU time, peak RSS and exit code of one finished child.
pub struct Usage {
    pub cpu: Duration,
    pub max_rss_kib: i64,
    pub exit_code: i32,
}

/// Wait for the child `pid` and read its own resource usage (`wait4`), so that each run's CPU
/// time and peak RSS are its own, not the sum or maximum over every child.
#[allow(unsafe_code)]
pub fn wait(pid: u32) -> Usage {
    let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
    let mut status: libc::c_int = 0;
    // SAFETY: wait4 writes the exit status and the usage into the values we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut ru) };
    assert_eq!(rc, pid, "wait4 failed");
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Usage {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss,
        exit_code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
    }
}
