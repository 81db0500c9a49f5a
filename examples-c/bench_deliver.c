/* Benchmark: emit the 180-byte event with virConnectEmitEvent and deliver it
 * with virDeliverEvents in batches of 1,000, (a) to 1 handler filtering
 * {"domain-state-transition", NULL}, (b) to 1,000 handlers each with its own type,
 * the events spread over the 1,000 types. Parsing and validation included.
 * Usage: bench_deliver [events]   (default 2,000,000 per case) */
#include <string.h>

#include "bench_common.h"

#define BATCH 1000
#define TYPES 1000


static long handled;

static void count_event(virConnectPtr conn, const char *eventXML, void *arg)
{
    (void)conn;
    (void)arg;
    handled += eventXML[0] == '<';
}

/* Emits `events` events, cycling through `xml[0..kinds)`, delivering every BATCH. */
static void run(const char *name, virConnectPtr conn, char **xml, int kinds, long events)
{
    handled = 0;
    double start = bench_now();
    for (long done = 0; done < events; done += BATCH) {
        for (int i = 0; i < BATCH; i++)
            if (virConnectEmitEvent(conn, xml[(done + i) % kinds]) < 0)
                bench_die("emit");
        if (virDeliverEvents(conn) != BATCH)
            bench_die("deliver");
    }
    double seconds = bench_now() - start;
    if (handled != events)
        bench_die("lost events");
    printf("%-34s %10.0f events/s %8.1f ns/event  (%ld events, %zu-byte event)\n", name,
           events / seconds, seconds * 1e9 / events, events, strlen(xml[0]));
}

int main(int argc, char **argv)
{
    long events = argc > 1 ? atol(argv[1]) : 2000000;
    events -= events % BATCH;

    virConnectPtr one = virConnectOpen(NULL);
    const char *filter[] = {"domain-state-transition", NULL};
    if (!one || virConnectAddEventHandler(one, filter, count_event, NULL) < 0)
        bench_die("setup");
    char *single[] = {(char *)BENCH_EVENT};
    run("1 handler:", one, single, 1, events);
    virConnectClose(one);

    /* 1,000 types as long as the original: "domain-state-transitNNN". */
    virConnectPtr many = virConnectOpen(NULL);
    char *xml[TYPES];
    for (int t = 0; t < TYPES; t++) {
        char type[32];
        snprintf(type, sizeof type, "domain-state-transit%03d", t);
        const char *typed[] = {type, NULL};
        if (virConnectAddEventHandler(many, typed, count_event, NULL) < 0)
            bench_die("add");
        xml[t] = strdup(BENCH_EVENT);
        memcpy(strstr(xml[t], "domain-state-transition"), type, strlen(type));
    }
    run("1,000 handlers, 1,000 types:", many, xml, TYPES, events);
    for (int t = 0; t < TYPES; t++)
        free(xml[t]);
    virConnectClose(many);
    return 0;
}
