/* The driving load: suspends and resumes domain "test" N times through libvirt,
 * so that each receiver gets 2N lifecycle events.
 *   load URI N */
#include <libvirt/libvirt.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    long rounds = atol(argv[2]);
    virConnectPtr conn = virConnectOpen(argv[1]);
    virDomainPtr dom = conn ? virDomainLookupByName(conn, "test") : NULL;
    if (!dom)
        return 1;
    for (long i = 0; i < rounds; i++) {
        if (virDomainSuspend(dom) < 0 || virDomainResume(dom) < 0)
            return 1;
    }
    virDomainFree(dom);
    virConnectClose(conn);
    return 0;
}
