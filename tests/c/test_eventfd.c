/* virConnectGetEventFD: the descriptor for poll loops (docs/api.md section 4,
 * virevent.h). It is owned by the connection, the same on every call, readable
 * exactly while virDeliverEvents has handler calls to make, level-triggered, fit
 * for poll and epoll, and closed by virConnectClose. Only the main thread uses
 * CHECK: the producer thread records what it saw, and main checks it after
 * joining. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* Whether `fd` polls readable right now (timeout 0); -1 when poll fails. */
static int readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 0);
    if (r < 0)
        return -1;
    return r == 1 && (p.revents & POLLIN) ? 1 : 0;
}

/* Whether the descriptor is open (fcntl F_GETFD succeeds). */
static int fd_open(int fd)
{
    errno = 0;
    return fcntl(fd, F_GETFD) != -1;
}

/* ---- one descriptor, owned by the connection ------------------------------ */

static void same_descriptor(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    int fd = virConnectGetEventFD(conn);
    CHECK(fd >= 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK(fd_open(fd));
    CHECK_INT(virConnectGetEventFD(conn), fd);
    CHECK_INT(virConnectGetEventFD(conn), fd);

    /* The same after handlers, emits and deliveries. */
    Rec a = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &a) >= 0);
    emit(conn, "x");
    CHECK_INT(virConnectGetEventFD(conn), fd);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(virConnectGetEventFD(conn), fd);

    /* Another connection has its own. */
    virConnectPtr other = virConnectOpen(NULL);
    int ofd = virConnectGetEventFD(other);
    CHECK(ofd >= 0);
    CHECK(ofd != fd);
    CHECK_INT(virConnectGetEventFD(other), ofd);
    /* Closing one leaves the other's open and working. */
    CHECK_INT(virConnectClose(other), 0);
    CHECK(fd_open(fd));
    CHECK_INT(virConnectGetEventFD(conn), fd);
    emit(conn, "y");
    CHECK_INT(readable(fd), 1);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(readable(fd), 0);

    /* NULL connection. */
    CHECK_INT(virConnectGetEventFD(NULL), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "NULL");
    /* A success afterwards resets the error. */
    CHECK_INT(virConnectGetEventFD(conn), fd);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);

    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&a.seen);
    case_end("same descriptor on every call");
}

/* Asked for from inside a handler: the same descriptor, and it shows what the
 * delivery left (the handler's own emit). */
typedef struct {
    int fd;
    int readable_inside;
    int emitted;
} Inside;

static void inside_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Inside *in = arg;
    if (strstr(eventXML, "type=\"ping\"")) {
        in->fd = virConnectGetEventFD(conn);
        in->readable_inside = readable(in->fd);
        in->emitted = virConnectEmitEvent(conn, "<event type=\"echo\"/>");
    }
}

static void from_a_handler(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Inside in = {-2, -2, -2};
    const char *const fping[] = {"ping", "echo", NULL};
    CHECK(virConnectAddEventHandler(conn, fping, inside_handler, &in) >= 0);
    int fd = virConnectGetEventFD(conn);
    CHECK(fd >= 0);
    emit(conn, "ping");
    CHECK_INT(readable(fd), 1);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(in.fd, fd);
    /* The queue was drained for this delivery: nothing waits during it. */
    CHECK_INT(in.readable_inside, 0);
    CHECK(in.emitted > 0);
    /* The echo waits for the next call, and the descriptor says so. */
    CHECK_INT(readable(fd), 1);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(readable(fd), 0);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virConnectClose(conn), 0);
    case_end("virConnectGetEventFD from a handler");
}

/* ---- readable exactly while there is work --------------------------------- */

