/* Handlers and filters: ids, type patterns, bad filters, freecb and when a
 * handler starts and stops receiving (docs/api.md section 3, virevent.h). */
#include "check.h"

static void rec_clear(Rec *rec)
{
    seen_clear(&rec->seen);
}

/* ---- ids ---------------------------------------------------------------- */

static void ids_are_unique_and_never_reused(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    int ids[64];
    int n = 0;
    Rec rec = {0};

    for (int i = 0; i < 8; i++) {
        int id = virConnectAddEventHandler(conn, NULL, rec_handler, &rec);
        CHECK(id >= 0);
        CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
        CHECK_STR(virGetLastErrorMessage(), "no error");
        ids[n++] = id;
    }
    /* Remove some, add more, both ways: no id comes back. */
    for (int round = 0; round < 6; round++) {
        CHECK_INT(virConnectRemoveEventHandler(conn, ids[n - 1]), 0);
        CHECK_INT(virConnectRemoveEventHandler(conn, ids[round]), 0);
        int a = virConnectAddEventHandler(conn, NULL, rec_handler, &rec);
        int b = virConnectAddEventHandlerFull(conn, NULL, rec_handler, &rec, rec_free, 0);
        CHECK(a >= 0);
        CHECK(b >= 0);
        ids[n++] = a;
        ids[n++] = b;
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (ids[i] == ids[j]) {
                fprintf(stderr, "handler id %d given twice (%d and %d)\n", ids[i], i, j);
                CHECK(ids[i] != ids[j]);
            }
    CHECK_INT(virConnectClose(conn), 0);
    /* The six handlers with rec_free: each freed once (at close). */
    CHECK_INT(rec.freed, 6);
    rec_clear(&rec);
}

/* ---- filters ------------------------------------------------------------ */

static const char *const TYPES[] = {
    "domain-state-transition", "domain-", "domain", "xdomain-y", "net-lost",
    "disk-lost", "lost", "disk", "dn", "dXnY", "events-lost.x", NULL,
};
#define NTYPES ((int)(sizeof TYPES / sizeof TYPES[0]) - 1)

/* Registers one handler with `filter` (plus a NULL-filter witness), emits every
 * type of TYPES once, delivers, and checks that exactly the types in `want`
 * (NULL-terminated) arrive, once each, in emission order. */
static void filter_gets(const char *const *filter, const char *const *want, const char *what)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Rec rec = {0}, all = {0};
    int id = virConnectAddEventHandlerFull(conn, filter, rec_handler, &rec, rec_free, 0);
    CHECK(id >= 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &all) >= 0);
    for (int i = 0; i < NTYPES; i++)
        emit(conn, TYPES[i]);

    int nwant = 0;
    while (want[nwant])
        nwant++;
    int calls = virDeliverEvents(conn);
    CHECK_INT(calls, NTYPES + nwant);
    CHECK_INT(all.seen.count, NTYPES);
    if (rec.seen.count != nwant)
        fprintf(stderr, "filter %s: got %d events, want %d\n", what, rec.seen.count, nwant);
    CHECK_INT(rec.seen.count, nwant);
    for (int i = 0; i < rec.seen.count && i < nwant; i++) {
        char type[64];
        attr(rec.seen.xml[i], "type", type, sizeof type);
        if (strcmp(type, want[i]) != 0)
            fprintf(stderr, "filter %s: event %d is %s, want %s\n", what, i, type, want[i]);
        CHECK_STR(type, want[i]);
    }
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(rec.freed, 1);
    rec_clear(&rec);
    rec_clear(&all);
}

