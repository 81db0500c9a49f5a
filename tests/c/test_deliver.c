/* virDeliverEvents: what it returns, the order and batch it delivers, what a
 * handler may do on its own connection, and the queue limit with its
 * events-lost notice (docs/api.md sections 4, 8 and 9, virevent.h). */
#include "check.h"

/* ---- return value and order --------------------------------------------- */

static void returns_handler_calls(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    /* Nothing queued, no handlers. */
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);

    Rec a = {0}, b = {0}, c = {0};
    const char *const fy[] = {"y", NULL};
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &a) >= 0);
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &b) >= 0);
    CHECK(virConnectAddEventHandler(conn, fy, rec_handler, &c) >= 0);
    /* Handlers, nothing queued. */
    CHECK_INT(virDeliverEvents(conn), 0);
    emit(conn, "x");
    emit(conn, "y");
    emit(conn, "z");
    CHECK_INT(virDeliverEvents(conn), 3 + 3 + 1);
    CHECK_INT(a.seen.count, 3);
    CHECK_INT(b.seen.count, 3);
    CHECK_INT(c.seen.count, 1);
    /* Everything went: the next call has nothing. */
    CHECK_INT(virDeliverEvents(conn), 0);
    /* Events only some match. */
    emit(conn, "y");
    emit(conn, "nobody");
    CHECK_INT(virDeliverEvents(conn), 2 + 2 + 1);
    /* An event that no handler matches makes no call. */
    Rec d = {0};
    virConnectPtr other = virConnectOpen(NULL);
    const char *const fq[] = {"q", NULL};
    CHECK(virConnectAddEventHandler(other, fq, rec_handler, &d) >= 0);
    emit(other, "x");
    CHECK_INT(virDeliverEvents(other), 0);
    CHECK_INT(d.seen.count, 0);
    CHECK_INT(virConnectClose(other), 0);

    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&a.seen);
    seen_clear(&b.seen);
    seen_clear(&c.seen);
}

static void seq_order(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Rec all = {0}, some = {0};
    const char *const f[] = {"even", NULL};
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &all) >= 0);
    CHECK(virConnectAddEventHandler(conn, f, rec_handler, &some) >= 0);
    for (int i = 1; i <= 100; i++)
        CHECK_INT(emit(conn, i % 2 ? "odd" : "even"), i);
    CHECK_INT(virDeliverEvents(conn), 150);
    CHECK_INT(all.seen.count, 100);
    CHECK_INT(some.seen.count, 50);
    for (int i = 0; i < all.seen.count; i++)
        if (seq_of(all.seen.xml[i]) != i + 1)
            CHECK_INT(seq_of(all.seen.xml[i]), i + 1);
    for (int i = 0; i < some.seen.count; i++) {
        if (seq_of(some.seen.xml[i]) != 2 * (i + 1))
            CHECK_INT(seq_of(some.seen.xml[i]), 2 * (i + 1));
    }
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&all.seen);
    seen_clear(&some.seen);
}

/* A successful delivery leaves VIR_ERR_OK, even when a handler's own call
 * failed or an error was left from before. */
static void fail_inside(virConnectPtr conn, const char *eventXML, void *arg)
{
    (void)eventXML;
    (void)arg;
    CHECK_INT(virConnectRemoveEventHandler(conn, 99999), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "99999");
}

static void last_error_ok_after_delivery(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    CHECK(virConnectAddEventHandler(conn, NULL, fail_inside, NULL) >= 0);
    emit(conn, "x");
    CHECK_INT(virConnectRemoveEventHandler(conn, 4242), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "4242");
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_STR(virGetLastErrorMessage(), "no error");
    /* And with nothing to deliver. */
    CHECK_INT(virConnectRemoveEventHandler(conn, 4242), -1);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_STR(virGetLastErrorMessage(), "no error");
    CHECK_INT(virConnectClose(conn), 0);
}

/* ---- re-entrancy ---------------------------------------------------------- */

/* Shared state of the re-entrant handlers below. */
typedef struct {
    Seen seen;
    int freed;
    int calls;
    int id;             /* this handler's id */
    int other_id;       /* another handler's id */
    int other_calls_at; /* the other's call count when this removed it */
    Rec *other;
    Rec *added;
    int added_id;
    int result;       /* what the re-entrant call returned */
    int error;        /* and the last error after it */
    int freed_inside; /* own freed count seen inside, after removing itself */
} Ctx;

