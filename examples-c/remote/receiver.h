/* Shared by the two receivers of the remote benchmark: the measured phase,
 * bracketed for callgrind (its client requests do nothing outside valgrind)
 * and for CPU time. */
#ifndef RECEIVER_H
#define RECEIVER_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <valgrind/callgrind.h>

/* This process's CPU time so far, in seconds: user and system. */
static void cpu_seconds(double *user, double *system)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    *user = u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6;
    *system = u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static double measure_user, measure_system;

/* Connected and registered: from here on, every instruction counts. */
static void measure_begin(void)
{
    printf("ready\n");
    fflush(stdout);
    CALLGRIND_ZERO_STATS;
    cpu_seconds(&measure_user, &measure_system);
}

/* All `events` received: dumps callgrind's counts and prints the CPU time,
 * with its user and system (kernel: wake-ups, the socket) parts. */
static void measure_end(const char *who, long events)
{
    CALLGRIND_DUMP_STATS_AT("events");
    double user, system;
    cpu_seconds(&user, &system);
    user -= measure_user;
    system -= measure_system;
    printf("%s: %ld events, CPU %.1f us/event (user %.1f, system %.1f)\n", who, events,
           (user + system) * 1e6 / events, user * 1e6 / events, system * 1e6 / events);
}

#endif
