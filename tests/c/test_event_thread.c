/* The event thread (virevent.h): no thread unless
 * asked, one thread per virConnectStartEventThread, handlers running on it as
 * events arrive, stopping and closing, what handlers on it may and may not do,
 * and removal that waits for a call running on it. Threads are counted in
 * /proc/self/task. Only the main thread uses CHECK: handlers record what they
 * saw, and main checks it once it has waited for them (with deadlines). */
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static pthread_t main_thread;

/* Waits until *flag is at least `want`, for at most `ms`; returns whether it is. */
static int wait_flag_ms(atomic_int *flag, int want, long ms)
{
    long long deadline = now_ms() + ms;
    while (atomic_load(flag) < want) {
        if (now_ms() >= deadline)
            return atomic_load(flag) >= want;
        sleep_ms(1);
    }
    return 1;
}

/* The same, for at most 3 s. */
static int wait_flag(atomic_int *flag, int want)
{
    return wait_flag_ms(flag, want, 3000);
}

/* ---- a thread-safe record of handler calls ---------------------------------- */

#define LOG_MAX 512

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int count;
    int on_main;        /* calls made on the main thread */
    int threads_differ; /* calls on another thread than the first call's */
    pthread_t first_thread;
    long long seq[LOG_MAX];
    char type[LOG_MAX][40];
    char state[LOG_MAX][16]; /* new-state, for domain events */
    atomic_int freed;
} Log;

static void log_init(Log *log)
{
    memset(log, 0, sizeof *log);
    pthread_mutex_init(&log->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&log->cond, &attr);
    pthread_condattr_destroy(&attr);
}

static void log_destroy(Log *log)
{
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cond);
}

/* Copies the text between `open` and the next '<' in xml into out. */
static void between(const char *xml, const char *open, char *out, size_t size)
{
    out[0] = '\0';
    const char *p = strstr(xml, open);
    if (!p)
        return;
    p += strlen(open);
    size_t n = 0;
    while (p[n] && p[n] != '<' && p[n] != '"' && n + 1 < size) {
        out[n] = p[n];
        n++;
    }
    out[n] = '\0';
}

static void log_add(Log *log, const char *xml)
{
    pthread_mutex_lock(&log->mu);
    pthread_t self = pthread_self();
    if (pthread_equal(self, main_thread))
        log->on_main++;
    if (log->count == 0)
        log->first_thread = self;
    else if (!pthread_equal(self, log->first_thread))
        log->threads_differ++;
    if (log->count < LOG_MAX) {
        log->seq[log->count] = seq_of(xml);
        between(xml, "type=\"", log->type[log->count], sizeof log->type[0]);
        between(xml, "<new-state>", log->state[log->count], sizeof log->state[0]);
    }
    log->count++;
    pthread_cond_broadcast(&log->cond);
    pthread_mutex_unlock(&log->mu);
}

static void log_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    (void)conn;
    log_add(arg, eventXML);
}

static void log_free(void *arg)
{
    atomic_fetch_add(&((Log *)arg)->freed, 1);
}

/* Waits, for at most 3 s, until the log has `want` calls; returns its count. */
static int log_wait(Log *log, int want)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 3;
    pthread_mutex_lock(&log->mu);
    while (log->count < want) {
        if (pthread_cond_timedwait(&log->cond, &log->mu, &deadline) != 0)
            break;
    }
    int n = log->count;
    pthread_mutex_unlock(&log->mu);
    return n;
}

static int log_count(Log *log)
{
    pthread_mutex_lock(&log->mu);
    int n = log->count;
    pthread_mutex_unlock(&log->mu);
    return n;
}

/* Whether the log's seqs, from index `from`, strictly increase. */
static int log_increasing(Log *log, int from)
{
    pthread_mutex_lock(&log->mu);
    int ok = 1;
    for (int i = from + 1; i < log->count && i < LOG_MAX; i++)
        if (log->seq[i] <= log->seq[i - 1])
            ok = 0;
    pthread_mutex_unlock(&log->mu);
    return ok;
}

/* ---- no thread unless asked ------------------------------------------------- */

/* Reads from a blocking stream until `lines` newlines came, or 3 s passed;
 * returns how many came. */
static int read_lines(int fd, int lines)
{
    char buf[4096];
    int got = 0;
    long long deadline = now_ms() + 3000;
    while (got < lines && now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) != 1)
            continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == '\n')
                got++;
    }
    return got;
}

