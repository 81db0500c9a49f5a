/* Threads (docs/api.md section 9): concurrent emitters with one delivering thread,
 * removal that waits for a running call, a delivery that does not block on
 * another, and the per-thread last error. Only the main thread uses CHECK:
 * other threads record what they saw, and main checks it after joining. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "check.h"

/* Waits until *flag is nonzero, for at most 20 s; returns whether it is. */
static int wait_for(atomic_int *flag)
{
    for (int i = 0; i < 20000; i++) {
        if (atomic_load(flag))
            return 1;
        sleep_ms(1);
    }
    return atomic_load(flag) != 0;
}

/* ---- concurrent emitters -------------------------------------------------- */

#define EMITTERS 4
#define PER_EMITTER 2000
#define TOTAL (EMITTERS * PER_EMITTER)

static virConnectPtr shared;
static atomic_int emitters_done;

typedef struct {
    int index;
    int failures;
    int seqs[PER_EMITTER];
} Emitter;

static void *emitter(void *arg)
{
    Emitter *e = arg;
    char xml[128];
    for (int i = 0; i < PER_EMITTER; i++) {
        snprintf(xml, sizeof xml, "<event type=\"t%d\"><n>%d</n></event>", e->index, i);
        int seq = virConnectEmitEvent(shared, xml);
        if (seq <= 0 || virGetLastErrorCode() != VIR_ERR_OK)
            e->failures++;
        e->seqs[i] = seq;
    }
    atomic_fetch_add(&emitters_done, 1);
    return NULL;
}

/* What the delivering (main) thread's handler saw. */
typedef struct {
    int count;
    long long last_seq;
    int not_increasing;
    int bad_seq;
    int duplicates;
    int out_of_order; /* an emitter's events not in its emission order */
    int next_n[EMITTERS];
    unsigned char seen[TOTAL + 1];
} Order;

static void order_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Order *o = arg;
    (void)conn;
    long long seq = seq_of(eventXML);
    o->count++;
    if (seq <= o->last_seq)
        o->not_increasing++;
    o->last_seq = seq;
    if (seq < 1 || seq > TOTAL) {
        o->bad_seq++;
        return;
    }
    if (o->seen[seq]++)
        o->duplicates++;
    int t = -1, n = -1;
    const char *p = strstr(eventXML, "type=\"t");
    const char *q = strstr(eventXML, "<n>");
    if (p && q) {
        t = atoi(p + 7);
        n = atoi(q + 3);
    }
    if (t < 0 || t >= EMITTERS || n != o->next_n[t])
        o->out_of_order++;
    else
        o->next_n[t]++;
}

static void concurrent_emitters(void)
{
    shared = virConnectOpen(NULL);
    Order *all = calloc(1, sizeof *all);
    Order *zero = calloc(1, sizeof *zero);
    const char *const f0[] = {"t0", NULL};
    CHECK(virConnectAddEventHandler(shared, NULL, order_handler, all) >= 0);
    CHECK(virConnectAddEventHandler(shared, f0, order_handler, zero) >= 0);

    Emitter *emitters = calloc(EMITTERS, sizeof *emitters);
    pthread_t threads[EMITTERS];
    atomic_store(&emitters_done, 0);
    for (int i = 0; i < EMITTERS; i++) {
        emitters[i].index = i;
        CHECK_INT(pthread_create(&threads[i], NULL, emitter, &emitters[i]), 0);
    }
    long long calls = 0;
    int failures = 0, rounds = 0;
    while (atomic_load(&emitters_done) < EMITTERS) {
        int n = virDeliverEvents(shared);
        if (n < 0)
            failures++;
        else
            calls += n;
        rounds++;
        if (n == 0)
            sched_yield();
    }
    for (int i = 0; i < EMITTERS; i++)
        pthread_join(threads[i], NULL);
    /* What was emitted last. */
    int n = virDeliverEvents(shared);
    CHECK(n >= 0);
    calls += n;
    CHECK_INT(virDeliverEvents(shared), 0);
    CHECK_INT(failures, 0);
    CHECK_INT(calls, TOTAL + PER_EMITTER);

    /* Every emit succeeded, and the seqs handed out are 1..TOTAL, once each. */
    unsigned char *given = calloc(TOTAL + 1, 1);
    int bad = 0;
    for (int i = 0; i < EMITTERS; i++) {
        CHECK_INT(emitters[i].failures, 0);
        for (int j = 0; j < PER_EMITTER; j++) {
            int s = emitters[i].seqs[j];
            if (s < 1 || s > TOTAL || given[s]++)
                bad++;
            /* One thread's emits get increasing seqs. */
            if (j > 0 && s <= emitters[i].seqs[j - 1])
                bad++;
        }
    }
    CHECK_INT(bad, 0);
    free(given);

    /* The NULL-filter handler saw every seq once, strictly increasing. */
    CHECK_INT(all->count, TOTAL);
    CHECK_INT(all->not_increasing, 0);
    CHECK_INT(all->bad_seq, 0);
    CHECK_INT(all->duplicates, 0);
    CHECK_INT(all->out_of_order, 0);
    int missing = 0;
    for (int s = 1; s <= TOTAL; s++)
        if (all->seen[s] != 1)
            missing++;
    CHECK_INT(missing, 0);
    for (int i = 0; i < EMITTERS; i++)
        CHECK_INT(all->next_n[i], PER_EMITTER);

    /* The "t0" handler saw exactly emitter 0's events, in order. */
    CHECK_INT(zero->count, PER_EMITTER);
    CHECK_INT(zero->not_increasing, 0);
    CHECK_INT(zero->duplicates, 0);
    CHECK_INT(zero->out_of_order, 0);
    CHECK_INT(zero->next_n[0], PER_EMITTER);
    int wrong = 0;
    for (int j = 0; j < PER_EMITTER; j++)
        if (zero->seen[emitters[0].seqs[j]] != 1)
            wrong++;
    CHECK_INT(wrong, 0);
    printf("concurrent emitters: %d delivery rounds\n", rounds);

    CHECK_INT(virConnectClose(shared), 0);
    free(emitters);
    free(all);
    free(zero);
}