static void readable_while_work(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    int fd = virConnectGetEventFD(conn);
    CHECK(fd >= 0);
    /* No handler, nothing queued. */
    CHECK_INT(readable(fd), 0);
    /* No handler: an emit queues nothing for handlers. */
    emit(conn, "x");
    CHECK_INT(readable(fd), 0);
    CHECK_INT(virDeliverEvents(conn), 0);

    Rec a = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &a) >= 0);
    /* A handler, nothing queued. */
    CHECK_INT(readable(fd), 0);
    emit(conn, "x");
    CHECK_INT(readable(fd), 1);
    /* Level-triggered: asking again does not clear it. */
    CHECK_INT(readable(fd), 1);
    emit(conn, "y");
    emit(conn, "z");
    CHECK_INT(readable(fd), 1);
    CHECK_INT(virDeliverEvents(conn), 3);
    CHECK_INT(a.seen.count, 3);
    /* Drained. */
    CHECK_INT(readable(fd), 0);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(readable(fd), 0);

    /* Again and again: each emit raises it, each delivery clears it. */
    int bad = 0;
    for (int i = 0; i < 50; i++) {
        emit(conn, "again");
        if (readable(fd) != 1)
            bad++;
        if (virDeliverEvents(conn) != 1)
            bad++;
        if (readable(fd) != 0)
            bad++;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&a.seen);
    case_end("readable while events are queued");
}

static void filtered_out(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Rec a = {0}, b = {0};
    const char *const fa[] = {"alpha", NULL};
    const char *const fb[] = {"domain-*", NULL};
    CHECK(virConnectAddEventHandler(conn, fa, rec_handler, &a) >= 0);
    CHECK(virConnectAddEventHandler(conn, fb, rec_handler, &b) >= 0);
    int fd = virConnectGetEventFD(conn);
    CHECK(fd >= 0);
    CHECK_INT(readable(fd), 0);

    /* No filter matches: nothing to do, not readable. */
    emit(conn, "beta");
    CHECK_INT(readable(fd), 0);
    emit(conn, "alphabet");
    CHECK_INT(readable(fd), 0);
    emit(conn, "domainx");
    CHECK_INT(readable(fd), 0);
    CHECK_INT(virDeliverEvents(conn), 0);

    /* An exact match. */
    emit(conn, "alpha");
    CHECK_INT(readable(fd), 1);
    /* Unmatched events after it change nothing. */
    emit(conn, "beta");
    CHECK_INT(readable(fd), 1);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(readable(fd), 0);

    /* A wildcard match. */
    emit(conn, "domain-foo");
    CHECK_INT(readable(fd), 1);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(readable(fd), 0);

    /* The test driver's events match domain-*. */
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    CHECK(dom != NULL);
    CHECK_INT(virDomainSuspend(dom), 0);
    CHECK_INT(readable(fd), 1);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(readable(fd), 0);
    /* A failed transition emits nothing. */
    CHECK_INT(virDomainSuspend(dom), -1);
    CHECK_INT(readable(fd), 0);
    CHECK_INT(virDomainResume(dom), 0);
    CHECK_INT(readable(fd), 1);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(virDomainFree(dom), 0);

    CHECK_INT(a.seen.count, 1);
    CHECK_INT(b.seen.count, 3);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&a.seen);
    seen_clear(&b.seen);
    case_end("events no filter matches leave it unreadable");
}

/* Made after events were queued: readable at once. */
static void made_late(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Rec a = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &a) >= 0);
    emit(conn, "early");
    emit(conn, "early");
    int fd = virConnectGetEventFD(conn);
    CHECK(fd >= 0);
    CHECK_INT(readable(fd), 1);
    CHECK_INT(virDeliverEvents(conn), 2);
    CHECK_INT(readable(fd), 0);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&a.seen);
    case_end("descriptor made after events were queued");
}

/* A handler that is removed takes its work with it: once no handler is left to
 * call, virDeliverEvents has no calls to make, and the header says the
 * descriptor polls readable exactly while it has. */
