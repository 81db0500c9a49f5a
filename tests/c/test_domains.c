/* The test driver's domains (docs/api.md sections 6 and 7): lookup, every
 * transition and the exact domain-state-transition event it emits, transitions
 * from the wrong state, NULL handles, several handles on one domain, and
 * handles that outlive their connection. */
#include <ctype.h>

#include "check.h"

#define UUID "6695eb01-f6a4-8304-79aa-97f2502e193f"

static virConnectPtr conn;
static Seen seen;
static int next_seq = 1;

/* Delivers: exactly one event, the transition of domain "test" with this id,
 * states and reason, and the next seq. Checked exactly but for the timestamp,
 * whose shape is checked. */
static void transition(const char *what, int id, const char *old_state, const char *new_state,
                       const char *reason)
{
    case_begin();
    seen_clear(&seen);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(seen.count, 1);
    if (seen.count == 1) {
        const char *xml = seen.xml[0];
        const char *prefix = "<event type=\"domain-state-transition\" timestamp=\"";
        CHECK(strncmp(xml, prefix, strlen(prefix)) == 0);
        /* The timestamp: decimal seconds with 6 decimals. */
        const char *ts = xml + strlen(prefix), *p = ts;
        if (strncmp(xml, prefix, strlen(prefix)) != 0)
            ts = p = xml;
        while (isdigit((unsigned char)*p))
            p++;
        CHECK(p > ts);
        CHECK(*p == '.');
        const char *frac = *p == '.' ? p + 1 : p;
        p = frac;
        while (isdigit((unsigned char)*p))
            p++;
        CHECK_INT(p - frac, 6);
        CHECK(*p == '"');
        char want[512];
        snprintf(want, sizeof want,
                 " seq=\"%d\"><domain-id>%d</domain-id><domain-name>test</domain-name>"
                 "<domain-uuid>" UUID "</domain-uuid><old-state>%s</old-state>"
                 "<new-state>%s</new-state><reason>%s</reason></event>",
                 next_seq, id, old_state, new_state, reason);
        const char *rest = strstr(xml, " seq=");
        CHECK_STR(rest, want);
        CHECK(rest == p + 1);
        CHECK(strchr(xml, '\n') == NULL);
    }
    next_seq++;
    seen_clear(&seen);
    case_end(what);
}

/* An operation from the wrong state: -1, VIR_ERR_OPERATION_INVALID naming the
 * domain and its state, and nothing emitted. */
static void wrong_state(const char *what, int (*op)(virDomainPtr), virDomainPtr dom, const char *state)
{
    case_begin();
    seen_clear(&seen);
    CHECK_INT(op(dom), -1);
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, "test");
    CHECK_CONTAINS(virGetLastErrorMessage(), state);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(seen.count, 0);
    case_end(what);
}

/* An operation that succeeds. */
static void ok(const char *what, int (*op)(virDomainPtr), virDomainPtr dom)
{
    case_begin();
    CHECK_INT(op(dom), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_STR(virGetLastErrorMessage(), "no error");
    case_end(what);
}

static void lookups(void)
{
    virConnectPtr c = virConnectOpen("test:///default");
    CHECK(c != NULL);

    virDomainPtr dom = virDomainLookupByName(c, "test");
    CHECK(dom != NULL);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(virDomainFree(dom), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);

    CHECK(virDomainLookupByName(c, "nosuch") == NULL);
    CHECK_ERROR(VIR_ERR_NO_DOMAIN, "nosuch");
    CHECK(virDomainLookupByName(c, "") == NULL);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_NO_DOMAIN);
    CHECK(virDomainLookupByName(c, "Test") == NULL); /* names are case-sensitive */
    CHECK_ERROR(VIR_ERR_NO_DOMAIN, "Test");
    CHECK(virDomainLookupByName(c, "test ") == NULL);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_NO_DOMAIN);
    CHECK(virDomainLookupByName(c, NULL) == NULL);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "name");

    /* A lookup makes no event. */
    Seen s = {0};
    CHECK(virConnectAddEventHandler(c, NULL, seen_handler, &s) >= 0);
    dom = virDomainLookupByName(c, "test");
    CHECK_INT(virDeliverEvents(c), 0);
    CHECK_INT(s.count, 0);
    CHECK_INT(virDomainFree(dom), 0);
    CHECK_INT(virConnectClose(c), 0);

    /* test:///empty has no domains. */
    c = virConnectOpen("test:///empty");
    CHECK(c != NULL);
    CHECK(virDomainLookupByName(c, "test") == NULL);
    CHECK_ERROR(VIR_ERR_NO_DOMAIN, "test");
    CHECK(virDomainLookupByName(c, NULL) == NULL);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "name");
    CHECK_INT(virConnectClose(c), 0);
}