static void filters_match_types(void)
{
    /* NULL: everything. */
    filter_gets(NULL, TYPES, "NULL");
    {
        const char *const f[] = {"*", NULL};
        filter_gets(f, TYPES, "*");
    }
    {
        const char *const f[] = {"domain-state-transition", NULL};
        const char *const w[] = {"domain-state-transition", NULL};
        filter_gets(f, w, "exact");
    }
    {
        const char *const f[] = {"domain", NULL};
        const char *const w[] = {"domain", NULL};
        filter_gets(f, w, "exact domain");
    }
    {
        const char *const f[] = {"nothing-has-this-type", NULL};
        const char *const w[] = {NULL};
        filter_gets(f, w, "no match");
    }
    {
        const char *const f[] = {"domain-*", NULL};
        const char *const w[] = {"domain-state-transition", "domain-", NULL};
        filter_gets(f, w, "domain-*");
    }
    {
        const char *const f[] = {"*-lost", NULL};
        const char *const w[] = {"net-lost", "disk-lost", NULL};
        filter_gets(f, w, "*-lost");
    }
    {
        const char *const f[] = {"d*n*", NULL};
        const char *const w[] = {"domain-state-transition", "domain-", "domain", "dn", "dXnY", NULL};
        filter_gets(f, w, "d*n*");
    }
    {
        const char *const f[] = {"*lost*", NULL};
        const char *const w[] = {"net-lost", "disk-lost", "lost", "events-lost.x", NULL};
        filter_gets(f, w, "*lost*");
    }
    {
        const char *const f[] = {"disk*", NULL};
        const char *const w[] = {"disk-lost", "disk", NULL};
        filter_gets(f, w, "disk*");
    }
    /* Several entries: an event matching two of them still comes once. */
    {
        const char *const f[] = {"disk", "domain-*", "domain-state-transition", "*-lost", "net-*", NULL};
        const char *const w[] = {"domain-state-transition", "domain-", "net-lost", "disk-lost", "disk", NULL};
        filter_gets(f, w, "vector");
    }
    {
        const char *const f[] = {"dn", "dn", "d*", "dXnY", NULL};
        const char *const w[] = {"domain-state-transition", "domain-", "domain", "disk-lost", "disk", "dn", "dXnY", NULL};
        filter_gets(f, w, "overlapping vector");
    }
}

/* The filter vector is copied: the caller may change and free it on return. */
static void filter_is_copied(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Rec rec = {0};
    char *entry = strdup("alpha");
    const char **vec = calloc(2, sizeof *vec);
    vec[0] = entry;
    CHECK(virConnectAddEventHandler(conn, vec, rec_handler, &rec) >= 0);
    entry[0] = 'A';
    free(entry);
    free(vec);
    emit(conn, "alpha");
    emit(conn, "Alpha");
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(rec.seen.count, 1);
    CHECK_CONTAINS(rec.seen.xml[0], "type=\"alpha\"");
    CHECK_INT(virConnectClose(conn), 0);
    rec_clear(&rec);
}

/* Each handler gets only the events its filter matches. */
static void events_reach_only_matching_handlers(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Rec a = {0}, b = {0}, c = {0}, all = {0};
    const char *const fa[] = {"alpha", NULL};
    const char *const fb[] = {"beta*", NULL};
    const char *const fc[] = {"gamma", NULL};
    CHECK(virConnectAddEventHandlerFull(conn, fa, rec_handler, &a, rec_free, 0) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, fb, rec_handler, &b, rec_free, 0) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, fc, rec_handler, &c, rec_free, 0) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, NULL, rec_handler, &all, rec_free, 0) >= 0);
    int s1 = emit(conn, "alpha");
    int s2 = emit(conn, "beta");
    int s3 = emit(conn, "beta-2");
    int s4 = emit(conn, "delta");
    int s5 = emit(conn, "alpha");
    CHECK_INT(virDeliverEvents(conn), 2 + 2 + 0 + 5);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(a.seen.count, 2);
    CHECK_INT(b.seen.count, 2);
    CHECK_INT(c.seen.count, 0);
    CHECK_INT(all.seen.count, 5);
    if (a.seen.count == 2 && b.seen.count == 2 && all.seen.count == 5) {
        CHECK_INT(seq_of(a.seen.xml[0]), s1);
        CHECK_INT(seq_of(a.seen.xml[1]), s5);
        CHECK_INT(seq_of(b.seen.xml[0]), s2);
        CHECK_INT(seq_of(b.seen.xml[1]), s3);
        CHECK_CONTAINS(b.seen.xml[1], "type=\"beta-2\"");
        CHECK_INT(seq_of(all.seen.xml[3]), s4);
    }
    /* Nothing left over. */
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(a.freed, 1);
    CHECK_INT(b.freed, 1);
    CHECK_INT(c.freed, 1);
    CHECK_INT(all.freed, 1);
    rec_clear(&a);
    rec_clear(&b);
    rec_clear(&c);
    rec_clear(&all);
}

/* ---- bad registrations -------------------------------------------------- */

/* Registering `filter` fails with VIR_ERR_INVALID_ARG naming `position`; freecb
 * runs once at once, and nothing is registered. */
