/* Shared by the two receivers of the remote benchmark: the measured phase,
 * bracketed for callgrind (its client requests do nothing outside valgrind)
 * and for CPU time. */
#ifndef RECEIVER_H
#define RECEIVER_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <valgrind/callgrind.h>

static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static double measure_start;

/* Connected and registered: from here on, every instruction counts. */
static void measure_begin(void)
{
    printf("ready\n");
    fflush(stdout);
    CALLGRIND_ZERO_STATS;
    measure_start = cpu_seconds();
}

/* All `events` received: dumps callgrind's counts and prints the CPU time. */
static void measure_end(const char *who, long events)
{
    CALLGRIND_DUMP_STATS_AT("events");
    double cpu = cpu_seconds() - measure_start;
    printf("%s: %ld events, CPU %.1f us/event\n", who, events, cpu * 1e6 / events);
}

#endif
