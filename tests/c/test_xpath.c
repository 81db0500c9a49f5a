/* XPath filter entries from C (docs/api.md section 3): matching on handlers and
 * streams, mixing with type patterns, the refusals with their position, and
 * the limits. */
#include <unistd.h>

#include "check.h"

static const char *const VM =
    "<event type=\"domain-state-transition\"><domain-id>3</domain-id><domain-name>web1</domain-name>"
    "<old-state>running</old-state><new-state>crashed</new-state><reason>crashed-panicked</reason>"
    "<disk dev=\"vda\"/><disk dev=\"vdb\"/></event>";

/* Registers `filter` on a fresh connection, emits VM, delivers: whether the
 * handler was called. */
static int matches(const char *const *filter)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Seen seen = {0};
    int id = virConnectAddEventHandler(conn, filter, seen_handler, &seen);
    CHECK(id >= 0);
    CHECK(virConnectEmitEvent(conn, VM) > 0);
    CHECK(virDeliverEvents(conn) >= 0);
    int called = seen.count;
    seen_clear(&seen);
    virConnectClose(conn);
    return called;
}

static int expr_matches(const char *expr)
{
    const char *filter[] = {expr, NULL};
    return matches(filter);
}

/* Registration of `expr` fails with VIR_ERR_INVALID_ARG naming it and `where`. */
static void refused(const char *expr, const char *where)
{
    virConnectPtr conn = virConnectOpen(NULL);
    const char *filter[] = {"domain-*", expr, NULL};
    CHECK_INT(virConnectAddEventHandler(conn, filter, seen_handler, NULL), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "filter[1]");
    CHECK_CONTAINS(virGetLastErrorMessage(), expr);
    CHECK_CONTAINS(virGetLastErrorMessage(), where);
    /* Nothing was registered: an emit makes no call. */
    CHECK(virConnectEmitEvent(conn, VM) > 0);
    CHECK_INT(virDeliverEvents(conn), 0);
    virConnectClose(conn);
}

int main(void)
{
    CHECK_INT(expr_matches("/event[new-state='crashed']"), 1);
    CHECK_INT(expr_matches("/event[new-state='paused']"), 0);
    CHECK_INT(expr_matches("//domain-name = 'web1'"), 1);
    CHECK_INT(expr_matches("count(//disk) > 1"), 1);
    CHECK_INT(expr_matches("count(//disk) > 2"), 0);
    CHECK_INT(expr_matches("/event/@seq > 0"), 1);
    CHECK_INT(expr_matches("/event/@seq > 100"), 0);
    CHECK_INT(expr_matches("//disk[2]/@dev = 'vdb'"), 1);
    CHECK_INT(expr_matches("/event[@type='domain-state-transition' and domain-id > 2]"), 1);
    CHECK_INT(expr_matches("/event[@type='other' and domain-id > 2]"), 0);
    CHECK_INT(expr_matches("starts-with(//reason, 'crashed-')"), 1);

    /* Entries mix: any one matching is enough, and the handler is called once. */
    const char *mixed[] = {"nothing-*", "/event[new-state='crashed']", "domain-state-transition", NULL};
    CHECK_INT(matches(mixed), 1);
    const char *neither[] = {"nothing-*", "/event[new-state='paused']", NULL};
    CHECK_INT(matches(neither), 0);

    /* A stream with an XPath filter carries exactly the matching events. */
    virConnectPtr conn = virConnectOpen(NULL);
    const char *crashed[] = {"/event[new-state='crashed']", NULL};
    int fd = virConnectOpenEventStream(conn, crashed, VIR_EVENT_STREAM_NONBLOCK);
    CHECK(fd >= 0);
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    CHECK_INT(virDomainSuspend(dom), 0); /* paused: not in the stream */
    int seq = virConnectEmitEvent(conn, VM);
    char buf[4096];
    ssize_t got = read(fd, buf, sizeof buf - 1);
    CHECK(got > 0);
    buf[got > 0 ? got : 0] = '\0';
    CHECK_INT(seq_of(buf), seq);
    CHECK(strchr(buf, '\n') == buf + got - 1); /* exactly one line */
    virDomainFree(dom);
    close(fd);
    virConnectClose(conn);

    /* Refusals name the entry, its position and the place of the problem. */
    refused("/event[new-state='crashed'", "character 26");
    refused("foo(1)", "foo()");
    refused("/event/ancestor::x", "ancestor");
    refused("$x = 1", "variables");
    refused("/a/ns:b", "namespace");
    refused("comment()", "comment");
    refused("1 +", "character 3");
    refused("count(1)", "node-set");

    /* Limits: 4 KiB of expression, 32 levels of nesting. */
    char long_expr[4200];
    memset(long_expr, ' ', sizeof long_expr - 1);
    long_expr[sizeof long_expr - 1] = '\0';
    long_expr[0] = '1';
    long_expr[1] = '=';
    long_expr[2] = '1';
    refused(long_expr, "longer than the limit");
    char deep[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "(");
    strcat(deep, "1");
    for (int i = 0; i < 40; i++)
        strcat(deep, ")");
    refused(deep, "nests deeper");

    /* Pathological expressions finish (their budget runs out) and match nothing. */
    CHECK_INT(expr_matches("//*[.//*[.//*[.//*[.//*[.//*[count(.//*) = 0]]]]]] and false()"), 0);
    return check_done();
}
