/* Benchmark: event-thread latency, from just before virConnectEmitEvent to the
 * handler's entry on the event thread, over a steady stream of events.
 * Usage: bench_latency [events] [rate]   (default 100,000 at 10,000 events/s) */
#include <stdatomic.h>
#include <string.h>

#include "bench_common.h"

static double *emitted_at;
static double *latency;
static atomic_long handled;

static void on_event(virConnectPtr conn, const char *eventXML, void *arg)
{
    double now = bench_now();
    (void)conn;
    (void)arg;
    long seq = atol(strstr(eventXML, " seq=\"") + 6);
    latency[seq - 1] = now - emitted_at[seq - 1];
    atomic_fetch_add(&handled, 1);
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long events = argc > 1 ? atol(argv[1]) : 100000;
    double rate = argc > 2 ? atof(argv[2]) : 10000;
    emitted_at = calloc(events, sizeof *emitted_at);
    latency = calloc(events, sizeof *latency);

    virConnectPtr conn = virConnectOpen(NULL);
    if (virConnectAddEventHandler(conn, NULL, on_event, NULL) < 0 || virConnectStartEventThread(conn) < 0)
        bench_die("setup");
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long step = (long)(1e9 / rate);
    for (long i = 0; i < events; i++) {
        next.tv_nsec += step;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        emitted_at[i] = bench_now();
        if (virConnectEmitEvent(conn, BENCH_EVENT) != i + 1)
            bench_die("emit");
    }
    while (atomic_load(&handled) < events)
        ;
    virConnectClose(conn);

    qsort(latency, events, sizeof *latency, by_value);
    printf("event-thread latency over %ld events at %.0f events/s: p50 %.1f us, p99 %.1f us, max %.1f us\n",
           events, rate, latency[events / 2] * 1e6, latency[events * 99 / 100] * 1e6, latency[events - 1] * 1e6);
    free(emitted_at);
    free(latency);
    return 0;
}