static void null_domains(void)
{
    CHECK_INT(virDomainCreate(NULL), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "domain");
    CHECK_INT(virDomainSuspend(NULL), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "domain");
    CHECK_INT(virDomainResume(NULL), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "domain");
    CHECK_INT(virDomainShutdown(NULL), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "domain");
    CHECK_INT(virDomainDestroy(NULL), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "domain");
    CHECK_INT(virDomainFree(NULL), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "domain");
}

static void lifecycle(void)
{
    conn = virConnectOpen("test:///default");
    CHECK(conn != NULL);
    CHECK(virConnectAddEventHandler(conn, NULL, seen_handler, &seen) >= 0);
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    CHECK(dom != NULL);

    /* running */
    wrong_state("resume when running", virDomainResume, dom, "running");
    wrong_state("create when running", virDomainCreate, dom, "running");

    ok("suspend", virDomainSuspend, dom);
    transition("suspend", 1, "running", "paused", "suspended-paused");

    /* paused */
    wrong_state("suspend when paused", virDomainSuspend, dom, "paused");
    wrong_state("shutdown when paused", virDomainShutdown, dom, "paused");
    wrong_state("create when paused", virDomainCreate, dom, "paused");

    /* A second handle on the same domain sees the same state. */
    virDomainPtr again = virDomainLookupByName(conn, "test");
    CHECK(again != NULL);
    CHECK(again != dom);
    wrong_state("suspend when paused, second handle", virDomainSuspend, again, "paused");
    ok("resume, second handle", virDomainResume, again);
    transition("resume, second handle", 1, "paused", "running", "resumed-unpaused");
    wrong_state("resume when running, first handle", virDomainResume, dom, "running");

    /* An emitted event shares the seqs. */
    CHECK_INT(virConnectEmitEvent(conn, "<event type=\"other\"/>"), next_seq);
    next_seq++;
    CHECK_INT(virDeliverEvents(conn), 1);
    seen_clear(&seen);

    ok("destroy", virDomainDestroy, dom);
    transition("destroy", -1, "running", "shutoff", "stopped-destroyed");

    /* shut off, seen by both handles */
    wrong_state("suspend when shut off", virDomainSuspend, dom, "shutoff");
    wrong_state("resume when shut off", virDomainResume, dom, "shutoff");
    wrong_state("shutdown when shut off", virDomainShutdown, dom, "shutoff");
    wrong_state("destroy when shut off", virDomainDestroy, dom, "shutoff");
    wrong_state("destroy when shut off, second handle", virDomainDestroy, again, "shutoff");

    ok("create", virDomainCreate, dom);
    transition("create", 2, "shutoff", "running", "started-booted");
    wrong_state("create when running again", virDomainCreate, again, "running");

    ok("shutdown", virDomainShutdown, dom);
    transition("shutdown", -1, "running", "shutoff", "stopped-shutdown");
    wrong_state("shutdown when shut off after shutdown", virDomainShutdown, dom, "shutoff");
    wrong_state("destroy when shut off after shutdown", virDomainDestroy, dom, "shutoff");

    ok("create again", virDomainCreate, again);
    transition("create again", 3, "shutoff", "running", "started-booted");

    /* Destroy also stops a paused domain, and a domain freshly handled finds
     * the state as left. */
    ok("suspend with id 3", virDomainSuspend, dom);
    transition("suspend with id 3", 3, "running", "paused", "suspended-paused");
    ok("destroy when paused", virDomainDestroy, dom);
    transition("destroy when paused", -1, "paused", "shutoff", "stopped-destroyed");
    CHECK_INT(virDomainFree(again), 0);
    again = virDomainLookupByName(conn, "test");
    CHECK(again != NULL);
    wrong_state("resume when shut off, new handle", virDomainResume, again, "shutoff");
    ok("create, new handle", virDomainCreate, again);
    transition("create, new handle", 4, "shutoff", "running", "started-booted");

    /* Freeing a handle leaves the domain alone. */
    CHECK_INT(virDomainFree(again), 0);
    CHECK_INT(virDeliverEvents(conn), 0);
    wrong_state("create after freeing a handle", virDomainCreate, dom, "running");

    /* Several transitions queued are delivered in order. */
    ok("suspend, queued", virDomainSuspend, dom);
    ok("resume, queued", virDomainResume, dom);
    ok("shutdown, queued", virDomainShutdown, dom);
    seen_clear(&seen);
    CHECK_INT(virDeliverEvents(conn), 3);
    CHECK_INT(seen.count, 3);
    if (seen.count == 3) {
        char want[128];
        snprintf(want, sizeof want, " seq=\"%d\"><domain-id>4</domain-id>", next_seq);
        CHECK(strstr(seen.xml[0], want) != NULL);
        CHECK_CONTAINS(seen.xml[0], "<reason>suspended-paused</reason>");
        snprintf(want, sizeof want, " seq=\"%d\"><domain-id>4</domain-id>", next_seq + 1);
        CHECK(strstr(seen.xml[1], want) != NULL);
        CHECK_CONTAINS(seen.xml[1], "<reason>resumed-unpaused</reason>");
        snprintf(want, sizeof want, " seq=\"%d\"><domain-id>-1</domain-id>", next_seq + 2);
        CHECK(strstr(seen.xml[2], want) != NULL);
        CHECK_CONTAINS(seen.xml[2], "<old-state>running</old-state><new-state>shutoff</new-state>");
    }
    next_seq += 3;
    seen_clear(&seen);

    ok("create, last", virDomainCreate, dom);
    transition("create, last", 5, "shutoff", "running", "started-booted");
    ok("suspend, last", virDomainSuspend, dom);
    transition("suspend, last", 5, "running", "paused", "suspended-paused");

    /* Domain handles outlive the connection: their operations then fail with
     * VIR_ERR_INVALID_CONN (whatever the state), and they can still be freed. */
    virDomainPtr second = virDomainLookupByName(conn, "test");
    CHECK(second != NULL);
    CHECK_INT(virConnectClose(conn), 0);
    conn = NULL;
    case_begin();
    CHECK_INT(virDomainResume(dom), -1); /* valid from paused */
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    CHECK_INT(virDomainDestroy(dom), -1); /* valid from paused */
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    CHECK_INT(virDomainSuspend(second), -1); /* wrong state: paused */
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    CHECK_INT(virDomainShutdown(second), -1); /* wrong state: paused */
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    CHECK_INT(virDomainCreate(dom), -1); /* wrong state: paused */
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    case_end("operations after close");
    CHECK_INT(virDomainFree(dom), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(virDomainFree(second), 0);
    seen_clear(&seen);
}

/* A handle whose connection closed while the domain was shut off or running. */
static void outlive_other_states(void)
{
    virConnectPtr c = virConnectOpen(NULL);
    virDomainPtr dom = virDomainLookupByName(c, "test");
    CHECK(dom != NULL);
    CHECK_INT(virConnectClose(c), 0);
    case_begin();
    CHECK_INT(virDomainSuspend(dom), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    CHECK_INT(virDomainShutdown(dom), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    CHECK_INT(virDomainDestroy(dom), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    CHECK_INT(virDomainResume(dom), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    CHECK_INT(virDomainCreate(dom), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    case_end("operations after close, running domain");
    CHECK_INT(virDomainFree(dom), 0);

    c = virConnectOpen(NULL);
    dom = virDomainLookupByName(c, "test");
    CHECK_INT(virDomainDestroy(dom), 0);
    CHECK_INT(virConnectClose(c), 0);
    case_begin();
    CHECK_INT(virDomainCreate(dom), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    CHECK_INT(virDomainDestroy(dom), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "closed");
    case_end("operations after close, shut-off domain");
    CHECK_INT(virDomainFree(dom), 0);
}

int main(void)
{
    lookups();
    null_domains();
    lifecycle();
    outlive_other_states();
    return check_done();
}