static void no_thread_unless_asked(void)
{
    case_begin();
    int max = count_threads();
    CHECK_INT(max, 1);
#define NOTE()                              \
    do {                                    \
        int n_ = count_threads();           \
        if (n_ != 1)                        \
            fprintf(stderr, "%s:%d: %d threads\n", __FILE__, __LINE__, n_); \
        if (n_ > max)                       \
            max = n_;                       \
    } while (0)

    virConnectPtr conn = virConnectOpen(NULL);
    CHECK(conn != NULL);
    NOTE();
    Rec a = {0}, b = {0};
    const char *const fd_[] = {"domain-*", NULL};
    int ida = virConnectAddEventHandlerFull(conn, NULL, rec_handler, &a, rec_free, 0);
    int idb = virConnectAddEventHandlerFull(conn, fd_, rec_handler, &b, rec_free, 0);
    CHECK(ida >= 0);
    CHECK(idb >= 0);
    NOTE();
    int fd = virConnectGetEventFD(conn);
    CHECK(fd >= 0);
    NOTE();
    int stream = virConnectOpenEventStream(conn, NULL, 0);
    CHECK(stream >= 0);
    NOTE();
    emit(conn, "x");
    emit(conn, "y");
    NOTE();
    struct pollfd p = {fd, POLLIN, 0};
    CHECK_INT(poll(&p, 1, 1000), 1);
    NOTE();
    CHECK_INT(virDeliverEvents(conn), 2);
    NOTE();
    CHECK_INT(read_lines(stream, 2), 2);
    NOTE();

    virDomainPtr dom = virDomainLookupByName(conn, "test");
    CHECK(dom != NULL);
    CHECK_INT(virDomainSuspend(dom), 0);
    CHECK_INT(virDomainResume(dom), 0);
    CHECK_INT(virDomainShutdown(dom), 0);
    CHECK_INT(virDomainCreate(dom), 0);
    CHECK_INT(virDomainDestroy(dom), 0);
    NOTE();
    CHECK_INT(virDeliverEvents(conn), 5 + 5);
    CHECK_INT(read_lines(stream, 5), 5);
    NOTE();
    CHECK_INT(virConnectSetEventQueueLimit(conn, 3), 0);
    for (int i = 0; i < 5; i++)
        emit(conn, "z");
    CHECK_INT(virDeliverEvents(conn), 3 + 2); /* 3 to a, events-lost to a and b */
    NOTE();
    CHECK_INT(virConnectRemoveEventHandler(conn, idb), 0);
    CHECK_INT(b.freed, 1);
    NOTE();
    CHECK_INT(virDomainFree(dom), 0);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(a.freed, 1);
    NOTE();
    /* The stream ended with the connection. */
    char buf[4096];
    ssize_t n;
    while ((n = read(stream, buf, sizeof buf)) > 0) {
    }
    CHECK_INT(n, 0);
    close(stream);

    /* An empty host, and several connections at once. */
    virConnectPtr e = virConnectOpen("test:///empty");
    virConnectPtr f = virConnectOpen("test:///default");
    CHECK(e != NULL);
    CHECK(f != NULL);
    CHECK(virConnectAddEventHandler(e, NULL, rec_handler, &a) >= 0);
    emit(e, "x");
    CHECK_INT(virDeliverEvents(e), 1);
    CHECK(virConnectGetEventFD(f) >= 0);
    NOTE();
    CHECK_INT(virConnectClose(e), 0);
    CHECK_INT(virConnectClose(f), 0);
    NOTE();
    CHECK_INT(max, 1);
#undef NOTE
    seen_clear(&a.seen);
    seen_clear(&b.seen);
    case_end("no thread unless asked");
}

/* ---- starting, delivering, stopping ----------------------------------------- */

