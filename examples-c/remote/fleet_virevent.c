/* The fleet receiver on virevent (fleet.h says what it reports): PER_URI
 * connections to each URI, one handler each (domain-state-transition), one
 * thread, one poll(2) over every connection's event descriptor, and
 * virDeliverEvents on the readable ones. It also reports the CPU time spent
 * in poll(2) itself. With FLEET_EPOLL=1 in the environment it waits with one
 * epoll set (level-triggered) holding every event descriptor instead, whose
 * cost does not grow with the number of idle connections.
 *   fleet_virevent PER_URI URI... */
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>

#include "virevent.h"
#include "fleet.h"

/* The domain name out of the event's XML. */
static void on_event(virConnectPtr conn, const char *xml, void *arg)
{
    (void)conn;
    (void)arg;
    const char *name = strstr(xml, "<domain-name>");
    fleet_event(name ? name + 13 : "");
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    long per = atol(argv[1]), n = per * (argc - 2);
    virConnectPtr *conns = calloc(n, sizeof *conns);
    struct pollfd *fds = calloc(n, sizeof *fds);
    fleet_begin();
    const char *const filter[] = {"domain-state-transition", NULL};
    for (long i = 0; i < n; i++) {
        conns[i] = virConnectOpen(argv[2 + i / per]);
        if (!conns[i] || virConnectAddEventHandler(conns[i], filter, on_event, NULL) < 0) {
            fprintf(stderr, "virevent: connection %ld: %s\n", i, virGetLastErrorMessage());
            return 1;
        }
        fds[i] = (struct pollfd){virConnectGetEventFD(conns[i]), POLLIN, 0};
    }
    int ep = -1;
    if (getenv("FLEET_EPOLL")) {
        ep = epoll_create1(EPOLL_CLOEXEC);
        for (long i = 0; i < n; i++) {
            struct epoll_event e = {.events = EPOLLIN, .data.u64 = i};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i].fd, &e) < 0)
                return 1;
        }
    }
    fleet_ready();
    fleet_poll_us = 0;
    while (!fleet_stop && ep >= 0) {
        struct epoll_event got[256];
        double before = fleet_thread_us();
        int r = epoll_wait(ep, got, 256, 1000);
        fleet_poll_us += fleet_thread_us() - before;
        if (r < 0 && errno != EINTR)
            return 1;
        for (int k = 0; k < r; k++) {
            long i = got[k].data.u64;
            if (virDeliverEvents(conns[i]) < 0) {
                fprintf(stderr, "virevent: connection %ld: %s\n", i, virGetLastErrorMessage());
                epoll_ctl(ep, EPOLL_CTL_DEL, fds[i].fd, NULL);
            }
        }
    }
    while (!fleet_stop) {
        double before = fleet_thread_us();
        int r = poll(fds, n, 1000);
        fleet_poll_us += fleet_thread_us() - before;
        if (r < 0 && errno != EINTR)
            return 1;
        for (long i = 0; r > 0 && i < n; i++) {
            if (!fds[i].revents)
                continue;
            if (virDeliverEvents(conns[i]) < 0) {
                fprintf(stderr, "virevent: connection %ld: %s\n", i, virGetLastErrorMessage());
                fds[i].fd = -1; /* poll skips it from now on */
            }
        }
    }
    fleet_report(n);
    for (long i = 0; i < n; i++)
        virConnectClose(conns[i]);
    return 0;
}
