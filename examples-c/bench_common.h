/* Shared by the benchmarks: the event of the core issue, a clock, and errors. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "virevent.h"

static const char *const BENCH_EVENT =
    "<event type=\"domain-state-transition\" timestamp=\"1221756307.123456\"><domain-id>3</domain-id>"
    "<domain-name>vm1</domain-name><old-state>running</old-state><new-state>paused</new-state>"
    "<reason>suspended-paused</reason></event>";

static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static inline void bench_die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, virGetLastErrorMessage());
    exit(1);
}

#endif