static void start_and_stop(void)
{
    case_begin();
    CHECK_INT(count_threads(), 1);
    virConnectPtr conn = virConnectOpen(NULL);
    Log log;
    log_init(&log);
    CHECK(virConnectAddEventHandlerFull(conn, NULL, log_handler, &log, log_free, 0) >= 0);

    CHECK_INT(virConnectStartEventThread(conn), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(count_threads(), 2);

    /* Events arrive without anyone delivering, in seq order, on the thread. */
    int first = emit(conn, "a");
    for (int i = 1; i < 100; i++)
        emit(conn, i % 2 ? "b" : "a");
    CHECK_INT(log_wait(&log, 100), 100);
    CHECK_INT(log.on_main, 0);
    CHECK_INT(log.threads_differ, 0);
    CHECK(!pthread_equal(log.first_thread, main_thread));
    CHECK(log_increasing(&log, 0));
    CHECK_INT(log.seq[0], first);
    CHECK_INT(log.seq[99], first + 99);

    /* Starting twice. */
    CHECK_INT(virConnectStartEventThread(conn), -1);
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, "");
    CHECK_INT(count_threads(), 2);

    /* Stopping: back to one thread. */
    CHECK_INT(virConnectStopEventThread(conn), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(wait_threads(1), 1);
    CHECK_INT(virConnectStopEventThread(conn), -1);
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, "");
    CHECK_INT(count_threads(), 1);

    /* After stop, events reach handlers only through virDeliverEvents. */
    int fd = virConnectGetEventFD(conn);
    emit(conn, "after");
    emit(conn, "after");
    sleep_ms(30); /* room for a wrong delivery; the count below is what counts */
    CHECK_INT(log_count(&log), 100);
    struct pollfd p = {fd, POLLIN, 0};
    CHECK_INT(poll(&p, 1, 1000), 1);
    CHECK_INT(virDeliverEvents(conn), 2);
    CHECK_INT(log_count(&log), 102);
    CHECK_INT(log.on_main, 2);
    CHECK(log_increasing(&log, 0));
    CHECK_INT(virDeliverEvents(conn), 0);

    /* It can start again, and stop again. */
    CHECK_INT(virConnectStartEventThread(conn), 0);
    CHECK_INT(count_threads(), 2);
    emit(conn, "again");
    CHECK_INT(log_wait(&log, 103), 103);
    CHECK_INT(log.on_main, 2);
    CHECK_INT(virConnectStopEventThread(conn), 0);
    CHECK_INT(wait_threads(1), 1);

    /* Many starts and stops. */
    int bad = 0;
    for (int i = 0; i < 20; i++) {
        if (virConnectStartEventThread(conn) != 0)
            bad++;
        if (virConnectStopEventThread(conn) != 0)
            bad++;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(wait_threads(1), 1);

    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&log.freed), 1);
    log_destroy(&log);
    case_end("start and stop");
}

/* Events queued before the start are delivered by the thread; events left when
 * it stops wait for virDeliverEvents. */
static void queued_across_start(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Log log;
    log_init(&log);
    CHECK(virConnectAddEventHandler(conn, NULL, log_handler, &log) >= 0);
    emit(conn, "before");
    emit(conn, "before");
    CHECK_INT(virConnectStartEventThread(conn), 0);
    CHECK_INT(log_wait(&log, 2), 2);
    CHECK_INT(log.on_main, 0);
    CHECK_INT(virConnectStopEventThread(conn), 0);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(wait_threads(1), 1);
    log_destroy(&log);
    case_end("events queued before the start");
}

/* ---- virDeliverEvents returns 0 while the thread runs ----------------------- */

typedef struct {
    atomic_int in_call;
    atomic_int release;
    atomic_int calls;
    atomic_int timed_out;
} Gate;

/* On "gate": holds the thread until released (or 3 s pass). */
static void gate_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Gate *g = arg;
    (void)conn;
    (void)eventXML;
    atomic_fetch_add(&g->calls, 1);
    atomic_store(&g->in_call, 1);
    long long deadline = now_ms() + 3000;
    while (!atomic_load(&g->release) && now_ms() < deadline)
        sleep_ms(1);
    if (!atomic_load(&g->release))
        atomic_store(&g->timed_out, 1);
    atomic_store(&g->in_call, 0);
}

static void deliver_returns_zero(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Gate gate = {0};
    Log log;
    log_init(&log);
    const char *const fg[] = {"gate", NULL};
    CHECK(virConnectAddEventHandler(conn, fg, gate_handler, &gate) >= 0);
    CHECK(virConnectAddEventHandler(conn, NULL, log_handler, &log) >= 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    /* Nothing queued. */
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    emit(conn, "gate");
    CHECK(wait_flag(&gate.in_call, 1));
    /* The thread is busy; these are queued, and main may not deliver them. */
    for (int i = 0; i < 10; i++)
        emit(conn, "later");
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(virDeliverEvents(conn), 0);
    atomic_store(&gate.release, 1);
    CHECK_INT(log_wait(&log, 11), 11);
    CHECK_INT(log.on_main, 0);
    CHECK(log_increasing(&log, 0));
    CHECK_INT(atomic_load(&gate.calls), 1);
    CHECK_INT(atomic_load(&gate.timed_out), 0);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(wait_threads(1), 1);
    log_destroy(&log);
    case_end("virDeliverEvents returns 0 while the thread runs");
}

/* ---- what a handler on the thread may not do -------------------------------- */

typedef struct {
    atomic_int done;
    int stop_result, stop_error;
    int close_result, close_error;
    int start_result, start_error;
    pthread_t thread;
} Refused;

static void refused_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Refused *r = arg;
    (void)eventXML;
    r->thread = pthread_self();
    r->stop_result = virConnectStopEventThread(conn);
    r->stop_error = virGetLastErrorCode();
    r->close_result = virConnectClose(conn);
    r->close_error = virGetLastErrorCode();
    r->start_result = virConnectStartEventThread(conn);
    r->start_error = virGetLastErrorCode();
    atomic_store(&r->done, 1);
}