static void ctx_free(void *arg)
{
    ((Ctx *)arg)->freed++;
}

static void adds_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Ctx *ctx = arg;
    seen_handler(conn, eventXML, &ctx->seen);
    if (ctx->calls++ == 0) {
        ctx->added_id = virConnectAddEventHandlerFull(conn, NULL, rec_handler, ctx->added, rec_free, 0);
        ctx->error = virGetLastErrorCode();
    }
}

static void reentrant_add(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Rec added = {0};
    Ctx ctx = {0};
    ctx.added = &added;
    ctx.added_id = -1;
    CHECK(virConnectAddEventHandler(conn, NULL, adds_handler, &ctx) >= 0);
    emit(conn, "a");
    emit(conn, "b");
    emit(conn, "c");
    CHECK_INT(virDeliverEvents(conn), 3);
    CHECK(ctx.added_id >= 0);
    CHECK_INT(ctx.error, VIR_ERR_OK);
    CHECK_INT(ctx.calls, 3);
    /* Added during the batch: none of the batch's events. */
    CHECK_INT(added.seen.count, 0);
    int s4 = emit(conn, "d");
    CHECK_INT(virDeliverEvents(conn), 2);
    CHECK_INT(added.seen.count, 1);
    if (added.seen.count == 1)
        CHECK_INT(seq_of(added.seen.xml[0]), s4);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(added.freed, 1);
    seen_clear(&ctx.seen);
    seen_clear(&added.seen);
}

static void removes_other(virConnectPtr conn, const char *eventXML, void *arg)
{
    Ctx *ctx = arg;
    seen_handler(conn, eventXML, &ctx->seen);
    if (ctx->calls++ == 0) {
        ctx->other_calls_at = ctx->other->seen.count;
        ctx->result = virConnectRemoveEventHandler(conn, ctx->other_id);
        ctx->error = virGetLastErrorCode();
    }
}

static void reentrant_remove_other(void)
{
    /* The other handler registered before and after the remover. */
    for (int before = 0; before < 2; before++) {
        virConnectPtr conn = virConnectOpen(NULL);
        Rec other = {0};
        Ctx ctx = {0};
        ctx.other = &other;
        if (before)
            ctx.other_id = virConnectAddEventHandlerFull(conn, NULL, rec_handler, &other, rec_free, 0);
        CHECK(virConnectAddEventHandlerFull(conn, NULL, removes_other, &ctx, ctx_free, 0) >= 0);
        if (!before)
            ctx.other_id = virConnectAddEventHandlerFull(conn, NULL, rec_handler, &other, rec_free, 0);
        CHECK(ctx.other_id >= 0);
        emit(conn, "a");
        emit(conn, "b");
        emit(conn, "c");
        int calls = virDeliverEvents(conn);
        CHECK_INT(ctx.result, 0);
        CHECK_INT(ctx.error, VIR_ERR_OK);
        CHECK_INT(ctx.calls, 3);
        /* Not called once removed. */
        CHECK_INT(other.seen.count, ctx.other_calls_at);
        CHECK(other.seen.count <= 1);
        CHECK_INT(calls, 3 + other.seen.count);
        CHECK_INT(other.freed, 1);
        emit(conn, "d");
        CHECK_INT(virDeliverEvents(conn), 1);
        CHECK_INT(other.seen.count, ctx.other_calls_at);
        /* Already gone. */
        CHECK_INT(virConnectRemoveEventHandler(conn, ctx.other_id), -1);
        CHECK_ERROR(VIR_ERR_INVALID_ARG, "");
        CHECK_INT(virConnectClose(conn), 0);
        CHECK_INT(other.freed, 1);
        CHECK_INT(ctx.freed, 1);
        seen_clear(&ctx.seen);
        seen_clear(&other.seen);
    }
}

static void removes_itself(virConnectPtr conn, const char *eventXML, void *arg)
{
    Ctx *ctx = arg;
    seen_handler(conn, eventXML, &ctx->seen);
    ctx->calls++;
    ctx->result = virConnectRemoveEventHandler(conn, ctx->id);
    ctx->error = virGetLastErrorCode();
    /* Its freecb must not have run: this call has not returned. */
    ctx->freed_inside = ctx->freed;
}

