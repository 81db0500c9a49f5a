/* Shared by the two fleet receivers (fleet_virevent.c, fleet_libvirt.c) of
 * bench_fleet.sh: the process's own figures (resident memory, descriptors,
 * threads, CPU time), a latency histogram, the stop signal and the report.
 *
 * A receiver is run as `fleet_X PER_URI URI...`: it opens PER_URI connections
 * to each URI, one lifecycle handler each, prints "ready", receives until
 * SIGUSR1 (or, with FLEET_EXPECT=N in the environment, until N events have
 * come, or 60 s), then prints one line of key=value figures:
 *   conns= base_kib= idle_kib= after_kib= base_fds= idle_fds= after_fds= threads=
 *   received= cpu_us= user_us= sys_us= poll_us= lat_n= p50_us= p99_us= max_us=
 * base_*: before the first open; idle_*: all connections open and idle;
 * after_*: idle again after the load; cpu_us: user + system CPU time from
 * "ready" to SIGUSR1 (user_us, sys_us: its parts); poll_us: the part of it
 * spent in the receiver's poll(2), where it measures it (-1: not); lat_*: for the
 * events whose domain name carries fleet_daemon's send time ("L" and the
 * CLOCK_MONOTONIC nanoseconds). With FLEET_SLOW=US in the environment, each
 * timed event slower than US microseconds is also printed to stderr
 * ("slow LAT_us at T_ms": T since the first timed event), to see when the
 * tail happens. */
#ifndef FLEET_H
#define FLEET_H

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* A field of /proc/self/status ("VmRSS:", "Threads:"), as a number. */
static long fleet_status(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n))
            v = atol(line + n);
    if (f)
        fclose(f);
    return v;
}

/* Open descriptors: the entries of /proc/self/fd, less the one listing it. */
static long fleet_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n - 3; /* ".", ".." and the DIR's own descriptor */
}

/* This process's CPU time so far, in microseconds: user, system. */
static void fleet_cpu_us(double *user, double *sys)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    *user = u.ru_utime.tv_sec * 1e6 + u.ru_utime.tv_usec;
    *sys = u.ru_stime.tv_sec * 1e6 + u.ru_stime.tv_usec;
}

/* This thread's CPU time, in microseconds: cheaper than getrusage, for
 * timing the poll(2) calls. */
static inline double fleet_thread_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* CPU time in poll(2) during the load, added up by a receiver that measures it. */
static double fleet_poll_us = -1;

/* Latencies in 1 us buckets up to 100 ms; the last bucket holds the rest. */
#define FLEET_BUCKETS 100001
static long fleet_hist[FLEET_BUCKETS];
static long fleet_received, fleet_timed;
static volatile sig_atomic_t fleet_stop;
static long fleet_expect = -1; /* FLEET_EXPECT, or -1 */
static double fleet_max_us;
static double fleet_slow_us = -1; /* FLEET_SLOW, or -1 */
static long long fleet_first_ns;  /* when the first timed event came */

/* Counts one event for the domain named `name`, at the handler's entry. */
static void fleet_event(const char *name)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (++fleet_received == fleet_expect)
        fleet_stop = 1;
    if (name[0] != 'L')
        return; /* a real daemon's domain: no send time */
    long long now = t.tv_sec * 1000000000LL + t.tv_nsec;
    double us = (now - atoll(name + 1)) / 1e3;
    if (!fleet_first_ns)
        fleet_first_ns = now;
    if (fleet_slow_us >= 0 && us > fleet_slow_us)
        fprintf(stderr, "slow %.0f_us at %.1f_ms\n", us, (now - fleet_first_ns) / 1e6);
    if (us > fleet_max_us)
        fleet_max_us = us;
    long b = us < 0 ? 0 : (long)us;
    fleet_hist[b < FLEET_BUCKETS ? b : FLEET_BUCKETS - 1]++;
    fleet_timed++;
}


/* The latency (us) that a fraction q of the timed events did not exceed. */
static long fleet_quantile(double q)
{
    long want = (long)(q * fleet_timed), seen = 0;
    for (long b = 0; b < FLEET_BUCKETS; b++) {
        seen += fleet_hist[b];
        if (seen > want)
            return b + 1; /* the bucket's upper bound */
    }
    return -1;
}


static void fleet_on_signal(int sig)
{
    (void)sig;
    fleet_stop = 1;
}

/* The figures before any connection: taken by fleet_begin. */
static long fleet_base_kib, fleet_base_fds, fleet_idle_kib, fleet_idle_fds, fleet_threads;
static double fleet_user_ready, fleet_sys_ready;

static void fleet_begin(void)
{
    /* SIGUSR1 interrupts poll (no SA_RESTART), and the loop looks at fleet_stop. */
    struct sigaction sa = {.sa_handler = fleet_on_signal};
    sigaction(SIGUSR1, &sa, NULL);
    if (getenv("FLEET_SLOW"))
        fleet_slow_us = atof(getenv("FLEET_SLOW"));
    if (getenv("FLEET_EXPECT")) {
        fleet_expect = atol(getenv("FLEET_EXPECT"));
        sigaction(SIGALRM, &sa, NULL);
        alarm(60); /* events lost: stop anyway */
    }
    fleet_base_kib = fleet_status("VmRSS:");
    fleet_base_fds = fleet_fds();
}

/* Every connection open and registered, nothing received yet. */
static void fleet_ready(void)
{
    fleet_idle_kib = fleet_status("VmRSS:");
    fleet_idle_fds = fleet_fds();
    fleet_threads = fleet_status("Threads:");
    printf("ready\n");
    fflush(stdout);
    fleet_cpu_us(&fleet_user_ready, &fleet_sys_ready);
}

static void fleet_report(long conns)
{
    double user, sys;
    fleet_cpu_us(&user, &sys);
    user -= fleet_user_ready;
    sys -= fleet_sys_ready;
    printf("conns=%ld base_kib=%ld idle_kib=%ld after_kib=%ld base_fds=%ld idle_fds=%ld after_fds=%ld "
           "threads=%ld received=%ld cpu_us=%.0f user_us=%.0f sys_us=%.0f poll_us=%.0f lat_n=%ld "
           "p50_us=%ld p99_us=%ld max_us=%.0f\n",
           conns, fleet_base_kib, fleet_idle_kib, fleet_status("VmRSS:"), fleet_base_fds, fleet_idle_fds,
           fleet_fds(), fleet_threads, fleet_received, user + sys, user, sys, fleet_poll_us, fleet_timed,
           fleet_quantile(0.5), fleet_quantile(0.99), fleet_max_us);
    fflush(stdout);
}

#endif
