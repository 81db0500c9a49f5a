/* The load on real libvirtds for bench_fleet.sh: for SECONDS, RATE operations
 * per second in all, spread evenly in time, each one suspending or resuming
 * (by turns) the domain "test" of the next daemon in turn, a whole number
 * of rounds per daemon (so each ends as it began, running). Each operation
 * makes one lifecycle event on every connection registered with that
 * daemon. Prints "ops N" (operations done) at the end.
 *   fleet_load RATE SECONDS URI... */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    double rate = atof(argv[1]), seconds = atof(argv[2]);
    int n = argc - 3;
    virConnectPtr conns[n];
    virDomainPtr doms[n];
    int paused[n];
    for (int i = 0; i < n; i++) {
        conns[i] = virConnectOpen(argv[3 + i]);
        doms[i] = conns[i] ? virDomainLookupByName(conns[i], "test") : NULL;
        if (!doms[i]) {
            fprintf(stderr, "load: %s: %s\n", argv[3 + i], virGetLastErrorMessage());
            return 1;
        }
        paused[i] = 0;
    }
    /* A whole number of suspend-resume rounds per daemon: each ends running. */
    long total = (long)(rate * seconds) / (2 * n) * (2 * n), step = (long)(1e9 / rate);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (long k = 0; k < total; k++) {
        next.tv_nsec += step;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        int i = k % n;
        if ((paused[i] ? virDomainResume(doms[i]) : virDomainSuspend(doms[i])) < 0) {
            fprintf(stderr, "load: %s: %s\n", argv[3 + i], virGetLastErrorMessage());
            return 1;
        }
        paused[i] = !paused[i];
    }
    printf("ops %ld\n", total);
    for (int i = 0; i < n; i++) {
        virDomainFree(doms[i]);
        virConnectClose(conns[i]);
    }
    return 0;
}