static void reentrant_remove_self(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Rec witness = {0};
    Ctx ctx = {0};
    ctx.freed_inside = -1;
    ctx.id = virConnectAddEventHandlerFull(conn, NULL, removes_itself, &ctx, ctx_free, 0);
    CHECK(ctx.id >= 0);
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &witness) >= 0);
    emit(conn, "a");
    emit(conn, "b");
    emit(conn, "c");
    CHECK_INT(virDeliverEvents(conn), 1 + 3);
    CHECK_INT(ctx.calls, 1);
    CHECK_INT(ctx.result, 0);
    CHECK_INT(ctx.error, VIR_ERR_OK);
    CHECK_INT(ctx.freed_inside, 0);
    CHECK_INT(ctx.freed, 1);
    CHECK_INT(witness.seen.count, 3);
    emit(conn, "d");
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(ctx.calls, 1);
    CHECK_INT(virConnectRemoveEventHandler(conn, ctx.id), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "");
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(ctx.freed, 1);
    seen_clear(&ctx.seen);
    seen_clear(&witness.seen);
}

/* Emits one "echo" event for each "ping" event, and tries to deliver it. */
static void emits(virConnectPtr conn, const char *eventXML, void *arg)
{
    Ctx *ctx = arg;
    seen_handler(conn, eventXML, &ctx->seen);
    ctx->calls++;
    if (is_type(eventXML, "ping")) {
        ctx->result = virConnectEmitEvent(conn, "<event type=\"echo\"/>");
        ctx->error = virGetLastErrorCode();
        ctx->other_calls_at = virDeliverEvents(conn); /* reused: deliver's result */
        if (ctx->other_calls_at != 0 || virGetLastErrorCode() != VIR_ERR_OK)
            ctx->freed_inside = 1; /* reused: a nested delivery misbehaved */
    }
}

static void reentrant_emit_and_deliver(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Ctx ctx = {0};
    Rec witness = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, emits, &ctx) >= 0);
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &witness) >= 0);
    int s1 = emit(conn, "ping");
    int s2 = emit(conn, "other");
    CHECK_INT(virDeliverEvents(conn), 4);
    CHECK_INT(ctx.result, s2 + 1); /* the echo's seq */
    CHECK_INT(ctx.error, VIR_ERR_OK);
    CHECK_INT(ctx.other_calls_at, 0);
    CHECK_INT(ctx.freed_inside, 0);
    CHECK_INT(ctx.seen.count, 2);
    CHECK_INT(witness.seen.count, 2);
    if (witness.seen.count == 2) {
        CHECK_INT(seq_of(witness.seen.xml[0]), s1);
        CHECK_INT(seq_of(witness.seen.xml[1]), s2);
    }
    /* The echo comes at the next delivery. */
    CHECK_INT(virDeliverEvents(conn), 2);
    CHECK_INT(ctx.seen.count, 3);
    CHECK_INT(witness.seen.count, 3);
    if (witness.seen.count == 3) {
        CHECK(is_type(witness.seen.xml[2], "echo"));
        CHECK_INT(seq_of(witness.seen.xml[2]), s2 + 1);
    }
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&ctx.seen);
    seen_clear(&witness.seen);
}

/* On a "go" event: looks up domain "test", suspends and resumes it. */
typedef struct {
    int lookup_ok, suspend, resume, free_result, errors;
} DomainCtx;

static void drives_domain(virConnectPtr conn, const char *eventXML, void *arg)
{
    DomainCtx *d = arg;
    if (!is_type(eventXML, "go"))
        return;
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    d->lookup_ok = dom != NULL;
    if (!dom)
        return;
    d->suspend = virDomainSuspend(dom);
    if (virGetLastErrorCode() != VIR_ERR_OK)
        d->errors++;
    d->resume = virDomainResume(dom);
    if (virGetLastErrorCode() != VIR_ERR_OK)
        d->errors++;
    d->free_result = virDomainFree(dom);
}