/* ---- removal waits for a running call ------------------------------------ */


typedef struct {
    virConnectPtr conn;
    Slow *slow;
    int id;
    int result;
    int error;
    int waited;       /* the handler was seen running before the call */
    int in_call_after;
    int returned_after;
} Job;

static void *deliverer(void *arg)
{
    Job *job = arg;
    job->result = virDeliverEvents(job->conn);
    job->error = virGetLastErrorCode();
    return NULL;
}

static void *remover(void *arg)
{
    Job *job = arg;
    job->waited = wait_for(&job->slow->in_call);
    job->result = virConnectRemoveEventHandler(job->conn, job->id);
    job->error = virGetLastErrorCode();
    job->in_call_after = atomic_load(&job->slow->in_call);
    job->returned_after = atomic_load(&job->slow->returned);
    return NULL;
}

static void removal_waits(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Slow slow = {0};
    int id = virConnectAddEventHandlerFull(conn, NULL, slow_handler, &slow, slow_free, 0);
    CHECK(id >= 0);
    CHECK(virConnectEmitEvent(conn, "<event type=\"slow\"/>") > 0);

    Job a = {conn, &slow, id, -2, -2, 0, 0, 0};
    Job b = {conn, &slow, id, -2, -2, 0, 0, 0};
    pthread_t ta, tb;
    CHECK_INT(pthread_create(&ta, NULL, deliverer, &a), 0);
    CHECK_INT(pthread_create(&tb, NULL, remover, &b), 0);
    pthread_join(tb, NULL);
    pthread_join(ta, NULL);

    CHECK_INT(b.waited, 1);
    CHECK_INT(b.result, 0);
    CHECK_INT(b.error, VIR_ERR_OK);
    /* The removal returned only once the call had. */
    CHECK_INT(b.in_call_after, 0);
    CHECK_INT(b.returned_after, 1);
    CHECK_INT(a.result, 1);
    CHECK_INT(a.error, VIR_ERR_OK);
    CHECK_INT(atomic_load(&slow.calls), 1);
    CHECK_INT(atomic_load(&slow.freed), 1);
    CHECK_INT(atomic_load(&slow.freed_during_call), 0);

    /* Never called again. */
    CHECK(virConnectEmitEvent(conn, "<event type=\"slow\"/>") > 0);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(atomic_load(&slow.calls), 1);
    CHECK_INT(virConnectRemoveEventHandler(conn, id), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "");
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&slow.freed), 1);
}

/* ---- a second delivery does not block ------------------------------------- */

/* Runs until told to go on (or 10 s pass): whoever tells it is not blocked. */
static void gate_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Slow *s = arg;
    (void)conn;
    (void)eventXML;
    atomic_fetch_add(&s->calls, 1);
    atomic_store(&s->in_call, 1);
    int i;
    for (i = 0; i < 10000 && !atomic_load(&s->release); i++)
        sleep_ms(1);
    if (!atomic_load(&s->release))
        atomic_store(&s->timed_out, 1);
    atomic_store(&s->in_call, 0);
    atomic_fetch_add(&s->returned, 1);
}

typedef struct {
    virConnectPtr conn;
    Slow *gate;
    int waited;
    int emitted;
    int emit_error;
    int delivered;
    int deliver_error;
    int in_call_after;
} Second;

static void *second_deliverer(void *arg)
{
    Second *s = arg;
    s->waited = wait_for(&s->gate->in_call);
    s->emitted = virConnectEmitEvent(s->conn, "<event type=\"late\"/>");
    s->emit_error = virGetLastErrorCode();
    s->delivered = virDeliverEvents(s->conn);
    s->deliver_error = virGetLastErrorCode();
    s->in_call_after = atomic_load(&s->gate->in_call);
    atomic_store(&s->gate->release, 1);
    return NULL;
}

