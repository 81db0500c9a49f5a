/* Many producers (docs/api.md sections 4 and 9): 4 threads emit at once while a
 * fifth adds and removes handlers and the event thread delivers. Every handler
 * sees its events in seq order, with no duplicate and no gap except those that
 * events-lost notices report; each freecb runs exactly once. Run twice: with
 * the default queue limit (nothing lost) and with a limit of 50 and a slow
 * handler (losses, each reported): 4 x 5000 events, then 4 x 1000 (which lose
 * as much, and keep the program short under valgrind). Only the main thread
 * uses CHECK: the other
 * threads record what they saw, and main checks it after joining them. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define EMITTERS 4
#define PER_EMITTER 5000 /* the default-limit run */
#define LOSSY_PER_EMITTER 1000 /* the lossy run: losing the same way takes fewer */
#define MAX_DYNAMIC 400
#define LIMIT 50

/* This run's events per emitter, and in all. */
static int per_emitter, total;

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---- the filters handlers use ------------------------------------------------ */

enum { F_ALL, F_PSTAR, F_P1, F_P0P2, N_FILTERS };

static const char *const f_pstar[] = {"p*", NULL};
static const char *const f_p1[] = {"p1", NULL};
static const char *const f_p0p2[] = {"p0", "p2", NULL};
static const char *const *const filter_vectors[N_FILTERS] = {NULL, f_pstar, f_p1, f_p0p2};
static const char *const filter_names[N_FILTERS] = {"NULL", "{p*}", "{p1}", "{p0,p2}"};

/* Whether filter `kind` takes events of emitter `type` ("p<type>"). */
static int accepts(int kind, int type)
{
    switch (kind) {
    case F_ALL:
    case F_PSTAR:
        return type >= 0 && type < EMITTERS;
    case F_P1:
        return type == 1;
    case F_P0P2:
        return type == 0 || type == 2;
    }
    return 0;
}

/* ---- what one handler saw ------------------------------------------------------ */

typedef struct {
    long long seq, count, first, last;
    int at; /* how many events the handler had seen before it */
} Notice;

typedef struct {
    int kind;
    int slow;
    int id;
    /* Written only by the thread delivering (one at a time). */
    long long *seqs;
    int n, cap;
    Notice *notices;
    int nn, ncap;
    int bad;        /* an event without a seq, or a notice without its numbers */
    int wrong_type; /* an event the filter does not take */
    /* Read by other threads. */
    atomic_llong progress; /* the highest seq seen or reported lost */
    atomic_int in_call;
    atomic_int concurrent;
    atomic_int freed;
    atomic_int freed_in_call;
    atomic_int called_after_free;
    int freed_at_removal; /* freecb had run when virConnectRemoveEventHandler returned */
    int removed;
} Track;

static Track *track_new(int kind, int slow)
{
    Track *t = calloc(1, sizeof *t);
    t->kind = kind;
    t->slow = slow;
    t->id = -1;
    atomic_init(&t->progress, 0);
    return t;
}

static void track_delete(Track *t)
{
    free(t->seqs);
    free(t->notices);
    free(t);
}

static void track_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Track *t = arg;
    (void)conn;
    if (atomic_load(&t->freed))
        atomic_fetch_add(&t->called_after_free, 1);
    if (atomic_fetch_add(&t->in_call, 1) != 0)
        atomic_fetch_add(&t->concurrent, 1);
    if (strncmp(eventXML, "<event type=\"events-lost\" ", 26) == 0) {
        if (t->nn == t->ncap) {
            t->ncap = t->ncap ? t->ncap * 2 : 16;
            t->notices = realloc(t->notices, t->ncap * sizeof *t->notices);
        }
        Notice *no = &t->notices[t->nn++];
        no->seq = attr_num(eventXML, "seq");
        no->count = attr_num(eventXML, "count");
        no->first = attr_num(eventXML, "first-seq");
        no->last = attr_num(eventXML, "last-seq");
        no->at = t->n;
        if (no->count < 1 || no->first < 1 || no->last < no->first)
            t->bad++;
        if (no->last > atomic_load(&t->progress))
            atomic_store(&t->progress, no->last);
    } else {
        long long seq = seq_of(eventXML);
        const char *p = strstr(eventXML, "type=\"p");
        int type = p ? atoi(p + 7) : -1;
        if (!accepts(t->kind, type))
            t->wrong_type++;
        if (seq <= 0) {
            t->bad++;
        } else {
            if (t->n == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 256;
                t->seqs = realloc(t->seqs, t->cap * sizeof *t->seqs);
            }
            t->seqs[t->n++] = seq;
            if (seq > atomic_load(&t->progress))
                atomic_store(&t->progress, seq);
        }
    }
    if (t->slow)
        sleep_us(20);
    atomic_fetch_sub(&t->in_call, 1);
}