static void reentrant_domain(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    DomainCtx d = {0, -1, -1, -1, 0};
    Rec seen = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, drives_domain, &d) >= 0);
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &seen) >= 0);
    emit(conn, "go");
    CHECK_INT(virDeliverEvents(conn), 2);
    CHECK_INT(d.lookup_ok, 1);
    CHECK_INT(d.suspend, 0);
    CHECK_INT(d.resume, 0);
    CHECK_INT(d.free_result, 0);
    CHECK_INT(d.errors, 0);
    CHECK_INT(seen.seen.count, 1);
    /* The two transitions come at the next delivery. */
    CHECK_INT(virDeliverEvents(conn), 4);
    CHECK_INT(seen.seen.count, 3);
    if (seen.seen.count == 3) {
        CHECK(is_type(seen.seen.xml[1], "domain-state-transition"));
        CHECK_CONTAINS(seen.seen.xml[1], "<new-state>paused</new-state>");
        CHECK(is_type(seen.seen.xml[2], "domain-state-transition"));
        CHECK_CONTAINS(seen.seen.xml[2], "<new-state>running</new-state>");
        CHECK(seq_of(seen.seen.xml[1]) < seq_of(seen.seen.xml[2]));
    }
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen.seen);
}

static void closes_own(virConnectPtr conn, const char *eventXML, void *arg)
{
    Ctx *ctx = arg;
    (void)eventXML;
    ctx->calls++;
    ctx->result = virConnectClose(conn);
    ctx->error = virGetLastErrorCode();
    /* Still usable from inside. */
    if (virConnectEmitEvent(conn, "<event type=\"after-close\"/>") <= 0)
        ctx->freed_inside = 1;
}

static void reentrant_close(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Ctx ctx = {0};
    Rec seen = {0};
    const char *const f[] = {"close-me", NULL};
    CHECK(virConnectAddEventHandlerFull(conn, f, closes_own, &ctx, ctx_free, 0) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, NULL, rec_handler, &seen, rec_free, 0) >= 0);
    emit(conn, "close-me");
    emit(conn, "x");
    CHECK_INT(virDeliverEvents(conn), 3);
    CHECK_INT(ctx.calls, 1);
    CHECK_INT(ctx.result, -1);
    CHECK_INT(ctx.error, VIR_ERR_OPERATION_INVALID);
    CHECK_INT(ctx.freed_inside, 0);
    CHECK_INT(ctx.freed, 0);
    CHECK_INT(seen.freed, 0);
    /* The connection still works: the rest of the batch came, and more. */
    CHECK_INT(seen.seen.count, 2);
    CHECK_INT(virDeliverEvents(conn), 1); /* after-close */
    CHECK_INT(seen.seen.count, 3);
    if (seen.seen.count == 3)
        CHECK(is_type(seen.seen.xml[2], "after-close"));
    emit(conn, "y");
    CHECK_INT(virDeliverEvents(conn), 1);
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    CHECK(dom != NULL);
    CHECK_INT(virDomainSuspend(dom), 0);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(virDomainFree(dom), 0);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(ctx.freed, 1);
    CHECK_INT(seen.freed, 1);
    seen_clear(&seen.seen);
}

/* ---- queue limit ---------------------------------------------------------- */

/* Checks that `xml` is exactly an events-lost notice with these numbers. */
/* What a freecb that calls back into its own connection got. */
typedef struct {
    virConnectPtr conn;
    int try_others; /* also make every other call */
    int runs;
    int close_result, close_error;
    char close_message[256];
    int calls, refused; /* other calls made, and refused as they should be */
} Nested;

static void ignore_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    (void)conn;
    (void)eventXML;
    (void)arg;
}

/* Each call resets the last error, so each is looked at before the next. */
static void nested_call(Nested *n, int result)
{
    n->calls++;
    n->refused += result == -1 && virGetLastErrorCode() == VIR_ERR_OPERATION_INVALID &&
                  strstr(virGetLastErrorMessage(), "being closed") != NULL;
}