typedef struct {
    Seen seen;
    atomic_int calls;
} Count;

static void count_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Count *c = arg;
    seen_handler(conn, eventXML, &c->seen);
    atomic_fetch_add(&c->calls, 1);
}

static void second_delivery_returns_zero(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Slow gate = {0};
    Count witness = {0};
    const char *const fg[] = {"gate", NULL};
    CHECK(virConnectAddEventHandlerFull(conn, fg, gate_handler, &gate, slow_free, 0) >= 0);
    CHECK(virConnectAddEventHandler(conn, NULL, count_handler, &witness) >= 0);
    int s1 = virConnectEmitEvent(conn, "<event type=\"gate\"/>");
    CHECK(s1 > 0);

    Job a = {conn, &gate, -1, -2, -2, 0, 0, 0};
    Second b = {conn, &gate, 0, -2, -2, -2, -2, -2};
    pthread_t ta, tb;
    CHECK_INT(pthread_create(&ta, NULL, deliverer, &a), 0);
    CHECK_INT(pthread_create(&tb, NULL, second_deliverer, &b), 0);
    pthread_join(tb, NULL);
    pthread_join(ta, NULL);

    CHECK_INT(b.waited, 1);
    CHECK_INT(b.emitted, s1 + 1);
    CHECK_INT(b.emit_error, VIR_ERR_OK);
    CHECK_INT(b.delivered, 0);
    CHECK_INT(b.deliver_error, VIR_ERR_OK);
    CHECK_INT(b.in_call_after, 1);
    CHECK_INT(atomic_load(&gate.timed_out), 0);
    /* A delivered the gate event to both handlers, not the late one. */
    CHECK_INT(a.result, 2);
    CHECK_INT(a.error, VIR_ERR_OK);
    CHECK_INT(atomic_load(&gate.calls), 1);
    CHECK_INT(atomic_load(&witness.calls), 1);
    /* The late event comes at the next delivery. */
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(witness.seen.count, 2);
    if (witness.seen.count == 2) {
        CHECK_CONTAINS(witness.seen.xml[1], "type=\"late\"");
        CHECK_INT(seq_of(witness.seen.xml[1]), s1 + 1);
    }
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&gate.freed), 1);
    CHECK_INT(atomic_load(&gate.freed_during_call), 0);
    seen_clear(&witness.seen);
}

/* ---- the last error is per thread ----------------------------------------- */

typedef struct {
    virConnectPtr conn;
    pthread_barrier_t *barrier;
    int initial_code;
    int failed_code;
    char failed_message[256];
    int later_code;
    char later_message[256];
} ErrJob;

static void *error_thread(void *arg)
{
    ErrJob *j = arg;
    /* Main has failed already: a new thread has no error. */
    j->initial_code = virGetLastErrorCode();
    virDomainPtr dom = virDomainLookupByName(j->conn, "nosuch-domain");
    if (dom)
        virDomainFree(dom);
    j->failed_code = virGetLastErrorCode();
    snprintf(j->failed_message, sizeof j->failed_message, "%s", virGetLastErrorMessage());
    pthread_barrier_wait(j->barrier); /* 1: both threads have failed */
    pthread_barrier_wait(j->barrier); /* 2: main has succeeded meanwhile */
    j->later_code = virGetLastErrorCode();
    snprintf(j->later_message, sizeof j->later_message, "%s", virGetLastErrorMessage());
    pthread_barrier_wait(j->barrier); /* 3: done reading */
    /* Succeed here, while main still has its failure. */
    virResetLastError();
    pthread_barrier_wait(j->barrier); /* 4 */
    return NULL;
}

static void last_error_per_thread(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    ErrJob j = {conn, &barrier, -2, -2, "", -2, ""};

    CHECK_INT(virConnectRemoveEventHandler(conn, 777), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "777");
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, error_thread, &j), 0);
    pthread_barrier_wait(&barrier); /* 1 */
    /* The other thread's failure did not touch ours. */
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "777");
    CHECK_INT(j.initial_code, VIR_ERR_OK);
    CHECK_INT(j.failed_code, VIR_ERR_NO_DOMAIN);
    CHECK_CONTAINS(j.failed_message, "nosuch-domain");
    /* Succeed here. */
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    pthread_barrier_wait(&barrier); /* 2 */
    pthread_barrier_wait(&barrier); /* 3 */
    CHECK_INT(j.later_code, VIR_ERR_NO_DOMAIN);
    CHECK_CONTAINS(j.later_message, "nosuch-domain");
    /* Fail here again, then let the other thread reset its own. */
    CHECK_INT(virConnectSetEventQueueLimit(conn, 0), -1);
    pthread_barrier_wait(&barrier); /* 4 */
    pthread_join(t, NULL);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "maxEvents");
    pthread_barrier_destroy(&barrier);
    CHECK_INT(virConnectClose(conn), 0);
}

int main(void)
{
    concurrent_emitters();
    removal_waits();
    second_delivery_returns_zero();
    last_error_per_thread();
    return check_done();
}