static void removed_handler(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Rec a = {0};
    int id = virConnectAddEventHandler(conn, NULL, rec_handler, &a);
    CHECK(id >= 0);
    int fd = virConnectGetEventFD(conn);
    emit(conn, "x");
    CHECK_INT(readable(fd), 1);
    CHECK_INT(virConnectRemoveEventHandler(conn, id), 0);
    CHECK_INT(readable(fd), 0);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(readable(fd), 0);
    CHECK_INT(a.seen.count, 0);
    CHECK_INT(virConnectClose(conn), 0);
    case_end("readable after the only handler was removed");
}

/* A handler that emits during delivery: its event waits for the next call, and
 * the descriptor is readable again when the delivery returns. */
typedef struct {
    int left; /* how many more events to emit, one per call */
    int calls;
    int failures;
} Chain;

static void chain_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Chain *c = arg;
    (void)eventXML;
    c->calls++;
    if (c->left > 0) {
        c->left--;
        if (virConnectEmitEvent(conn, "<event type=\"chain\"/>") <= 0)
            c->failures++;
    }
}

static void handler_emits(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Chain c = {5, 0, 0};
    CHECK(virConnectAddEventHandler(conn, NULL, chain_handler, &c) >= 0);
    int fd = virConnectGetEventFD(conn);
    emit(conn, "start");
    int rounds = 0, bad = 0;
    /* Each round: readable, one call, and the emitted event waits. */
    while (readable(fd) == 1 && rounds < 20) {
        if (virDeliverEvents(conn) != 1)
            bad++;
        rounds++;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(rounds, 6);
    CHECK_INT(c.calls, 6);
    CHECK_INT(c.failures, 0);
    CHECK_INT(readable(fd), 0);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virConnectClose(conn), 0);
    case_end("readable again after a handler emitted");
}

/* ---- a real poll loop ------------------------------------------------------ */

#define BURSTS 12
#define PER_BURST 40
#define TICKS (BURSTS * PER_BURST)

typedef struct {
    virConnectPtr conn;
    int failures;
    int emitted;
} Producer;

/* Emits bursts of "tick" events, each followed by "noise" nobody wants, with
 * small pauses between bursts. */
static void *producer(void *arg)
{
    Producer *p = arg;
    for (int b = 0; b < BURSTS; b++) {
        for (int i = 0; i < PER_BURST; i++) {
            if (virConnectEmitEvent(p->conn, "<event type=\"tick\"/>") <= 0)
                p->failures++;
            else
                p->emitted++;
            if (virConnectEmitEvent(p->conn, "<event type=\"noise\"/>") <= 0)
                p->failures++;
        }
        sleep_ms(3 + b % 4 * 3);
    }
    return NULL;
}

typedef struct {
    int count;
    long long last_seq;
    int not_increasing;
    int wrong_type;
} Ticks;

static void tick_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Ticks *t = arg;
    (void)conn;
    long long seq = seq_of(eventXML);
    if (seq <= t->last_seq)
        t->not_increasing++;
    t->last_seq = seq;
    if (!strstr(eventXML, "type=\"tick\""))
        t->wrong_type++;
    t->count++;
}

