/* Benchmark: what queued events cost. Emits 65,536 copies of the core issue's
 * event with a handler registered and no delivery, so that all of them wait in
 * the handler queue, and reports the growth of the resident set.
 * Usage: bench_memory [events]   (default 65,536, the default queue limit) */
#include <string.h>

#include "bench_common.h"

static long resident_kib(void)
{
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (status && fgets(line, sizeof line, status))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    if (status)
        fclose(status);
    return kib;
}

static void ignore(virConnectPtr conn, const char *eventXML, void *arg)
{
    (void)conn;
    (void)eventXML;
    (void)arg;
}

int main(int argc, char **argv)
{
    long events = argc > 1 ? atol(argv[1]) : 65536;
    virConnectPtr conn = virConnectOpen(NULL);
    if (virConnectAddEventHandler(conn, NULL, ignore, NULL) < 0)
        bench_die("setup");
    long before = resident_kib();
    for (long i = 0; i < events; i++)
        if (virConnectEmitEvent(conn, BENCH_EVENT) < 0)
            bench_die("emit");
    long after = resident_kib();
    printf("%ld queued %zu-byte events: resident set grew %.1f MiB (%.0f bytes/event)\n", events,
           strlen(BENCH_EVENT), (after - before) / 1024.0, (after - before) * 1024.0 / events);
    if (virDeliverEvents(conn) != events)
        bench_die("deliver");
    virConnectClose(conn);
    return 0;
}
