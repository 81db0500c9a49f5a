/* Benchmark: emit the 180-byte event with virConnectEmitEvent and deliver it
 * with virDeliverEvents in batches of 1,000, (a) to 1 handler filtering
 * {"domain-state-transition", NULL}, (b) to 1,000 handlers each with its own type,
 * the events spread over the 1,000 types. Parsing and validation included.
 * Usage: bench_deliver [events]   (default 2,000,000 per case) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "virevent.h"

#define BATCH 1000
#define TYPES 1000

static const char *EVENT =
    "<event type=\"domain-state-transition\" timestamp=\"1221756307.123456\"><domain-id>3</domain-id>"
    "<domain-name>vm1</domain-name><old-state>running</old-state><new-state>paused</new-state>"
    "<reason>suspended-paused</reason></event>";

static long handled;

static void count_event(virConnectPtr conn, const char *eventXML, void *arg)
{
    (void)conn;
    (void)arg;
    handled += eventXML[0] == '<';
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, virGetLastErrorMessage());
    exit(1);
}

/* Emits `events` events, cycling through `xml[0..kinds)`, delivering every BATCH. */
static void run(const char *name, virConnectPtr conn, char **xml, int kinds, long events)
{
    handled = 0;
    double start = now();
    for (long done = 0; done < events; done += BATCH) {
        for (int i = 0; i < BATCH; i++)
            if (virConnectEmitEvent(conn, xml[(done + i) % kinds]) < 0)
                die("emit");
        if (virDeliverEvents(conn) != BATCH)
            die("deliver");
    }
    double seconds = now() - start;
    if (handled != events)
        die("lost events");
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
        die("setup");
    char *single[] = {(char *)EVENT};
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
            die("add");
        xml[t] = strdup(EVENT);
        memcpy(strstr(xml[t], "domain-state-transition"), type, strlen(type));
    }
    run("1,000 handlers, 1,000 types:", many, xml, TYPES, events);
    for (int t = 0; t < TYPES; t++)
        free(xml[t]);
    virConnectClose(many);
    return 0;
}
