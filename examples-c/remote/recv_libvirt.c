/* Receives N lifecycle events from a libvirt daemon through libvirt's own client:
 * its default event loop and virConnectDomainEventRegisterAny.
 *   recv_libvirt URI N */
#include <libvirt/libvirt.h>

#include "receiver.h"

static long received;

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    (void)conn;
    (void)dom;
    (void)event;
    (void)detail;
    (void)opaque;
    received++;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    long want = atol(argv[2]);
    if (virEventRegisterDefaultImpl() < 0)
        return 1;
    virConnectPtr conn = virConnectOpenReadOnly(argv[1]);
    if (!conn)
        return 1;
    int id = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                              VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), NULL, NULL);
    if (id < 0)
        return 1;
    measure_begin();
    while (received < want) {
        if (virEventRunDefaultImpl() < 0)
            return 1;
    }
    measure_end("libvirt", received);
    virConnectDomainEventDeregisterAny(conn, id);
    virConnectClose(conn);
    return 0;
}