static void nested_free(void *arg)
{
    Nested *n = arg;
    n->runs++;
    n->close_result = virConnectClose(n->conn);
    n->close_error = virGetLastErrorCode();
    snprintf(n->close_message, sizeof n->close_message, "%s", virGetLastErrorMessage());
    if (!n->try_others)
        return;
    const char *const f[] = {"x", NULL};
    nested_call(n, virConnectEmitEvent(n->conn, "<event type=\"from-freecb\"/>"));
    nested_call(n, virConnectAddEventHandler(n->conn, NULL, ignore_handler, NULL));
    nested_call(n, virDeliverEvents(n->conn));
    nested_call(n, virConnectGetEventFD(n->conn));
    nested_call(n, virConnectOpenEventStream(n->conn, f, 0));
    nested_call(n, virConnectSetEventQueueLimit(n->conn, 3));
    nested_call(n, virConnectRemoveEventHandler(n->conn, 0));
    nested_call(n, virConnectStartEventThread(n->conn));
    nested_call(n, virConnectStopEventThread(n->conn));
}

/* A freecb that closes its own connection while that connection's close runs
 * it: refused, nothing touched (valgrind sees no freed memory used), and the
 * outer close finishes normally; every other call from there fails clearly.
 * A freecb run by a removal may not close the connection either. */
static void close_from_freecb(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Nested in_close = {conn, 1, 0, 0, 0, "", 0, 0};
    Rec seen = {0};
    CHECK(virConnectAddEventHandlerFull(conn, NULL, rec_handler, &seen, rec_free, 0) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, NULL, ignore_handler, &in_close, nested_free, 0) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, NULL, rec_handler, &seen, rec_free, 0) >= 0);
    emit(conn, "queued");
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(in_close.runs, 1);
    CHECK_INT(in_close.close_result, -1);
    CHECK_INT(in_close.close_error, VIR_ERR_OPERATION_INVALID);
    CHECK_CONTAINS(in_close.close_message, "already being closed");
    CHECK_INT(in_close.calls, 9);
    CHECK_INT(in_close.refused, in_close.calls);
    /* The handlers around it were freed too, once each. */
    CHECK_INT(seen.freed, 2);
    case_end("virConnectClose from a freecb that its close runs");

    case_begin();
    conn = virConnectOpen(NULL);
    Nested at_removal = {conn, 0, 0, 0, 0, "", 0, 0};
    int id = virConnectAddEventHandlerFull(conn, NULL, ignore_handler, &at_removal, nested_free, 0);
    CHECK(id >= 0);
    CHECK_INT(virConnectRemoveEventHandler(conn, id), 0);
    CHECK_INT(at_removal.runs, 1);
    CHECK_INT(at_removal.close_result, -1);
    CHECK_INT(at_removal.close_error, VIR_ERR_OPERATION_INVALID);
    CHECK_CONTAINS(at_removal.close_message, "freecbs");
    /* Still open, and working. */
    CHECK(virConnectAddEventHandlerFull(conn, NULL, rec_handler, &seen, rec_free, 0) >= 0);
    emit(conn, "still-open");
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(seen.freed, 3);
    seen_clear(&seen.seen);
    case_end("virConnectClose from a freecb that a removal runs");
}

static void check_lost(const char *xml, const char *count, const char *first, const char *last)
{
    char v[64];
    CHECK(xml != NULL);
    if (!xml)
        return;
    CHECK(strncmp(xml, "<event type=\"events-lost\" timestamp=\"", 37) == 0);
    CHECK_STR(attr(xml, "type", v, sizeof v), "events-lost");
    CHECK_STR(attr(xml, "seq", v, sizeof v), "0");
    CHECK_STR(attr(xml, "count", v, sizeof v), count);
    CHECK_STR(attr(xml, "first-seq", v, sizeof v), first);
    CHECK_STR(attr(xml, "last-seq", v, sizeof v), last);
    /* timestamp: decimal seconds, after 2008. */
    attr(xml, "timestamp", v, sizeof v);
    char *end;
    double t = strtod(v, &end);
    CHECK(v[0] >= '0' && v[0] <= '9');
    CHECK(*end == '\0');
    CHECK(t > 1221756307.0);
    for (const char *p = v; *p; p++)
        CHECK((*p >= '0' && *p <= '9') || *p == '.');
    /* An empty element with those attributes, nothing else. */
    char want[256];
    snprintf(want, sizeof want, " seq=\"0\" count=\"%s\" first-seq=\"%s\" last-seq=\"%s\"/>", count, first, last);
    CHECK_CONTAINS(xml, want);
    size_t n = strlen(xml), w = strlen(want);
    CHECK(n >= w && strcmp(xml + n - w, want) == 0);
}