static void bad_filter(const char *const *filter, const char *position)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Rec bad = {0}, plain = {0}, all = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &all) >= 0);

    CHECK_INT(virConnectAddEventHandlerFull(conn, filter, rec_handler, &bad, rec_free, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, position);
    CHECK_INT(bad.freed, 1);
    CHECK_INT(virConnectAddEventHandler(conn, filter, rec_handler, &plain), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, position);
    /* Without freecb, too. */
    CHECK_INT(virConnectAddEventHandlerFull(conn, filter, rec_handler, &plain, NULL, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, position);

    /* Events of every type the vector names go only to the witness. */
    emit(conn, "a");
    emit(conn, "b");
    emit(conn, "c");
    emit(conn, "other");
    CHECK_INT(virDeliverEvents(conn), 4);
    CHECK_INT(all.seen.count, 4);
    CHECK_INT(bad.seen.count, 0);
    CHECK_INT(plain.seen.count, 0);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(bad.freed, 1); /* not again at close */
    rec_clear(&all);
}

static void bad_filters(void)
{
    {
        const char *const f[] = {NULL};
        bad_filter(f, "filter[0]");
    }
    {
        const char *const f[] = {"", NULL};
        bad_filter(f, "filter[0]");
    }
    {
        const char *const f[] = {"a", "", NULL};
        bad_filter(f, "filter[1]");
    }
    {
        const char *const f[] = {"a", "b*", "c", "", NULL};
        bad_filter(f, "filter[3]");
    }
    {
        /* The first bad entry is the one named; the good ones before it are not
         * registered. */
        const char *const f[] = {"a", "", "b", "", NULL};
        bad_filter(f, "filter[1]");
    }
}

static void bad_arguments(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Rec rec = {0}, all = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &all) >= 0);

    /* NULL handler. */
    CHECK_INT(virConnectAddEventHandler(conn, NULL, NULL, &rec), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "handler");
    CHECK_INT(virConnectAddEventHandlerFull(conn, NULL, NULL, &rec, rec_free, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "handler");
    CHECK_INT(rec.freed, 1);
    const char *const f[] = {"x", NULL};
    CHECK_INT(virConnectAddEventHandlerFull(conn, f, NULL, &rec, rec_free, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "handler");
    CHECK_INT(rec.freed, 2);

    /* flags != 0. */
    rec.freed = 0;
    CHECK_INT(virConnectAddEventHandlerFull(conn, NULL, rec_handler, &rec, rec_free, 1), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "flags");
    CHECK_INT(rec.freed, 1);
    CHECK_INT(virConnectAddEventHandlerFull(conn, f, rec_handler, &rec, rec_free, 0x80000000u), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "flags");
    CHECK_INT(rec.freed, 2);
    CHECK_INT(virConnectAddEventHandlerFull(conn, NULL, rec_handler, &rec, NULL, 2), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "flags");

    /* None of them was registered. */
    emit(conn, "x");
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(all.seen.count, 1);
    CHECK_INT(rec.seen.count, 0);

    /* Unknown ids. */
    CHECK_INT(virConnectRemoveEventHandler(conn, 12345), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "12345");
    CHECK_INT(virConnectRemoveEventHandler(conn, -1), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "-1");
    /* An id of another connection is unknown here... unless it happens to be
     * taken; use one beyond every id this connection gave. */
    int id = virConnectAddEventHandlerFull(conn, NULL, rec_handler, &rec, rec_free, 0);
    CHECK(id >= 0);
    CHECK_INT(virConnectRemoveEventHandler(conn, id + 1000), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "");
    /* Already removed. */
    rec.freed = 0;
    CHECK_INT(virConnectRemoveEventHandler(conn, id), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(rec.freed, 1);
    CHECK_INT(virConnectRemoveEventHandler(conn, id), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "");
    CHECK_INT(rec.freed, 1);

    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(rec.freed, 1);
    rec_clear(&all);
}

/* ---- freecb ------------------------------------------------------------- */

static void freecb_runs_once(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Rec removed = {0}, kept1 = {0}, kept2 = {0}, nofree = {0}, nullfree = {0};
    int r = virConnectAddEventHandlerFull(conn, NULL, rec_handler, &removed, rec_free, 0);
    int k1 = virConnectAddEventHandlerFull(conn, NULL, rec_handler, &kept1, rec_free, 0);
    const char *const f[] = {"y", NULL};
    int k2 = virConnectAddEventHandlerFull(conn, f, rec_handler, &kept2, rec_free, 0);
    int n = virConnectAddEventHandler(conn, NULL, rec_handler, &nofree);
    int nf = virConnectAddEventHandlerFull(conn, NULL, rec_handler, &nullfree, NULL, 0);
    CHECK(r >= 0 && k1 >= 0 && k2 >= 0 && n >= 0 && nf >= 0);

    emit(conn, "x");
    CHECK_INT(virDeliverEvents(conn), 4);
    CHECK_INT(removed.freed + kept1.freed + kept2.freed + nofree.freed, 0);

    /* At removal, once. */
    CHECK_INT(virConnectRemoveEventHandler(conn, r), 0);
    CHECK_INT(removed.freed, 1);
    CHECK_INT(kept1.freed, 0);
    CHECK_INT(kept2.freed, 0);
    /* Removing a handler without freecb frees nothing. */
    CHECK_INT(virConnectRemoveEventHandler(conn, nf), 0);
    CHECK_INT(removed.freed + kept1.freed + kept2.freed + nofree.freed + nullfree.freed, 1);

    emit(conn, "y");
    CHECK_INT(virDeliverEvents(conn), 3);
    CHECK_INT(removed.seen.count, 1);
    CHECK_INT(kept1.seen.count, 2);
    CHECK_INT(kept2.seen.count, 1);
    CHECK_INT(nofree.seen.count, 2);
    CHECK_INT(nullfree.seen.count, 1);

    /* At close, once each for those still registered; none for the others. */
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(removed.freed, 1);
    CHECK_INT(kept1.freed, 1);
    CHECK_INT(kept2.freed, 1);
    CHECK_INT(nofree.freed, 0);
    CHECK_INT(nullfree.freed, 0);

    /* Closing with events still queued: freecb once, handler never called. */
    Rec pending = {0};
    conn = virConnectOpen(NULL);
    CHECK(virConnectAddEventHandlerFull(conn, NULL, rec_handler, &pending, rec_free, 0) >= 0);
    emit(conn, "x");
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(pending.freed, 1);
    CHECK_INT(pending.seen.count, 0);

    rec_clear(&removed);
    rec_clear(&kept1);
    rec_clear(&kept2);
    rec_clear(&nofree);
    rec_clear(&nullfree);
}

/* A heap arg that its freecb frees: valgrind checks it is freed exactly once. */
typedef struct {
    int calls;
    char *buffer;
} Owned;

static void owned_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    (void)conn;
    (void)eventXML;
    ((Owned *)arg)->calls++;
}

static int owned_frees;

static void owned_free(void *arg)
{
    Owned *o = arg;
    owned_frees++;
    free(o->buffer);
    free(o);
}

static void freecb_frees_heap_args(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    int ids[4];
    for (int i = 0; i < 4; i++) {
        Owned *o = calloc(1, sizeof *o);
        o->buffer = malloc(100);
        ids[i] = virConnectAddEventHandlerFull(conn, NULL, owned_handler, o, owned_free, 0);
        CHECK(ids[i] >= 0);
    }
    /* Failed registration frees at once. */
    Owned *o = calloc(1, sizeof *o);
    o->buffer = malloc(100);
    const char *const empty[] = {NULL};
    CHECK_INT(virConnectAddEventHandlerFull(conn, empty, owned_handler, o, owned_free, 0), -1);
    CHECK_INT(owned_frees, 1);
    emit(conn, "x");
    CHECK_INT(virDeliverEvents(conn), 4);
    CHECK_INT(virConnectRemoveEventHandler(conn, ids[1]), 0);
    CHECK_INT(owned_frees, 2);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(owned_frees, 5);
}

/* ---- when a handler starts and stops receiving --------------------------- */

static void added_after_emit_misses_it(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Rec early = {0}, late = {0}, late_typed = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &early) >= 0);
    int s1 = emit(conn, "x");
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &late) >= 0);
    const char *const fx[] = {"x", NULL};
    CHECK(virConnectAddEventHandler(conn, fx, rec_handler, &late_typed) >= 0);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(early.seen.count, 1);
    CHECK_INT(late.seen.count, 0);
    CHECK_INT(late_typed.seen.count, 0);
    if (early.seen.count == 1)
        CHECK_INT(seq_of(early.seen.xml[0]), s1);

    /* Later events reach them. */
    int s2 = emit(conn, "x");
    CHECK_INT(virDeliverEvents(conn), 3);
    CHECK_INT(late.seen.count, 1);
    CHECK_INT(late_typed.seen.count, 1);
    if (late.seen.count == 1)
        CHECK_INT(seq_of(late.seen.xml[0]), s2);

    /* Two events queued around a registration: only the second. */
    emit(conn, "x");
    Rec mid = {0};
    CHECK(virConnectAddEventHandler(conn, fx, rec_handler, &mid) >= 0);
    int s4 = emit(conn, "x");
    CHECK_INT(virDeliverEvents(conn), 2 + 2 + 2 + 1);
    CHECK_INT(mid.seen.count, 1);
    if (mid.seen.count == 1)
        CHECK_INT(seq_of(mid.seen.xml[0]), s4);

    /* A handler added when no one listened does not get the earlier event. */
    virConnectPtr quiet = virConnectOpen(NULL);
    Rec q = {0};
    emit(quiet, "x");
    CHECK(virConnectAddEventHandler(quiet, NULL, rec_handler, &q) >= 0);
    CHECK_INT(virDeliverEvents(quiet), 0);
    CHECK_INT(q.seen.count, 0);
    CHECK_INT(virConnectClose(quiet), 0);

    CHECK_INT(virConnectClose(conn), 0);
    rec_clear(&early);
    rec_clear(&late);
    rec_clear(&late_typed);
    rec_clear(&mid);
}

