/* Many hypervisors in one thread: open every URI given, register one handler
 * on each connection, and wait on all their event descriptors with one
 * poll(2), calling virDeliverEvents only on the readable ones. Each event is
 * printed after the URI of its connection. A connection whose delivery fails
 * (its link is gone; its connection-closed event came first) is reported on
 * stderr and dropped from the poll set, and the others go on.
 *
 *   fleet [-n N] [-r] [URI]...
 *
 * With -r, each connection to a daemon keeps, loses and regains its link on
 * its own (virConnectSetReconnect: connection-lost, the resync's events,
 * connection-restored), all in the same poll. It exits 0 after N events
 * (-n), or 1 once every connection is gone. Without
 * URIs it opens the embedded test:///default twice; nothing happens there
 * unless the program acts, so it then suspends and resumes the domain 'test'
 * of each, and stops after those 4 events unless -n says otherwise. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virevent.h"

#define MAX_CONNECTIONS 64

/* What a handler needs to print an event: its connection's URI. */
struct watched {
    const char *uri;
    virConnectPtr conn;
};

static long printed, limit = -1; /* -1: no limit */

static void on_event(virConnectPtr conn, const char *eventXML, void *arg)
{
    const struct watched *w = arg;
    (void)conn;
    /* One delivery may make several calls: none past the limit. */
    if (limit >= 0 && printed >= limit)
        return;
    printf("%s: %s\n", w->uri, eventXML);
    fflush(stdout);
    printed++;
}

static int fail(const char *what, const char *uri)
{
    fprintf(stderr, "fleet: %s %s: %s\n", what, uri, virGetLastErrorMessage());
    return 1;
}

/* The embedded driver's events come only from the program's own acts. */
static int drive(const struct watched *w)
{
    virDomainPtr dom = virDomainLookupByName(w->conn, "test");
    int ok = dom && virDomainSuspend(dom) == 0 && virDomainResume(dom) == 0;
    if (dom)
        virDomainFree(dom);
    return ok ? 0 : fail("cannot drive the domain 'test' of", w->uri);
}

int main(int argc, char **argv)
{
    static const char *embedded[] = {"test:///default", "test:///default"};
    const char *const *uris = (const char *const *)argv + 1;
    int n = argc - 1, reconnect = 0;
    for (;;) {
        if (n >= 1 && strcmp(uris[0], "-r") == 0) {
            reconnect = 1;
            uris++;
            n--;
            continue;
        }
        if (n < 2 || strcmp(uris[0], "-n") != 0)
            break;
        char *end;
        limit = strtol(uris[1], &end, 10);
        if (*uris[1] == '\0' || *end != '\0' || limit < 0) {
            fprintf(stderr, "usage: fleet [-n N] [-r] [URI]...\n");
            return 2;
        }
        uris += 2;
        n -= 2;
    }
    int drives = n == 0;
    if (drives) {
        uris = embedded;
        n = 2;
        if (limit < 0)
            limit = 4;
    }
    if (n > MAX_CONNECTIONS) {
        fprintf(stderr, "fleet: at most %d URIs\n", MAX_CONNECTIONS);
        return 2;
    }

    struct watched watched[MAX_CONNECTIONS];
    struct pollfd fds[MAX_CONNECTIONS];
    for (int i = 0; i < n; i++) {
        watched[i].uri = uris[i];
        watched[i].conn = virConnectOpen(uris[i]);
        if (!watched[i].conn)
            return fail("cannot open", uris[i]);
        /* Waits from 250 ms doubling to 30 s; the embedded driver has no
         * link to lose (VIR_ERR_NO_SUPPORT), which is fine here. */
        if (reconnect && virConnectSetReconnect(watched[i].conn, 250, 30000, 0) < 0 &&
            virGetLastErrorCode() != VIR_ERR_NO_SUPPORT)
            return fail("cannot turn reconnection on for", uris[i]);
        /* A NULL filter takes every event, connection-closed included. */
        if (virConnectAddEventHandler(watched[i].conn, NULL, on_event, &watched[i]) < 0)
            return fail("cannot watch", uris[i]);
        fds[i].fd = virConnectGetEventFD(watched[i].conn);
        fds[i].events = POLLIN;
        if (fds[i].fd < 0)
            return fail("cannot watch", uris[i]);
    }
    for (int i = 0; drives && i < n; i++)
        if (drive(&watched[i]) != 0)
            return 1;

    int live = n;
    while (live > 0 && (limit < 0 || printed < limit)) {
        if (poll(fds, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("fleet: poll");
            return 1;
        }
        for (int i = 0; i < n && (limit < 0 || printed < limit); i++) {
            if (fds[i].fd < 0 || !fds[i].revents)
                continue;
            if (virDeliverEvents(watched[i].conn) < 0) {
                fprintf(stderr, "fleet: connection lost: %s: %s\n", watched[i].uri, virGetLastErrorMessage());
                virConnectClose(watched[i].conn);
                /* poll(2) skips a negative descriptor: out of the set. */
                fds[i].fd = -1;
                live--;
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (fds[i].fd >= 0)
            virConnectClose(watched[i].conn);
    return limit >= 0 && printed >= limit ? 0 : 1;
}