static void queue_limit(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    CHECK_INT(virConnectSetEventQueueLimit(conn, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "maxEvents");
    CHECK_INT(virConnectSetEventQueueLimit(conn, 10), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);

    Rec all = {0}, typed = {0}, none = {0}, wild = {0};
    const char *const fx[] = {"x", NULL};
    const char *const fn[] = {"never-emitted", NULL};
    const char *const fw[] = {"never-*", NULL};
    CHECK(virConnectAddEventHandlerFull(conn, NULL, rec_handler, &all, rec_free, 0) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, fx, rec_handler, &typed, rec_free, 0) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, fn, rec_handler, &none, rec_free, 0) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, fw, rec_handler, &wild, rec_free, 0) >= 0);

    /* Emitting never fails for a full queue. */
    for (int i = 1; i <= 25; i++) {
        CHECK_INT(emit(conn, "x"), i);
        CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    }
    CHECK_INT(virDeliverEvents(conn), 11 + 11 + 1 + 1);
    CHECK_INT(all.seen.count, 11);
    CHECK_INT(typed.seen.count, 11);
    CHECK_INT(none.seen.count, 1);
    CHECK_INT(wild.seen.count, 1);
    for (int i = 0; i < 10 && i < all.seen.count; i++) {
        CHECK_INT(seq_of(all.seen.xml[i]), i + 1);
        CHECK(is_type(all.seen.xml[i], "x"));
    }
    for (int i = 0; i < 10 && i < typed.seen.count; i++)
        CHECK_INT(seq_of(typed.seen.xml[i]), i + 1);
    if (all.seen.count == 11)
        check_lost(all.seen.xml[10], "15", "11", "25");
    if (typed.seen.count == 11)
        check_lost(typed.seen.xml[10], "15", "11", "25");
    if (none.seen.count == 1)
        check_lost(none.seen.xml[0], "15", "11", "25");
    if (wild.seen.count == 1)
        check_lost(wild.seen.xml[0], "15", "11", "25");
    /* Exactly one notice. */
    CHECK_INT(virDeliverEvents(conn), 0);

    /* Afterwards events flow normally: a queue-full of them, nothing lost. */
    seen_clear(&all.seen);
    seen_clear(&typed.seen);
    seen_clear(&none.seen);
    seen_clear(&wild.seen);
    for (int i = 26; i <= 35; i++)
        CHECK_INT(emit(conn, "x"), i);
    CHECK_INT(virDeliverEvents(conn), 20);
    CHECK_INT(all.seen.count, 10);
    CHECK_INT(typed.seen.count, 10);
    CHECK_INT(none.seen.count, 0);
    CHECK_INT(wild.seen.count, 0);
    for (int i = 0; i < all.seen.count; i++) {
        CHECK_INT(seq_of(all.seen.xml[i]), 26 + i);
        CHECK(!is_type(all.seen.xml[i], "events-lost"));
    }

    /* A second overflow is counted afresh. */
    seen_clear(&all.seen);
    seen_clear(&typed.seen);
    for (int i = 36; i <= 47; i++)
        CHECK_INT(emit(conn, "x"), i);
    CHECK_INT(virDeliverEvents(conn), 11 + 11 + 1 + 1);
    CHECK_INT(all.seen.count, 11);
    if (all.seen.count == 11) {
        CHECK_INT(seq_of(all.seen.xml[0]), 36);
        CHECK_INT(seq_of(all.seen.xml[9]), 45);
        check_lost(all.seen.xml[10], "2", "46", "47");
    }
    CHECK_INT(none.seen.count, 1);
    if (none.seen.count == 1)
        check_lost(none.seen.xml[0], "2", "46", "47");

    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(all.freed, 1);
    CHECK_INT(typed.freed, 1);
    CHECK_INT(none.freed, 1);
    CHECK_INT(wild.freed, 1);
    seen_clear(&all.seen);
    seen_clear(&typed.seen);
    seen_clear(&none.seen);
    seen_clear(&wild.seen);
}

int main(void)
{
    returns_handler_calls();
    seq_order();
    last_error_ok_after_delivery();
    reentrant_add();
    reentrant_remove_other();
    reentrant_remove_self();
    reentrant_emit_and_deliver();
    reentrant_domain();
    reentrant_close();
    close_from_freecb();
    queue_limit();
    return check_done();
}