static void track_free(void *arg)
{
    Track *t = arg;
    if (atomic_load(&t->in_call))
        atomic_fetch_add(&t->freed_in_call, 1);
    atomic_fetch_add(&t->freed, 1);
}

/* ---- the emitters ---------------------------------------------------------------- */

typedef struct {
    virConnectPtr conn;
    pthread_barrier_t *start;
    int index;
    int failures;
    int seqs[PER_EMITTER];
} Emitter;

static void *emitter(void *arg)
{
    Emitter *e = arg;
    char xml[128];
    pthread_barrier_wait(e->start);
    for (int i = 0; i < per_emitter; i++) {
        snprintf(xml, sizeof xml, "<event type=\"p%d\"><n>%d</n></event>", e->index, i);
        int seq = virConnectEmitEvent(e->conn, xml);
        if (seq <= 0 || virGetLastErrorCode() != VIR_ERR_OK)
            e->failures++;
        e->seqs[i] = seq;
    }
    return NULL;
}

/* ---- the thread that adds and removes handlers --------------------------------- */

typedef struct {
    virConnectPtr conn;
    atomic_int *stop;
    Track *tracks[MAX_DYNAMIC];
    int n;
    int add_failures;
    int remove_failures;
} Churn;

static void *churner(void *arg)
{
    Churn *c = arg;
    enum { LIVE = 4 };
    int live[LIVE], nlive = 0;
    /* At least a few rounds, however the threads are scheduled. */
    while (c->n < MAX_DYNAMIC && (c->n < 16 || !atomic_load(c->stop))) {
        int kind = c->n % N_FILTERS;
        Track *t = track_new(kind, 0);
        c->tracks[c->n] = t;
        t->id = virConnectAddEventHandlerFull(c->conn, filter_vectors[kind], track_handler, t,
                                              track_free, 0);
        if (t->id < 0) {
            c->add_failures++;
        } else {
            if (nlive == LIVE) {
                /* Remove the oldest, or now and then the newest but one. */
                int victim = (c->n % 3 == 0) ? LIVE - 1 : 0;
                Track *v = c->tracks[live[victim]];
                if (virConnectRemoveEventHandler(c->conn, v->id) != 0)
                    c->remove_failures++;
                v->removed = 1;
                v->freed_at_removal = atomic_load(&v->freed);
                for (int i = victim; i < LIVE - 1; i++)
                    live[i] = live[i + 1];
                nlive--;
            }
            live[nlive++] = c->n;
        }
        c->n++;
        sleep_us(200);
    }
    /* The last few stay: virConnectClose removes them. */
    return NULL;
}

/* ---- checks ------------------------------------------------------------------------ */

/* Checks what `t` saw. `type_of[seq]` is the emitter of each seq. With `whole`,
 * the handler was there from the start: it must account for every seq of its
 * types in 1..total; otherwise for those between the first and last it saw.
 * Without `lossy`, nothing may be missing, and no notice may come. */