static void removed_before_delivery_misses_queued(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Rec stays = {0}, goes = {0}, goes_typed = {0};
    const char *const fx[] = {"x", NULL};
    CHECK(virConnectAddEventHandlerFull(conn, NULL, rec_handler, &stays, rec_free, 0) >= 0);
    int g = virConnectAddEventHandlerFull(conn, NULL, rec_handler, &goes, rec_free, 0);
    int gt = virConnectAddEventHandlerFull(conn, fx, rec_handler, &goes_typed, rec_free, 0);
    CHECK(g >= 0 && gt >= 0);
    emit(conn, "x");
    emit(conn, "y");
    emit(conn, "x");
    CHECK_INT(virConnectRemoveEventHandler(conn, g), 0);
    CHECK_INT(virConnectRemoveEventHandler(conn, gt), 0);
    CHECK_INT(goes.freed, 1);
    CHECK_INT(goes_typed.freed, 1);
    CHECK_INT(virDeliverEvents(conn), 3);
    CHECK_INT(stays.seen.count, 3);
    CHECK_INT(goes.seen.count, 0);
    CHECK_INT(goes_typed.seen.count, 0);

    /* Removing the only listener: the queued events go nowhere. */
    Rec only = {0};
    virConnectPtr c2 = virConnectOpen(NULL);
    int o = virConnectAddEventHandlerFull(c2, NULL, rec_handler, &only, rec_free, 0);
    emit(c2, "x");
    CHECK_INT(virConnectRemoveEventHandler(c2, o), 0);
    CHECK_INT(virDeliverEvents(c2), 0);
    CHECK_INT(only.seen.count, 0);
    CHECK_INT(only.freed, 1);
    CHECK_INT(virConnectClose(c2), 0);
    CHECK_INT(only.freed, 1);

    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(stays.freed, 1);
    CHECK_INT(goes.freed, 1);
    CHECK_INT(goes_typed.freed, 1);
    rec_clear(&stays);
}

