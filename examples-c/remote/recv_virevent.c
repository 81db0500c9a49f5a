/* Receives N lifecycle events from a libvirt daemon through virevent, thread-free:
 * poll on the connection's descriptor, then virDeliverEvents.
 *   recv_virevent URI N */
#include <poll.h>

#include "virevent.h"
#include "receiver.h"

static long received;

static void on_event(virConnectPtr conn, const char *xml, void *arg)
{
    (void)conn;
    (void)xml;
    (void)arg;
    received++;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    long want = atol(argv[2]);
    virConnectPtr conn = virConnectOpen(argv[1]);
    if (!conn) {
        fprintf(stderr, "virevent: %s\n", virGetLastErrorMessage());
        return 1;
    }
    const char *const filter[] = {"domain-state-transition", NULL};
    if (virConnectAddEventHandler(conn, filter, on_event, NULL) < 0)
        return 1;
    struct pollfd p = {virConnectGetEventFD(conn), POLLIN, 0};
    measure_begin();
    while (received < want) {
        if (poll(&p, 1, -1) < 0 || virDeliverEvents(conn) < 0) {
            fprintf(stderr, "virevent: %s\n", virGetLastErrorMessage());
            return 1;
        }
    }
    measure_end("virevent", received);
    virConnectClose(conn);
    return 0;
}