static void check_track(const Track *t, const signed char *type_of, int whole, int lossy,
                        const char *what)
{
    case_begin();
    CHECK_INT(t->bad, 0);
    CHECK_INT(t->wrong_type, 0);
    CHECK_INT(atomic_load(&t->concurrent), 0);
    CHECK_INT(atomic_load(&t->freed), 1);
    CHECK_INT(atomic_load(&t->freed_in_call), 0);
    CHECK_INT(atomic_load(&t->called_after_free), 0);

    /* Strictly increasing: in seq order, no duplicate. */
    int not_increasing = 0, out_of_range = 0;
    for (int i = 0; i < t->n; i++) {
        if (t->seqs[i] < 1 || t->seqs[i] > total)
            out_of_range++;
        if (i > 0 && t->seqs[i] <= t->seqs[i - 1])
            not_increasing++;
    }
    CHECK_INT(not_increasing, 0);
    CHECK_INT(out_of_range, 0);
    if (not_increasing || out_of_range) {
        case_end(what);
        return;
    }

    /* Each notice: seq 0, a run of dropped seqs that lies in a gap between
     * the events around it. */
    int bad_notice = 0;
    for (int k = 0; k < t->nn; k++) {
        const Notice *no = &t->notices[k];
        if (no->seq != 0 || no->count != no->last - no->first + 1 || no->last > total)
            bad_notice++;
        if (no->at > 0 && t->seqs[no->at - 1] >= no->first)
            bad_notice++;
        if (no->at < t->n && t->seqs[no->at] <= no->last)
            bad_notice++;
        if (k > 0 && t->notices[k - 1].last >= no->first)
            bad_notice++;
    }
    CHECK_INT(bad_notice, 0);
    if (!lossy)
        CHECK_INT(t->nn, 0);

    /* Every seq of its types in range is seen or reported lost. */
    unsigned char *mark = calloc(total + 1, 1);
    for (int i = 0; i < t->n; i++)
        mark[t->seqs[i]] = 1;
    for (int k = 0; k < t->nn; k++)
        for (long long s = t->notices[k].first; s <= t->notices[k].last && s <= total; s++)
            if (s >= 1 && !mark[s])
                mark[s] = 2;
    long long from = whole ? 1 : (t->n ? t->seqs[0] : 1);
    long long to = whole ? total : (t->n ? t->seqs[t->n - 1] : 0);
    int missing = 0;
    for (long long s = from; s <= to; s++)
        if (accepts(t->kind, type_of[s]) && !mark[s])
            missing++;
    CHECK_INT(missing, 0);
    free(mark);
    case_end(what);
}

/* ---- one run ------------------------------------------------------------------------- */

typedef struct {
    int lossy;
    int dynamic;     /* dynamic handlers made */
    int dynamic_saw; /* of which saw at least one event */
    long long lost;  /* events the NULL-filter handler was told it lost */
    int notices;
    double seconds;
} Outcome;