static void poll_loop(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Ticks ticks = {0};
    const char *const ftick[] = {"tick", NULL};
    CHECK(virConnectAddEventHandler(conn, ftick, tick_handler, &ticks) >= 0);
    int fd = virConnectGetEventFD(conn);
    CHECK(fd >= 0);

    Producer p = {conn, 0, 0};
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, producer, &p), 0);
    long long deadline = now_ms() + 4000;
    int handled = 0, wakes = 0, empty_wakes = 0, timeouts = 0, failures = 0, iterations = 0;
    while (handled < TICKS && now_ms() < deadline) {
        iterations++;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, 1000);
        if (r < 0) {
            if (errno != EINTR)
                failures++;
            continue;
        }
        if (r == 0) {
            timeouts++;
            continue;
        }
        if (!(pfd.revents & POLLIN)) {
            failures++;
            continue;
        }
        wakes++;
        int n = virDeliverEvents(conn);
        if (n < 0)
            failures++;
        else if (n == 0)
            empty_wakes++;
        else
            handled += n;
    }
    pthread_join(t, NULL);
    CHECK_INT(p.failures, 0);
    CHECK_INT(p.emitted, TICKS);
    CHECK_INT(handled, TICKS);
    CHECK_INT(ticks.count, TICKS);
    CHECK_INT(ticks.not_increasing, 0);
    CHECK_INT(ticks.wrong_type, 0);
    CHECK_INT(failures, 0);
    /* Never spinning: every wake had work, the poll never timed out while the
     * producer ran, and there were no more wakes than events. */
    CHECK_INT(empty_wakes, 0);
    CHECK_INT(timeouts, 0);
    CHECK(wakes >= 1);
    CHECK(wakes <= TICKS);
    CHECK_INT(iterations, wakes + timeouts);
    /* Everything handled: quiet again, and noise alone does not wake it. */
    CHECK_INT(readable(fd), 0);
    emit(conn, "noise");
    CHECK_INT(readable(fd), 0);
    printf("poll loop: %d events in %d wakes\n", handled, wakes);
    CHECK_INT(virConnectClose(conn), 0);
    case_end("poll loop with a producer thread");
}

/* The same loop in one thread, bursts of varying size interleaved with polls. */
static void interleaved_loop(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Ticks ticks = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, tick_handler, &ticks) >= 0);
    int fd = virConnectGetEventFD(conn);
    int total = 0, bad = 0;
    for (int burst = 1; burst <= 8; burst++) {
        if (readable(fd) != 0)
            bad++;
        for (int i = 0; i < burst; i++)
            emit(conn, "tick");
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 1000) != 1 || !(pfd.revents & POLLIN))
            bad++;
        int n = virDeliverEvents(conn);
        if (n != burst)
            bad++;
        total += n;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(total, 36);
    CHECK_INT(ticks.count, 36);
    CHECK_INT(ticks.not_increasing, 0);
    CHECK_INT(readable(fd), 0);
    CHECK_INT(virConnectClose(conn), 0);
    case_end("interleaved poll loop");
}

/* ---- epoll ----------------------------------------------------------------- */

typedef struct {
    virConnectPtr conn;
    int seq;
} Late;

static void *late_emitter(void *arg)
{
    Late *l = arg;
    sleep_ms(50);
    l->seq = virConnectEmitEvent(l->conn, "<event type=\"late\"/>");
    return NULL;
}

static void with_epoll(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Rec a = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &a) >= 0);
    int fd = virConnectGetEventFD(conn);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event ev = {0};
    ev.events = EPOLLIN;
    ev.data.u64 = 42;
    CHECK_INT(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);

    struct epoll_event out[4];
    CHECK_INT(epoll_wait(ep, out, 4, 0), 0);
    emit(conn, "x");
    int n = epoll_wait(ep, out, 4, 1000);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK(out[0].events & EPOLLIN);
        CHECK_INT(out[0].data.u64, 42);
    }
    /* Level-triggered: still there until delivered. */
    CHECK_INT(epoll_wait(ep, out, 4, 0), 1);
    emit(conn, "y");
    CHECK_INT(epoll_wait(ep, out, 4, 0), 1);
    CHECK_INT(virDeliverEvents(conn), 2);
    CHECK_INT(epoll_wait(ep, out, 4, 0), 0);

    /* A blocking epoll_wait wakes for an event emitted on another thread. */
    Late l = {conn, -2};
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, late_emitter, &l), 0);
    long long start = now_ms();
    n = epoll_wait(ep, out, 4, 3000);
    long long waited = now_ms() - start;
    pthread_join(t, NULL);
    CHECK_INT(n, 1);
    CHECK(l.seq > 0);
    CHECK(waited < 2500);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(epoll_wait(ep, out, 4, 0), 0);
    CHECK_INT(a.seen.count, 3);
    if (a.seen.count == 3) {
        CHECK_CONTAINS(a.seen.xml[2], "type=\"late\"");
        CHECK_INT(seq_of(a.seen.xml[2]), l.seq);
    }

    CHECK_INT(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL), 0);
    close(ep);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&a.seen);
    case_end("epoll");
}

