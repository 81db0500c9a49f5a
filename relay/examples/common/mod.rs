//! The clocks both benchmark programs read: their own CPU time, and the
//! CLOCK_MONOTONIC time that fleet_daemon and raw_publish write into payloads
//! and bench_consumer subtracts from.

/// This process's CPU time so far (user + system), in microseconds.
pub fn cpu_us() -> f64 {
    // SAFETY: an all-zero rusage is a valid one, which getrusage fills.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(u.ru_utime) + us(u.ru_stime)
}

/// CLOCK_MONOTONIC, in nanoseconds.
pub fn monotonic_ns() -> i64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills our timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec * 1_000_000_000 + t.tv_nsec
}
