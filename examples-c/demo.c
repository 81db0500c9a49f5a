/* virevent demo: watch the test domain's state transitions on the embedded
 * default connection, thread-free, with synchronous delivery. */
#include <stdio.h>
#include <stdlib.h>

#include "virevent.h"

static void on_event(virConnectPtr conn, const char *eventXML, void *arg)
{
    int *count = arg;
    (void)conn;
    printf("event %d: %s\n", ++*count, eventXML);
}

static int fail(const char *what)
{
    fprintf(stderr, "demo: %s: %s (error %d)\n", what, virGetLastErrorMessage(),
            virGetLastErrorCode());
    return 1;
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : NULL; /* NULL: test:///default */
    const char *filter[] = {"domain-state-transition", NULL};
    int count = 0;

    virConnectPtr conn = virConnectOpen(uri);
    if (!conn)
        return fail("virConnectOpen");
    if (virConnectAddEventHandler(conn, filter, on_event, &count) < 0)
        return fail("virConnectAddEventHandler");

    virDomainPtr dom = virDomainLookupByName(conn, "test");
    if (!dom)
        return fail("virDomainLookupByName");
    if (virDomainSuspend(dom) < 0 || virDomainResume(dom) < 0 ||
        virDomainDestroy(dom) < 0 || virDomainCreate(dom) < 0)
        return fail("driving domain test");
    /* An event of another type: the filter keeps it from the handler. */
    if (virConnectEmitEvent(conn, "<event type=\"demo-note\"><text>hello</text></event>") < 0)
        return fail("virConnectEmitEvent");

    int calls = virDeliverEvents(conn);
    if (calls < 0)
        return fail("virDeliverEvents");
    printf("%d handler calls\n", calls);

    virDomainFree(dom);
    virConnectClose(conn);
    return count == 4 ? 0 : 1;
}