static void refused_on_thread(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Refused r = {0, -2, -2, -2, -2, -2, -2, main_thread};
    Log log;
    log_init(&log);
    const char *const fr[] = {"refuse", NULL};
    CHECK(virConnectAddEventHandler(conn, fr, refused_handler, &r) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, NULL, log_handler, &log, log_free, 0) >= 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    emit(conn, "refuse");
    CHECK(wait_flag(&r.done, 1));
    CHECK(!pthread_equal(r.thread, main_thread));
    CHECK_INT(r.stop_result, -1);
    CHECK_INT(r.stop_error, VIR_ERR_OPERATION_INVALID);
    CHECK_INT(r.close_result, -1);
    CHECK_INT(r.close_error, VIR_ERR_OPERATION_INVALID);
    CHECK_INT(r.start_result, -1);
    CHECK_INT(r.start_error, VIR_ERR_OPERATION_INVALID);

    /* The thread keeps running, and the connection stays open. */
    CHECK_INT(log_wait(&log, 1), 1);
    CHECK_INT(count_threads(), 2);
    emit(conn, "still");
    CHECK_INT(log_wait(&log, 2), 2);
    CHECK_INT(log.on_main, 0);
    CHECK_INT(atomic_load(&log.freed), 0);
    CHECK_INT(virConnectStopEventThread(conn), 0);
    CHECK_INT(wait_threads(1), 1);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&log.freed), 1);
    log_destroy(&log);
    case_end("stop, close and start from a handler on the thread");
}

/* ---- removal waits for a call running on the thread ------------------------- */


static void removal_waits(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Slow slow = {0};
    Log witness;
    log_init(&witness);
    int id = virConnectAddEventHandlerFull(conn, NULL, slow_handler, &slow, slow_free, 0);
    CHECK(id >= 0);
    CHECK(virConnectAddEventHandler(conn, NULL, log_handler, &witness) >= 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    emit(conn, "slow");
    CHECK(wait_flag(&slow.in_call, 1));
    CHECK_INT(virConnectRemoveEventHandler(conn, id), 0);
    /* The call had returned before the removal did. */
    CHECK_INT(atomic_load(&slow.in_call), 0);
    CHECK_INT(atomic_load(&slow.returned), 1);
    CHECK_INT(atomic_load(&slow.freed), 1);
    CHECK_INT(atomic_load(&slow.freed_during_call), 0);

    /* Never called again: the witness, added later, gets the next event, and
     * the removed handler would have come first. */
    CHECK_INT(log_wait(&witness, 1), 1);
    emit(conn, "slow");
    CHECK_INT(log_wait(&witness, 2), 2);
    CHECK_INT(atomic_load(&slow.calls), 1);
    CHECK_INT(virConnectRemoveEventHandler(conn, id), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "");
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&slow.freed), 1);
    CHECK_INT(wait_threads(1), 1);
    log_destroy(&witness);
    case_end("removal waits for a call on the thread");
}

/* The freecb runs at removal: once virConnectRemoveEventHandler has returned,
 * it has run, even while the thread goes on delivering the rest of the batch
 * (here held by a gate handler on the next event). */
static void freecb_at_removal(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Slow slow = {0};
    Gate gate = {0};
    const char *const fslow[] = {"slow", NULL};
    const char *const fg[] = {"gate", NULL};
    int id = virConnectAddEventHandlerFull(conn, fslow, slow_handler, &slow, slow_free, 0);
    CHECK(id >= 0);
    CHECK(virConnectAddEventHandler(conn, fg, gate_handler, &gate) >= 0);
    /* Queued before the start: one batch for the thread. */
    emit(conn, "slow");
    emit(conn, "gate");
    CHECK_INT(virConnectStartEventThread(conn), 0);
    CHECK(wait_flag(&slow.in_call, 1));
    CHECK_INT(virConnectRemoveEventHandler(conn, id), 0);
    CHECK_INT(atomic_load(&slow.returned), 1);
    CHECK_INT(atomic_load(&slow.freed), 1);
    CHECK_INT(atomic_load(&slow.freed_during_call), 0);
    CHECK(wait_flag(&gate.in_call, 1));
    atomic_store(&gate.release, 1);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&gate.timed_out), 0);
    CHECK_INT(atomic_load(&slow.calls), 1);
    CHECK_INT(atomic_load(&slow.freed), 1);
    CHECK_INT(wait_threads(1), 1);
    case_end("the freecb has run when the removal returns");
}

