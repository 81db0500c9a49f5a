/* A thread-free event loop: poll(2) waits on virevent's event descriptor, an
 * event stream and a timer at once, the way a GLib (g_unix_fd_add) or libuv
 * (uv_poll_start) loop would. The timer drives the test domain; the event
 * descriptor says when virDeliverEvents has handler calls to make; the stream
 * carries the same events as lines, with no callback at all. */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "virevent.h"

static int handled;

static void on_event(virConnectPtr conn, const char *eventXML, void *arg)
{
    (void)conn;
    (void)arg;
    printf("handler: %.100s...\n", eventXML);
    handled++;
}

int main(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    const char *filter[] = {"domain-*", NULL};
    if (!conn || virConnectAddEventHandler(conn, filter, on_event, NULL) < 0)
        return 1;
    int stream = virConnectOpenEventStream(conn, filter, VIR_EVENT_STREAM_NONBLOCK);
    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec every_10ms = {{0, 10000000}, {0, 10000000}};
    timerfd_settime(timer, 0, &every_10ms, NULL);
    virDomainPtr dom = virDomainLookupByName(conn, "test");

    struct pollfd fds[] = {{virConnectGetEventFD(conn), POLLIN, 0}, {stream, POLLIN, 0}, {timer, POLLIN, 0}};
    int ticks = 0, lines = 0;
    while (handled < 4 || lines < 4) {
        if (poll(fds, 3, 1000) <= 0)
            break; /* nothing for a second: something is wrong */
        if (fds[0].revents & POLLIN)
            virDeliverEvents(conn);
        if (fds[1].revents & POLLIN) {
            char buf[4096];
            ssize_t got = read(stream, buf, sizeof buf);
            for (char *p = buf; got > 0 && (p = memchr(p, '\n', buf + got - p)); p++)
                lines++;
        }
        if (fds[2].revents & POLLIN) {
            unsigned long long expirations;
            if (read(timer, &expirations, sizeof expirations) > 0 && ticks < 4)
                (ticks++ % 2 ? virDomainResume : virDomainSuspend)(dom);
        }
    }
    printf("%d handler calls, %d stream lines\n", handled, lines);
    virDomainFree(dom);
    close(timer);
    close(stream);
    virConnectClose(conn);
    return handled == 4 && lines == 4 ? 0 : 1;
}
