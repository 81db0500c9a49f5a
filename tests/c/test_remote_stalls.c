/* Daemons that stall, and a client that never waits for them past a deadline:
 * a socket whose listen backlog is full (alive, never accepting) and a daemon
 * that accepts late and never answers (virConnectOpen gives up after 30 s in
 * all, VIR_ERR_NO_CONNECT "timed out"); a daemon that floods PINGs and stops
 * reading (virDeliverEvents never blocks on it, the event thread stops at
 * once, closing waits 5 s at most, and after 30 s of taking nothing the link
 * ends: one connection-closed, reason error, then VIR_ERR_RPC "the daemon
 * stopped reading"); the same daemon gone silent, found by the timer in the
 * event descriptor alone.
 *
 * Each case waits for a deadline of the library's, so the cases run at once,
 * one thread each (check.h's counts are atomic). */
#include <pthread.h>

#include "fake_daemon.h"

/* The library's deadline for the open sequence, and for a daemon that takes
 * nothing we send. */
#define DEADLINE_MS 30000
/* Its deadline for the whole goodbye of virConnectClose. */
#define CLOSE_MS 5000
/* The longest a delivery may take while PINGs flood in: one reads 256 KiB
 * (9,362 PINGs), which takes well under this even under valgrind; a delivery
 * that waited for the daemon to read would take the 30 s deadline. */
#define DELIVERY_MS 3000

/* ---- open never hangs --------------------------------------------------------- */

/* A listening socket in a folder of its own whose backlog (0) is full: one
 * connection waits in it, never accepted. */
typedef struct {
    char dir[64];
    char sock[128];
    char uri[256];
    int listener;
    int pending;
} Jammed;

static void jam(Jammed *j)
{
    snprintf(j->dir, sizeof j->dir, "/tmp/virevent-jam-XXXXXX");
    if (!mkdtemp(j->dir)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(j->sock, sizeof j->sock, "%s/sock", j->dir);
    snprintf(j->uri, sizeof j->uri, "test+unix:///default?socket=%s", j->sock);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, j->sock, strlen(j->sock) + 1);
    j->listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    j->pending = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(j->listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(j->listener, 0) != 0 ||
        connect(j->pending, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("jammed socket");
        exit(2);
    }
}

static void unjam(Jammed *j)
{
    close(j->pending);
    close(j->listener);
    unlink(j->sock);
    rmdir(j->dir);
}

/* An open, timed, with its error. */
typedef struct {
    const char *uri;
    virConnectPtr conn;
    long long ms;
    int code;
    char message[512];
} Opening;

static void *open_timed(void *arg)
{
    Opening *o = arg;
    long long t0 = now_ms();
    o->conn = virConnectOpen(o->uri);
    o->ms = now_ms() - t0;
    o->code = virGetLastErrorCode();
    snprintf(o->message, sizeof o->message, "%s", virGetLastErrorMessage());
    return NULL;
}

static void check_timed_out(const Opening *o, const char *sock, const char *what)
{
    CHECK(o->conn == NULL);
    if (o->conn)
        virConnectClose(o->conn);
    CHECK_INT(o->code, VIR_ERR_NO_CONNECT);
    CHECK_CONTAINS(o->message, sock);
    CHECK_CONTAINS(o->message, "timed out");
    CHECK(o->ms >= DEADLINE_MS - 500 && o->ms < DEADLINE_MS + 8000);
    printf("%s: NULL after %lld ms: %s\n", what, o->ms, o->message);
}

/* Nothing ever accepts the connection. */
static void *never_accepts(void *unused)
{
    (void)unused;
    Jammed j;
    jam(&j);
    Opening o = {j.uri, NULL, 0, 0, ""};
    open_timed(&o);
    check_timed_out(&o, j.sock, "a full listen backlog");
    unjam(&j);
    return NULL;
}

/* The connection is accepted after 20 s, and then nothing is answered: the
 * open's one deadline covers the wait to connect and the calls together. */
static void *accepts_late(void *unused)
{
    (void)unused;
    Jammed j;
    jam(&j);
    Opening o = {j.uri, NULL, 0, 0, ""};
    pthread_t opener;
    pthread_create(&opener, NULL, open_timed, &o);
    sleep_ms(20000);
    int first = accept(j.listener, NULL, NULL), ours = accept(j.listener, NULL, NULL);
    CHECK(first >= 0 && ours >= 0);
    pthread_join(opener, NULL);
    check_timed_out(&o, j.sock, "accepted after 20 s, never answered");
    close(first);
    close(ours);
    unjam(&j);
    return NULL;
}

/* ---- a daemon that stops reading ------------------------------------------------ */

/* A poll loop on the event descriptor: delivers whenever it is readable, until
 * connection-closed arrives or `ms` pass; notes the slowest delivery, and the
 * wake-ups from `quiet_from` on (ms since the start). */
typedef struct {
    Seen seen;
    long long slowest_ms;
    long long closed_at; /* ms since the start, -1 if it did not come */
    int quiet_wakeups;
    int failures;
} Loop;

static void poll_until_closed(virConnectPtr conn, Loop *l, int ms, long long quiet_from)
{
    int fd = virConnectGetEventFD(conn);
    long long t0 = now_ms();
    l->closed_at = -1;
    while (now_ms() - t0 < ms && l->closed_at < 0) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0)
            continue;
        if (now_ms() - t0 >= quiet_from)
            l->quiet_wakeups++;
        long long d0 = now_ms();
        if (virDeliverEvents(conn) < 0)
            l->failures++;
        long long took = now_ms() - d0;
        if (took > l->slowest_ms)
            l->slowest_ms = took;
        for (int i = 0; i < l->seen.count; i++)
            if (is_type(l->seen.xml[i], "connection-closed") && l->closed_at < 0)
                l->closed_at = now_ms() - t0;
    }
}