/* ---- close stops the thread --------------------------------------------------- */

static void close_stops_thread(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Log l1, l2, l3;
    log_init(&l1);
    log_init(&l2);
    log_init(&l3);
    const char *const fb[] = {"b", NULL};
    CHECK(virConnectAddEventHandlerFull(conn, NULL, log_handler, &l1, log_free, 0) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, fb, log_handler, &l2, log_free, 0) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, fb, log_handler, &l3, log_free, 0) >= 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    CHECK_INT(count_threads(), 2);
    emit(conn, "a");
    emit(conn, "b");
    CHECK_INT(log_wait(&l1, 2), 2);
    CHECK_INT(log_wait(&l2, 1), 1);
    CHECK_INT(log_wait(&l3, 1), 1);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(wait_threads(1), 1);
    CHECK_INT(atomic_load(&l1.freed), 1);
    CHECK_INT(atomic_load(&l2.freed), 1);
    CHECK_INT(atomic_load(&l3.freed), 1);

    /* Closed while a handler runs on the thread: close waits for it, and its
     * freecb runs after it returned. */
    conn = virConnectOpen(NULL);
    Slow slow = {0};
    CHECK(virConnectAddEventHandlerFull(conn, NULL, slow_handler, &slow, slow_free, 0) >= 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    emit(conn, "slow");
    emit(conn, "slow"); /* may be dropped by the close */
    CHECK(wait_flag(&slow.in_call, 1));
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&slow.in_call), 0);
    CHECK(atomic_load(&slow.returned) >= 1);
    CHECK_INT(atomic_load(&slow.returned), atomic_load(&slow.calls));
    CHECK_INT(atomic_load(&slow.freed), 1);
    CHECK_INT(atomic_load(&slow.freed_during_call), 0);
    CHECK_INT(wait_threads(1), 1);
    log_destroy(&l1);
    log_destroy(&l2);
    log_destroy(&l3);
    case_end("close stops the thread");
}

/* ---- a handler on the thread uses its connection ------------------------------ */

typedef struct {
    atomic_int done;
    Log *added_log;
    int victim_id;
    int emitted;
    int added_id;
    int remove_result;
    int lookup_ok;
    int suspend_result;
    int resume_result;
    int deliver_result;
    int deliver_error;
    pthread_t thread;
} Actor;

static void actor_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Actor *a = arg;
    (void)eventXML;
    a->thread = pthread_self();
    a->emitted = virConnectEmitEvent(conn, "<event type=\"child\"/>");
    const char *const f2[] = {"child2", NULL};
    a->added_id = virConnectAddEventHandlerFull(conn, f2, log_handler, a->added_log, log_free, 0);
    a->remove_result = virConnectRemoveEventHandler(conn, a->victim_id);
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    a->lookup_ok = dom != NULL;
    if (dom) {
        a->suspend_result = virDomainSuspend(dom);
        a->resume_result = virDomainResume(dom);
        virDomainFree(dom);
    }
    a->deliver_result = virDeliverEvents(conn);
    a->deliver_error = virGetLastErrorCode();
    atomic_store(&a->done, 1);
}

