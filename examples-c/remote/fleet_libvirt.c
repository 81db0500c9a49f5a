/* The fleet receiver on libvirt's own client (fleet.h says what it reports):
 * its default event loop (virEventRegisterDefaultImpl), PER_URI
 * virConnectOpenReadOnly to each URI (read-only, as virevent opens), one
 * virConnectDomainEventRegisterAny(LIFECYCLE) each, and virEventRunDefaultImpl
 * in a loop.
 *   fleet_libvirt PER_URI URI... */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "fleet.h"

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    (void)conn;
    (void)event;
    (void)detail;
    (void)opaque;
    fleet_event(virDomainGetName(dom));
    return 0;
}

/* Wakes the loop at least once a second, so that it sees fleet_stop: libvirt's
 * poll loop retries when a signal interrupts it. */
static void tick(int timer, void *opaque)
{
    (void)timer;
    (void)opaque;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    long per = atol(argv[1]), n = per * (argc - 2);
    virConnectPtr *conns = calloc(n, sizeof *conns);
    fleet_begin();
    if (virEventRegisterDefaultImpl() < 0 || virEventAddTimeout(1000, tick, NULL, NULL) < 0)
        return 1;
    for (long i = 0; i < n; i++) {
        conns[i] = virConnectOpenReadOnly(argv[2 + i / per]);
        if (!conns[i] || virConnectDomainEventRegisterAny(conns[i], NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                          VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), NULL,
                                                          NULL) < 0) {
            fprintf(stderr, "libvirt: connection %ld: %s\n", i, virGetLastErrorMessage());
            return 1;
        }
    }
    fleet_ready();
    while (!fleet_stop)
        if (virEventRunDefaultImpl() < 0)
            return 1;
    fleet_report(n);
    for (long i = 0; i < n; i++)
        virConnectClose(conns[i]);
    return 0;
}