/* After the link ended because the daemon stopped reading: delivery fails
 * with that, and closing does not wait. */
static void check_stopped_reading(virConnectPtr conn, const Loop *l)
{
    CHECK_INT(l->failures, 0);
    CHECK(l->closed_at >= 0);
    CHECK_INT(l->seen.count, 1);
    if (l->seen.count == 1)
        check_closed(l->seen.xml[0], "error");
    CHECK_INT(virDeliverEvents(conn), -1);
    CHECK_ERROR(VIR_ERR_RPC, "the daemon stopped reading");
    long long t0 = now_ms();
    CHECK_INT(virConnectClose(conn), 0);
    CHECK(now_ms() - t0 < 1000);
}

/* Ends a case: the daemon ended because the client went away. */
static void *finish(Fake *f, Loop *l)
{
    fake_finish(f);
    CHECK_INT(f->done, DONE_FLOODED);
    seen_clear(&l->seen);
    return NULL;
}

static void flood_script(Script *s)
{
    script_init(s);
    s->alarm_s = 90;
    step_flood(s, 60);
}

/* PINGs flood in and nothing is read: the event thread stops at once, no
 * delivery waits for room, and after 30 s the link ends. */
static void *flood_never_read(void *unused)
{
    (void)unused;
    Script s;
    flood_script(&s);
    Fake f;
    Loop l;
    memset(&l, 0, sizeof l);
    virConnectPtr conn = fake_open(&f, &s, &l.seen);
    if (conn) {
        fake_go(&f);
        long long t0 = now_ms();
        CHECK_INT(virConnectStartEventThread(conn), 0);
        sleep_ms(3000);
        long long s0 = now_ms();
        CHECK_INT(virConnectStopEventThread(conn), 0);
        long long stop_ms = now_ms() - s0;
        CHECK(stop_ms < 1000);
        poll_until_closed(conn, &l, DEADLINE_MS + 15000, DEADLINE_MS + 15000);
        long long closed_ms = l.closed_at >= 0 ? now_ms() - t0 : -1;
        CHECK(l.slowest_ms < DELIVERY_MS);
        CHECK(closed_ms >= DEADLINE_MS - 1000 && closed_ms < DEADLINE_MS + 10000);
        printf("PING flood, never read: the event thread stopped in %lld ms; deliveries took %lld ms at most; "
               "connection-closed after %lld ms\n", stop_ms, l.slowest_ms, closed_ms);
        check_stopped_reading(conn, &l);
    }
    return finish(&f, &l);
}

/* Closing during such a flood waits 5 s in all, not 5 s for each call. */
static void *close_during_flood(void *unused)
{
    (void)unused;
    Script s;
    flood_script(&s);
    Fake f;
    Loop l;
    memset(&l, 0, sizeof l);
    virConnectPtr conn = fake_open(&f, &s, &l.seen);
    if (conn) {
        fake_go(&f);
        poll_until_closed(conn, &l, 2000, 2000);
        CHECK(l.slowest_ms < DELIVERY_MS);
        long long t0 = now_ms();
        CHECK_INT(virConnectClose(conn), 0);
        long long close_ms = now_ms() - t0;
        CHECK(close_ms >= CLOSE_MS - 500 && close_ms < CLOSE_MS + 2000);
        printf("PING flood: virConnectClose took %lld ms\n", close_ms);
    }
    return finish(&f, &l);
}

/* The daemon sends more PINGs than the socket can take PONGs for, then
 * neither reads nor sends: only the timer in the event descriptor can tell,
 * and the loop sleeps until it does. */
static void *silent_after_burst(void *unused)
{
    (void)unused;
    Script s;
    script_init(&s);
    s.alarm_s = 90;
    Buf pings = {0};
    for (int i = 0; i < 140; i++)
        keepalive(&pings, 1);
    step_send_times(&s, &pings, 300);
    step_pause(&s, 60);
    Fake f;
    Loop l;
    memset(&l, 0, sizeof l);
    virConnectPtr conn = fake_open(&f, &s, &l.seen);
    if (conn) {
        /* The fake daemon offers no keepalive: this is the stall timeout's
         * case alone. */
        CHECK_INT(virConnectSetKeepAlive(conn, 1, 1), 1);
        fake_go(&f);
        poll_until_closed(conn, &l, DEADLINE_MS + 15000, 12000);
        CHECK(l.closed_at >= DEADLINE_MS - 1000 && l.closed_at < DEADLINE_MS + 10000);
        /* Woken once, by the timer (and perhaps by the last of the burst). */
        CHECK(l.quiet_wakeups >= 1 && l.quiet_wakeups <= 3);
        printf("a daemon gone silent with output waiting: connection-closed after %lld ms, %d wake-ups in the "
               "silence\n", l.closed_at, l.quiet_wakeups);
        check_stopped_reading(conn, &l);
    }
    return finish(&f, &l);
}

int main(void)
{
    void *(*cases[])(void *) = {never_accepts, accepts_late, flood_never_read, close_during_flood,
                                silent_after_burst};
    enum { N = sizeof cases / sizeof cases[0] };
    pthread_t threads[N];
    long long t0 = now_ms();
    for (int i = 0; i < N; i++)
        pthread_create(&threads[i], NULL, cases[i], NULL);
    for (int i = 0; i < N; i++)
        pthread_join(threads[i], NULL);
    printf("stalls: %lld ms\n", now_ms() - t0);
    return check_done();
}