static void handler_uses_connection(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Log all, added, victim;
    log_init(&all);
    log_init(&added);
    log_init(&victim);
    Actor actor = {0};
    actor.added_log = &added;
    actor.thread = main_thread;
    actor.suspend_result = actor.resume_result = actor.deliver_result = -2;
    const char *const fgo[] = {"go", NULL};
    const char *const fchild[] = {"child", NULL};
    CHECK(virConnectAddEventHandler(conn, NULL, log_handler, &all) >= 0);
    actor.victim_id = virConnectAddEventHandlerFull(conn, fchild, log_handler, &victim, log_free, 0);
    CHECK(actor.victim_id >= 0);
    CHECK(virConnectAddEventHandler(conn, fgo, actor_handler, &actor) >= 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);

    int go = emit(conn, "go");
    CHECK(wait_flag(&actor.done, 1));
    /* go, child, and the two transitions. */
    CHECK_INT(log_wait(&all, 4), 4);
    CHECK(!pthread_equal(actor.thread, main_thread));
    CHECK_INT(actor.emitted, go + 1);
    CHECK(actor.added_id >= 0);
    CHECK_INT(actor.remove_result, 0);
    CHECK_INT(actor.lookup_ok, 1);
    CHECK_INT(actor.suspend_result, 0);
    CHECK_INT(actor.resume_result, 0);
    CHECK_INT(actor.deliver_result, 0);
    CHECK_INT(actor.deliver_error, VIR_ERR_OK);
    CHECK_INT(all.on_main, 0);
    CHECK_INT(all.threads_differ, 0);
    CHECK(pthread_equal(all.first_thread, actor.thread));
    CHECK(log_increasing(&all, 0));
    CHECK_STR(all.type[0], "go");
    CHECK_STR(all.type[1], "child");
    CHECK_STR(all.type[2], "domain-state-transition");
    CHECK_STR(all.state[2], "paused");
    CHECK_STR(all.type[3], "domain-state-transition");
    CHECK_STR(all.state[3], "running");
    /* The victim was removed before its event was delivered, and freed. */
    CHECK_INT(log_count(&victim), 0);
    CHECK_INT(atomic_load(&victim.freed), 1);

    /* The handler the actor added gets later events, on the thread. */
    emit(conn, "child2");
    CHECK_INT(log_wait(&added, 1), 1);
    CHECK_INT(added.on_main, 0);
    CHECK(pthread_equal(added.first_thread, actor.thread));
    CHECK_INT(log_wait(&all, 5), 5);

    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&added.freed), 1);
    CHECK_INT(atomic_load(&victim.freed), 1);
    CHECK_INT(wait_threads(1), 1);
    log_destroy(&all);
    log_destroy(&added);
    log_destroy(&victim);
    case_end("a handler on the thread uses its connection");
}

/* ---- domain operations from main are delivered on the thread ------------------ */

static void domains_on_thread(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Log log;
    log_init(&log);
    const char *const fdst[] = {"domain-state-transition", NULL};
    CHECK(virConnectAddEventHandler(conn, fdst, log_handler, &log) >= 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    CHECK(dom != NULL);
    CHECK_INT(virDomainSuspend(dom), 0);
    CHECK_INT(virDomainResume(dom), 0);
    CHECK_INT(virDomainShutdown(dom), 0);
    CHECK_INT(virDomainShutdown(dom), -1); /* wrong state: nothing emitted */
    CHECK_INT(virDomainCreate(dom), 0);
    CHECK_INT(virDomainDestroy(dom), 0);
    emit(conn, "unrelated");
    CHECK_INT(log_wait(&log, 5), 5);
    CHECK_INT(log.on_main, 0);
    CHECK_INT(log.threads_differ, 0);
    CHECK(log_increasing(&log, 0));
    CHECK_STR(log.state[0], "paused");
    CHECK_STR(log.state[1], "running");
    CHECK_STR(log.state[2], "shutoff");
    CHECK_STR(log.state[3], "running");
    CHECK_STR(log.state[4], "shutoff");
    CHECK_INT(virDomainFree(dom), 0);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(log_count(&log), 5);
    CHECK_INT(wait_threads(1), 1);
    log_destroy(&log);
    case_end("domain operations from main are delivered on the thread");
}

/* ---- one thread per connection ------------------------------------------------- */

static void two_connections(void)
{
    case_begin();
    CHECK_INT(count_threads(), 1);
    virConnectPtr c1 = virConnectOpen(NULL);
    virConnectPtr c2 = virConnectOpen("test:///empty");
    Log l1, l2;
    log_init(&l1);
    log_init(&l2);
    CHECK(virConnectAddEventHandlerFull(c1, NULL, log_handler, &l1, log_free, 0) >= 0);
    CHECK(virConnectAddEventHandlerFull(c2, NULL, log_handler, &l2, log_free, 0) >= 0);
    CHECK_INT(count_threads(), 1);
    CHECK_INT(virConnectStartEventThread(c1), 0);
    CHECK_INT(count_threads(), 2);
    CHECK_INT(virConnectStartEventThread(c2), 0);
    CHECK_INT(count_threads(), 3);
    for (int i = 0; i < 20; i++) {
        emit(c1, "one");
        emit(c2, "two");
    }
    CHECK_INT(log_wait(&l1, 20), 20);
    CHECK_INT(log_wait(&l2, 20), 20);
    CHECK_INT(l1.on_main, 0);
    CHECK_INT(l2.on_main, 0);
    CHECK_INT(l1.threads_differ, 0);
    CHECK_INT(l2.threads_differ, 0);
    CHECK(!pthread_equal(l1.first_thread, l2.first_thread));
    CHECK(log_increasing(&l1, 0));
    CHECK(log_increasing(&l2, 0));
    int bad = 0;
    for (int i = 0; i < 20; i++)
        if (strcmp(l1.type[i], "one") != 0 || strcmp(l2.type[i], "two") != 0)
            bad++;
    CHECK_INT(bad, 0);

    /* Stopping one leaves the other running. */
    CHECK_INT(virConnectStopEventThread(c1), 0);
    CHECK_INT(wait_threads(2), 2);
    emit(c2, "two");
    CHECK_INT(log_wait(&l2, 21), 21);
    emit(c1, "one");
    CHECK_INT(virDeliverEvents(c1), 1);
    CHECK_INT(l1.on_main, 1);
    CHECK_INT(virConnectClose(c2), 0);
    CHECK_INT(wait_threads(1), 1);
    CHECK_INT(virConnectClose(c1), 0);
    CHECK_INT(atomic_load(&l1.freed), 1);
    CHECK_INT(atomic_load(&l2.freed), 1);
    CHECK_INT(count_threads(), 1);
    log_destroy(&l1);
    log_destroy(&l2);
    case_end("two connections, two threads");
}

/* ---- a handler on the thread starts it while main stops or closes ------------ */

typedef struct {
    atomic_int in_call;
    atomic_int go;      /* main is about to stop or close */
    atomic_int done;
    int start_result, start_error;
    atomic_int calls;
    atomic_int on_main;
} Restart;

/* On "first": waits until main stops or closes (giving it 100 ms to get into the
 * join), then starts the event thread. */
static void restart_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Restart *r = arg;
    atomic_fetch_add(&r->calls, 1);
    if (pthread_equal(pthread_self(), main_thread))
        atomic_fetch_add(&r->on_main, 1);
    if (!strstr(eventXML, "type=\"first\""))
        return;
    atomic_store(&r->in_call, 1);
    long long deadline = now_ms() + 3000;
    while (!atomic_load(&r->go) && now_ms() < deadline)
        sleep_ms(1);
    sleep_ms(100);
    r->start_result = virConnectStartEventThread(conn);
    r->start_error = virGetLastErrorCode();
    atomic_store(&r->done, 1);
}

