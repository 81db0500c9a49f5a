/* Connections and the last error: which URIs open, what the others say, and
 * how every call resets the error (docs/api.md sections 2 and 8). */
#include "check.h"

static void opens(const char *uri)
{
    virConnectPtr conn = virConnectOpen(uri);
    CHECK(conn != NULL);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(virConnectClose(conn), 0);
}

static void refuses(const char *uri)
{
    virConnectPtr conn = virConnectOpen(uri);
    CHECK(conn == NULL);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, uri);
}

int main(void)
{
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_STR(virGetLastErrorMessage(), "no error");

    opens(NULL);
    opens("");
    opens("test:///default");
    opens("test:///empty");

    refuses("xen:///");
    refuses("test:///nosuch");
    refuses("not a uri at all");

    /* A failure is remembered until the next call, which resets it. */
    CHECK(virConnectOpen("bogus://x") == NULL);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, "bogus://x");
    CHECK_ERROR(VIR_ERR_NO_CONNECT, "bogus://x"); /* reading does not reset */
    virConnectPtr conn = virConnectOpen(NULL);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_STR(virGetLastErrorMessage(), "no error");

    /* virResetLastError forgets. */
    CHECK(virConnectOpen("bogus://y") == NULL);
    virResetLastError();
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_STR(virGetLastErrorMessage(), "no error");

    /* NULL connections, for every function that takes one. */
    CHECK_INT(virConnectClose(NULL), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "NULL");
    CHECK_INT(virDeliverEvents(NULL), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "NULL");
    CHECK_INT(virConnectEmitEvent(NULL, "<event type=\"x\"/>"), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "NULL");
    CHECK_INT(virConnectAddEventHandler(NULL, NULL, seen_handler, NULL), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "NULL");
    CHECK_INT(virConnectAddEventHandlerFull(NULL, NULL, seen_handler, NULL, NULL, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "NULL");
    CHECK_INT(virConnectRemoveEventHandler(NULL, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "NULL");
    CHECK_INT(virConnectSetEventQueueLimit(NULL, 10), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "NULL");
    CHECK(virDomainLookupByName(NULL, "test") == NULL);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "NULL");
    char **refused = NULL;
    CHECK_INT(virConnectListRefusedEventTypes(NULL, &refused, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "NULL");
    CHECK(refused == NULL);

    /* The embedded driver refuses no event type: an empty list. */
    CHECK_INT(virConnectListRefusedEventTypes(conn, &refused, 0), 0);
    CHECK(refused != NULL && refused[0] == NULL);
    free(refused);

    /* Connections are independent: seqs, handlers and domains are their own. */
    virConnectPtr other = virConnectOpen("test:///default");
    virConnPtr rfc_spelling = other;
    Seen a = {0}, b = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, seen_handler, &a) >= 0);
    CHECK(virConnectAddEventHandler(rfc_spelling, NULL, seen_handler, &b) >= 0);
    CHECK_INT(virConnectEmitEvent(conn, "<event type=\"x\"/>"), 1);
    CHECK_INT(virConnectEmitEvent(conn, "<event type=\"x\"/>"), 2);
    CHECK_INT(virConnectEmitEvent(other, "<event type=\"y\"/>"), 1);
    virDomainPtr dom = virDomainLookupByName(other, "test");
    CHECK_INT(virDomainSuspend(dom), 0);
    CHECK_INT(virDeliverEvents(conn), 2);
    CHECK_INT(virDeliverEvents(other), 2);
    CHECK_INT(a.count, 2);
    CHECK_INT(b.count, 2);
    CHECK_CONTAINS(b.xml[1], "<new-state>paused</new-state>");
    /* The first connection's domain was not touched by the second's suspend. */
    virDomainPtr mine = virDomainLookupByName(conn, "test");
    CHECK_INT(virDomainSuspend(mine), 0);

    /* Closing discards what is queued, and domains outlive their connection. */
    CHECK_INT(virConnectClose(other), 0);
    CHECK_INT(virDomainResume(dom), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    CHECK_INT(virDomainFree(dom), 0);
    CHECK_INT(virDomainFree(mine), 0);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&a);
    seen_clear(&b);
    return check_done();
}