/* ---- the queue limit -------------------------------------------------------- */

static void queue_limit(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Rec a = {0}, q = {0};
    const char *const fq[] = {"q", NULL};
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &a) >= 0);
    CHECK(virConnectAddEventHandler(conn, fq, rec_handler, &q) >= 0);
    CHECK_INT(virConnectSetEventQueueLimit(conn, 10), 0);
    int fd = virConnectGetEventFD(conn);
    CHECK_INT(readable(fd), 0);
    int first = 0, last = 0;
    for (int i = 0; i < 25; i++) {
        int seq = emit(conn, "x");
        if (i == 0)
            first = seq;
        last = seq;
    }
    CHECK_INT(readable(fd), 1);
    /* 10 events to the NULL-filter handler, and one events-lost to both. */
    CHECK_INT(virDeliverEvents(conn), 10 + 2);
    CHECK_INT(readable(fd), 0);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(a.seen.count, 11);
    CHECK_INT(q.seen.count, 1);
    if (a.seen.count == 11) {
        CHECK_INT(seq_of(a.seen.xml[0]), first);
        CHECK_INT(seq_of(a.seen.xml[9]), first + 9);
        CHECK_CONTAINS(a.seen.xml[10], "type=\"events-lost\"");
        CHECK_CONTAINS(a.seen.xml[10], " count=\"15\"");
        char part[64];
        snprintf(part, sizeof part, " first-seq=\"%d\"", first + 10);
        CHECK_CONTAINS(a.seen.xml[10], part);
        snprintf(part, sizeof part, " last-seq=\"%d\"", last);
        CHECK_CONTAINS(a.seen.xml[10], part);
        CHECK_INT(seq_of(a.seen.xml[10]), 0);
    }
    if (q.seen.count == 1)
        CHECK_STR(q.seen.xml[0], a.seen.xml[10]);

    /* Only events the q handler wants, over the limit: readable, and its
     * events-lost reaches the NULL-filter handler too. */
    for (int i = 0; i < 12; i++)
        emit(conn, "q");
    CHECK_INT(readable(fd), 1);
    CHECK_INT(virDeliverEvents(conn), 2 * 10 + 2);
    CHECK_INT(readable(fd), 0);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&a.seen);
    seen_clear(&q.seen);
    case_end("queue limit");
}

/* ---- closed by virConnectClose ------------------------------------------------ */

static void closed_by_close(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Rec a = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &a) >= 0);
    int fd = virConnectGetEventFD(conn);
    CHECK(fd >= 0);
    emit(conn, "x"); /* readable when closed */
    CHECK_INT(readable(fd), 1);
    CHECK_INT(virConnectClose(conn), 0);
    errno = 0;
    CHECK_INT(fcntl(fd, F_GETFD), -1);
    CHECK_INT(errno, EBADF);
    seen_clear(&a.seen);

    /* With the event thread running, which waits on it. */
    conn = virConnectOpen(NULL);
    fd = virConnectGetEventFD(conn);
    CHECK(fd >= 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    CHECK_INT(virConnectClose(conn), 0);
    errno = 0;
    CHECK_INT(fcntl(fd, F_GETFD), -1);
    CHECK_INT(errno, EBADF);
    case_end("closed by virConnectClose");
}

int main(void)
{
    same_descriptor();
    from_a_handler();
    readable_while_work();
    filtered_out();
    made_late();
    removed_handler();
    handler_emits();
    poll_loop();
    interleaved_loop();
    with_epoll();
    queue_limit();
    closed_by_close();
    return check_done();
}