/* Whatever the start made of it, the connection is consistent afterwards: the
 * thread runs and delivers (and virDeliverEvents returns 0), or it does not run
 * and virDeliverEvents delivers. */
static void restart_during_stop(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Restart r = {0};
    r.start_result = r.start_error = -2;
    CHECK(virConnectAddEventHandler(conn, NULL, restart_handler, &r) >= 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    emit(conn, "first");
    CHECK(wait_flag(&r.in_call, 1));
    atomic_store(&r.go, 1);
    CHECK_INT(virConnectStopEventThread(conn), 0);
    CHECK_INT(atomic_load(&r.done), 1);
    printf("start from a handler during stop: %d (error %d)\n", r.start_result, r.start_error);
    if (r.start_result == 0) {
        /* A new event thread runs: it delivers, main does not. */
        CHECK_INT(wait_threads(2), 2);
        emit(conn, "second");
        CHECK(wait_flag_ms(&r.calls, 2, 1500));
        CHECK_INT(atomic_load(&r.on_main), 0);
        CHECK_INT(virDeliverEvents(conn), 0);
        CHECK_INT(virConnectStopEventThread(conn), 0);
    } else {
        CHECK_INT(r.start_result, -1);
        CHECK_INT(r.start_error, VIR_ERR_OPERATION_INVALID);
        CHECK_INT(wait_threads(1), 1);
        emit(conn, "second");
        CHECK_INT(virDeliverEvents(conn), 1);
        CHECK_INT(atomic_load(&r.on_main), 1);
        CHECK_INT(virConnectStopEventThread(conn), -1);
    }
    CHECK_INT(atomic_load(&r.calls), 2);
    CHECK_INT(wait_threads(1), 1);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(count_threads(), 1);
    case_end("a handler on the thread starts it while main stops it");
}

typedef struct {
    virConnectPtr conn;
    atomic_int done;
    int result;
} Closer;

static void *closer(void *arg)
{
    Closer *c = arg;
    c->result = virConnectClose(c->conn);
    atomic_store(&c->done, 1);
    return NULL;
}

/* Close waits for the handler running on the thread, which may call any
 * function of its connection meanwhile (docs/api.md section 9), starting the thread
 * included: close must not deadlock. Run last: a deadlock leaves a thread stuck. */
static void restart_during_close(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Restart r = {0};
    r.start_result = r.start_error = -2;
    Log log;
    log_init(&log);
    CHECK(virConnectAddEventHandler(conn, NULL, restart_handler, &r) >= 0);
    CHECK(virConnectAddEventHandlerFull(conn, NULL, log_handler, &log, log_free, 0) >= 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    emit(conn, "first");
    CHECK(wait_flag(&r.in_call, 1));
    atomic_store(&r.go, 1);
    Closer c = {conn, 0, -2};
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, closer, &c), 0);
    int closed = wait_flag_ms(&c.done, 1, 1500);
    CHECK(closed); /* virConnectClose returned within 1.5 s */
    if (!closed) {
        fprintf(stderr, "virConnectClose deadlocked: a handler on the event thread called "
                        "virConnectStartEventThread while it waited (start returned: %s)\n",
                atomic_load(&r.done) ? "yes" : "no");
        case_end("a handler on the thread starts it while main closes");
        return;
    }
    pthread_join(t, NULL);
    CHECK_INT(c.result, 0);
    CHECK_INT(atomic_load(&r.done), 1);
    printf("start from a handler during close: %d (error %d)\n", r.start_result, r.start_error);
    CHECK_INT(wait_threads(1), 1);
    CHECK_INT(atomic_load(&log.freed), 1);
    log_destroy(&log);
    case_end("a handler on the thread starts it while main closes");
}