/* Handlers on one connection know nothing of another's. */
static void ids_belong_to_their_connection(void)
{
    virConnectPtr a = virConnectOpen(NULL), b = virConnectOpen("test:///empty");
    Rec ra = {0}, rb = {0};
    int ia = virConnectAddEventHandlerFull(a, NULL, rec_handler, &ra, rec_free, 0);
    CHECK(ia >= 0);
    /* b has no handlers at all: a's id is unknown there. */
    CHECK_INT(virConnectRemoveEventHandler(b, ia), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "");
    CHECK_INT(ra.freed, 0);
    int ib = virConnectAddEventHandlerFull(b, NULL, rec_handler, &rb, rec_free, 0);
    CHECK(ib >= 0);
    emit(a, "x");
    CHECK_INT(virDeliverEvents(a), 1);
    CHECK_INT(virDeliverEvents(b), 0);
    CHECK_INT(ra.seen.count, 1);
    CHECK_INT(rb.seen.count, 0);
    CHECK_INT(virConnectClose(a), 0);
    CHECK_INT(virConnectClose(b), 0);
    CHECK_INT(ra.freed, 1);
    CHECK_INT(rb.freed, 1);
    rec_clear(&ra);
}

int main(void)
{
    ids_are_unique_and_never_reused();
    filters_match_types();
    filter_is_copied();
    events_reach_only_matching_handlers();
    bad_filters();
    bad_arguments();
    freecb_runs_once();
    freecb_frees_heap_args();
    added_after_emit_misses_it();
    removed_before_delivery_misses_queued();
    ids_belong_to_their_connection();
    return check_done();
}