static void run(int lossy, Outcome *out)
{
    per_emitter = lossy ? LOSSY_PER_EMITTER : PER_EMITTER;
    total = EMITTERS * per_emitter;
    double start = now_s();
    memset(out, 0, sizeof *out);
    out->lossy = lossy;
    virConnectPtr conn = virConnectOpen(NULL);
    CHECK(conn != NULL);
    if (lossy)
        CHECK_INT(virConnectSetEventQueueLimit(conn, LIMIT), 0);

    /* Long-lived handlers, one per filter; the NULL one is slow when lossy. */
    Track *longlived[N_FILTERS];
    for (int k = 0; k < N_FILTERS; k++) {
        longlived[k] = track_new(k, lossy && k == F_ALL);
        longlived[k]->id = virConnectAddEventHandlerFull(conn, filter_vectors[k], track_handler,
                                                         longlived[k], track_free, 0);
        CHECK(longlived[k]->id >= 0);
    }
    CHECK_INT(virConnectStartEventThread(conn), 0);

    atomic_int stop;
    atomic_init(&stop, 0);
    Churn *churn = calloc(1, sizeof *churn);
    churn->conn = conn;
    churn->stop = &stop;
    pthread_t churn_thread;
    CHECK_INT(pthread_create(&churn_thread, NULL, churner, churn), 0);

    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, EMITTERS);
    Emitter *emitters = calloc(EMITTERS, sizeof *emitters);
    pthread_t threads[EMITTERS];
    for (int i = 0; i < EMITTERS; i++) {
        emitters[i].conn = conn;
        emitters[i].start = &barrier;
        emitters[i].index = i;
        CHECK_INT(pthread_create(&threads[i], NULL, emitter, &emitters[i]), 0);
    }
    for (int i = 0; i < EMITTERS; i++)
        pthread_join(threads[i], NULL);
    atomic_store(&stop, 1);
    pthread_join(churn_thread, NULL);
    pthread_barrier_destroy(&barrier);

    /* Every emit succeeded; one thread's seqs increase; together they are
     * 1..total, once each. */
    signed char *type_of = malloc(total + 1);
    memset(type_of, -1, total + 1);
    int bad = 0, not_increasing = 0;
    for (int i = 0; i < EMITTERS; i++) {
        CHECK_INT(emitters[i].failures, 0);
        for (int j = 0; j < per_emitter; j++) {
            int s = emitters[i].seqs[j];
            if (s < 1 || s > total || type_of[s] != -1)
                bad++;
            else
                type_of[s] = (signed char)i;
            if (j > 0 && s <= emitters[i].seqs[j - 1])
                not_increasing++;
        }
    }
    CHECK_INT(bad, 0);
    CHECK_INT(not_increasing, 0);
    CHECK_INT(churn->add_failures, 0);
    CHECK_INT(churn->remove_failures, 0);

    /* Wait (at most 60 s) until each long-lived handler has its last event, or
     * (lossy) the NULL-filter one has it or was told it was lost. */
    long long want_last[N_FILTERS] = {0};
    for (int s = 1; s <= total; s++)
        for (int k = 0; k < N_FILTERS; k++)
            if (type_of[s] >= 0 && accepts(k, type_of[s]))
                want_last[k] = s;
    double deadline = now_s() + 60;
    for (;;) {
        int done = 1;
        for (int k = 0; k < N_FILTERS; k++)
            if ((!lossy || k == F_ALL) && atomic_load(&longlived[k]->progress) < want_last[k])
                done = 0;
        if (done || now_s() > deadline)
            break;
        sleep_us(1000);
    }
    CHECK(atomic_load(&longlived[F_ALL]->progress) >= total);
    CHECK_INT(virConnectStopEventThread(conn), 0);
    /* What the thread left, if anything, goes on this thread now. */
    for (int i = 0; i < 1000 && virDeliverEvents(conn) > 0; i++) {
    }
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virConnectClose(conn), 0);

    /* Long-lived: everything of their types, or (lossy) accounted for. */
    char what[128];
    for (int k = 0; k < N_FILTERS; k++) {
        const Track *t = longlived[k];
        snprintf(what, sizeof what, "%s run, long-lived handler %s", lossy ? "lossy" : "default",
                 filter_names[k]);
        check_track(t, type_of, 1, lossy, what);
        if (!lossy) {
            int expect = 0;
            for (int s = 1; s <= total; s++)
                expect += accepts(k, type_of[s]);
            CHECK_INT(t->n, expect);
        }
    }
    /* The NULL-filter one: what it missed is exactly what the notices count. */
    const Track *all = longlived[F_ALL];
    long long counted = 0;
    for (int k = 0; k < all->nn; k++)
        counted += all->notices[k].count;
    CHECK_INT(all->n + counted, total);
    out->lost = counted;
    out->notices = all->nn;
    if (lossy)
        CHECK(all->nn >= 1); /* the run did lose events */

    /* Dynamic handlers. Those removed had their freecb run at removal: by the
     * time virConnectRemoveEventHandler returned (docs/api.md section 3). */
    out->dynamic = churn->n;
    CHECK(churn->n >= 16);
    int removed = 0, freed_late = 0;
    for (int i = 0; i < churn->n; i++) {
        if (churn->tracks[i]->removed) {
            removed++;
            if (churn->tracks[i]->freed_at_removal != 1)
                freed_late++;
        }
    }
    CHECK_INT(freed_late, 0);
    if (freed_late)
        fprintf(stderr, "  ^ %d of %d removed handlers had their freecb run after "
                        "virConnectRemoveEventHandler returned\n", freed_late, removed);
    for (int i = 0; i < churn->n; i++) {
        Track *t = churn->tracks[i];
        snprintf(what, sizeof what, "%s run, dynamic handler #%d %s", lossy ? "lossy" : "default", i,
                 filter_names[t->kind]);
        check_track(t, type_of, 0, lossy, what);
        if (t->n > 0)
            out->dynamic_saw++;
        track_delete(t);
    }
    for (int k = 0; k < N_FILTERS; k++)
        track_delete(longlived[k]);
    free(churn);
    free(emitters);
    free(type_of);
    out->seconds = now_s() - start;
}

int main(void)
{
    Outcome o;
    run(0, &o);
    printf("default limit, %d events: %d dynamic handlers (%d saw events), %lld lost, %.2f s\n", total,
           o.dynamic, o.dynamic_saw, o.lost, o.seconds);
    run(1, &o);
    printf("limit %d, slow handler, %d events: %d dynamic handlers (%d saw events), %lld lost in %d notices, "
           "%.2f s\n",
           LIMIT, total, o.dynamic, o.dynamic_saw, o.lost, o.notices, o.seconds);
    return check_done();
}