/* ---- the event thread sleeps while a caller's delivery runs ------------------- */

/* The CPU time, in ms, the event thread ("virevent-events") has used, from
 * /proc/self/task/TID/stat; -1 when there is no such thread. */
static long event_thread_cpu_ms(void)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return -1;
    long ms = -1;
    struct dirent *e;
    while (ms < 0 && (e = readdir(dir)) != NULL) {
        char path[300], text[1024] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        /* "TID (comm) state ppid ... utime stime": fields 14 and 15. */
        const char *close_paren = strrchr(text, ')');
        if (!strstr(text, "(virevent-events)") || !close_paren)
            continue;
        unsigned long utime = 0, stime = 0;
        if (sscanf(close_paren + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2)
            ms = (long)((utime + stime) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
    }
    closedir(dir);
    return ms;
}

typedef struct {
    int started;
    long cpu_before, cpu_after; /* the event thread's, around the 2 s of work */
    atomic_int later_on_thread;
    atomic_int later_early; /* "later" was delivered while the work went on */
    atomic_int working;
} Busy;

/* On "start" (delivered by the caller): starts the event thread, emits
 * "later", and works for 2 s. "later" then comes on the event thread. */
static void busy_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Busy *b = arg;
    if (is_type(eventXML, "later")) {
        if (atomic_load(&b->working))
            atomic_store(&b->later_early, 1);
        atomic_fetch_add(&b->later_on_thread, !pthread_equal(pthread_self(), main_thread));
        return;
    }
    atomic_store(&b->working, 1);
    b->started = virConnectStartEventThread(conn);
    virConnectEmitEvent(conn, "<event type=\"later\"/>");
    long long deadline = now_ms() + 500;
    while ((b->cpu_before = event_thread_cpu_ms()) < 0 && now_ms() < deadline)
        sleep_ms(1);
    sleep_ms(2000);
    b->cpu_after = event_thread_cpu_ms();
    atomic_store(&b->working, 0);
}

static void no_spin_during_delivery(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Busy b = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, busy_handler, &b) >= 0);
    emit(conn, "start");
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(b.started, 0);
    CHECK(b.cpu_before >= 0 && b.cpu_after >= 0);
    /* The thread slept until the caller's delivery ended... */
    CHECK(b.cpu_after - b.cpu_before < 50);
    /* ...and then delivered what waited for it. */
    CHECK(wait_flag(&b.later_on_thread, 1));
    CHECK_INT(atomic_load(&b.later_early), 0);
    printf("the event thread used %ld ms of CPU during a caller's 2 s delivery\n", b.cpu_after - b.cpu_before);
    CHECK_INT(virConnectStopEventThread(conn), 0);
    CHECK_INT(virConnectClose(conn), 0);
    case_end("the event thread sleeps while a caller's delivery runs");
}

int main(void)
{
    main_thread = pthread_self();
    no_thread_unless_asked();
    start_and_stop();
    queued_across_start();
    deliver_returns_zero();
    refused_on_thread();
    removal_waits();
    freecb_at_removal();
    close_stops_thread();
    handler_uses_connection();
    domains_on_thread();
    two_connections();
    restart_during_stop();
    restart_during_close();
    no_spin_during_delivery();
    return check_done();
}
