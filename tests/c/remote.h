/* What virevent's C tests of remote connections to a real private libvirt
 * daemon (daemon.h) share: test_remote.c (normal flows) and
 * test_remote_faults.c (the daemon dying). Counting this process's threads and
 * descriptors; a case with its own daemon and connection (case_open,
 * case_close); adding recording handlers and non-blocking streams, checked;
 * poll-and-deliver loops; reading event streams line by line; checking event
 * XML; a "flipper" process that makes the daemon send events as fast as virsh
 * goes; and a mutex-guarded record for handlers on the event thread. Only the
 * main thread may call what CHECKs. */
#ifndef VIREVENT_REMOTE_H
#define VIREVENT_REMOTE_H

#include <dirent.h>
#include <pthread.h>
#include <time.h>

#include "daemon.h"

/* The test driver's domain `test`. */
#define TEST_UUID "6695eb01-f6a4-8304-79aa-97f2502e193f"

/* The main thread, for locked_handler's off_main (main sets it where that
 * count matters). */
static pthread_t main_thread;


/* ---- connections and deliveries ----------------------------------------------------- */

/* A connection to the daemon, checked: with no error left; the test ends
 * (stopping the daemon) if it does not open. */
static inline virConnectPtr open_remote(Daemon *d)
{
    virConnectPtr conn = virConnectOpen(d->uri);
    CHECK(conn != NULL);
    if (!conn) {
        fprintf(stderr, "  cannot open %s: %d %s\n", d->uri, virGetLastErrorCode(), virGetLastErrorMessage());
        daemon_stop(d);
        exit(check_done());
    }
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    return conn;
}

/* Begins a case (case_begin) with a new daemon, and opens a connection to it
 * as open_remote does. */
static inline virConnectPtr case_open(Daemon *d)
{
    case_begin();
    daemon_start(d);
    return open_remote(d);
}

/* Ends a case begun by case_open: stops the daemon, and names the case if
 * one of its checks failed. */
static inline void case_close(Daemon *d, const char *what)
{
    daemon_stop(d);
    case_end(what);
}

/* Adds a handler that records into `seen` (checked). */
static inline void add_seen(virConnectPtr conn, const char *const *filters, Seen *seen)
{
    CHECK(virConnectAddEventHandler(conn, filters, seen_handler, seen) >= 0);
}

/* Adds a handler that records into `rec`, with rec_free (checked); returns its
 * id. */
static inline int add_rec(virConnectPtr conn, const char *const *filters, Rec *rec)
{
    int id = virConnectAddEventHandlerFull(conn, filters, rec_handler, rec, rec_free, 0);
    CHECK(id >= 0);
    return id;
}

/* Opens a non-blocking event stream (checked); returns its descriptor. */
static inline int open_stream(virConnectPtr conn, const char *const *filters)
{
    int stream = virConnectOpenEventStream(conn, filters, VIR_EVENT_STREAM_NONBLOCK);
    CHECK(stream >= 0);
    return stream;
}

/* Waits on the event descriptor and delivers until `seen` holds `want` events,
 * `ms` pass, or a delivery fails; returns how many it holds. */
static inline int deliver_until(virConnectPtr conn, Seen *seen, int want, int ms)
{
    int fd = virConnectGetEventFD(conn);
    long long deadline = now_ms() + ms;
    while (seen->count < want) {
        long long left = deadline - now_ms();
        if (left <= 0 || fd < 0)
            break;
        if (readable_within(fd, (int)(left > 100 ? 100 : left)) && virDeliverEvents(conn) < 0)
            break;
    }
    return seen->count;
}

/* Delivers for `ms` whatever comes; returns the number of handler calls. */
static inline int deliver_for(virConnectPtr conn, int ms)
{
    int fd = virConnectGetEventFD(conn), calls = 0;
    long long deadline = now_ms() + ms;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0 || fd < 0)
            break;
        if (readable_within(fd, (int)left)) {
            int n = virDeliverEvents(conn);
            if (n < 0)
                break;
            calls += n;
        }
    }
    return calls;
}

/* ---- event streams: reading lines ------------------------------------------------------ */

/* Reads what non-blocking `fd` has now, appending to `buf`; returns bytes
 * read, 0 at end of file, -1 when nothing waits. */
static inline int read_some(int fd, char *buf, size_t size)
{
    size_t len = strlen(buf);
    if (len + 1 >= size)
        return -1;
    ssize_t n = read(fd, buf + len, size - 1 - len);
    if (n < 0)
        return -1;
    buf[len + (size_t)n] = '\0';
    return (int)n;
}

/* Reads non-blocking `fd` until end of file or `ms` pass; returns whether it
 * reached end of file. */
static inline int read_to_eof(int fd, char *buf, size_t size, int ms)
{
    long long deadline = now_ms() + ms;
    while (now_ms() < deadline) {
        int n = read_some(fd, buf, size);
        if (n == 0)
            return 1;
        if (n < 0)
            readable_within(fd, 50);
    }
    return 0;
}

/* The number of "\n"-ended lines in `buf`. */
static inline int lines_in(const char *buf)
{
    int n = 0;
    for (const char *p = buf; (p = strchr(p, '\n')) != NULL; p++)
        n++;
    return n;
}

/* Reads non-blocking `stream` into `buf` until it holds `want` lines or `ms`
 * pass; returns the lines it holds. What found the stream full waits in its
 * queue for the next delivery (or the event thread): `conn`, when given, is
 * asked to deliver meanwhile. */
static inline int read_lines(virConnectPtr conn, int stream, char *buf, size_t size, int want, int ms)
{
    long long deadline = now_ms() + ms;
    while (lines_in(buf) < want && now_ms() < deadline) {
        if (read_some(stream, buf, size) > 0)
            continue;
        if (conn)
            virDeliverEvents(conn);
        readable_within(stream, 20);
    }
    return lines_in(buf);
}

/* Line `i` (from 0) of `buf` without its "\n", copied into `out`. */
static inline const char *line_of(const char *buf, int i, char *out, size_t size)
{
    out[0] = '\0';
    const char *p = buf;
    for (; i > 0 && p; i--) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p)
        return out;
    const char *end = strchr(p, '\n');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

/* ---- event XML ----------------------------------------------------------------------------- */

/* The text of the first <name> element of `xml`, copied into `out` ("" when
 * absent). */
static inline const char *field(const char *xml, const char *name, char *out, size_t size)
{
    char open[64], close[64];
    out[0] = '\0';
    snprintf(open, sizeof open, "<%s>", name);
    snprintf(close, sizeof close, "</%s>", name);
    const char *p = xml ? strstr(xml, open) : NULL;
    if (!p)
        return out;
    p += strlen(open);
    const char *q = strstr(p, close);
    if (!q)
        return out;
    size_t n = (size_t)(q - p) < size - 1 ? (size_t)(q - p) : size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

/* The root's start tag is exactly <event type="TYPE" timestamp="T" seq="SEQ">,
 * with T decimal seconds (digits, '.', digits) within a minute of now; returns
 * what follows the start tag. */
static inline const char *check_head(const char *xml, const char *type, long long seq)
{
    char ts[64], head[256];
    CHECK(xml != NULL);
    if (!xml)
        return "";
    attr(xml, "timestamp", ts, sizeof ts);
    snprintf(head, sizeof head, "<event type=\"%s\" timestamp=\"%s\" seq=\"%lld\">", type, ts, seq);
    CHECK(strncmp(xml, head, strlen(head)) == 0);
    if (strncmp(xml, head, strlen(head)) != 0)
        fprintf(stderr, "  event \"%s\"\n  does not begin \"%s\"\n", xml, head);
    size_t digits = strspn(ts, "0123456789");
    CHECK(digits > 0 && ts[digits] == '.' && strspn(ts + digits + 1, "0123456789") > 0 &&
          ts[digits + 1 + strspn(ts + digits + 1, "0123456789")] == '\0');
    double t = strtod(ts, NULL), now = (double)time(NULL);
    CHECK(t > now - 60 && t < now + 60);
    const char *body = strchr(xml, '>');
    return body ? body + 1 : "";
}

/* `xml` is the domain-state-transition with exactly these seq and children. */
static inline void expect_transition(const char *xml, long long seq, int id, const char *name, const char *uuid,
                                     const char *old_state, const char *new_state, const char *reason)
{
    char want[1024];
    snprintf(want, sizeof want,
             "<domain-id>%d</domain-id><domain-name>%s</domain-name><domain-uuid>%s</domain-uuid>"
             "<old-state>%s</old-state><new-state>%s</new-state><reason>%s</reason></event>",
             id, name, uuid, old_state, new_state, reason);
    CHECK_STR(check_head(xml, "domain-state-transition", seq), want);
}

/* `xml` is connection-closed with this seq and reason. */
static inline void expect_closed(const char *xml, long long seq, const char *reason)
{
    char want[128];
    snprintf(want, sizeof want, "<reason>%s</reason></event>", reason);
    CHECK_STR(check_head(xml, "connection-closed", seq), want);
}

/* Runs `call` (checks) and, if one of them failed, says at which line of the
 * test it was expected. */
#define EXPECTED_HERE(call)                                                   \
    do {                                                                      \
        int failed_ = check_failed;                                           \
        call;                                                                 \
        if (check_failed != failed_)                                          \
            fprintf(stderr, "  ^ expected at line %d\n", __LINE__);           \
    } while (0)

#define EXPECT_TRANSITION(...) EXPECTED_HERE(expect_transition(__VA_ARGS__))
#define EXPECT_CLOSED(...) EXPECTED_HERE(expect_closed(__VA_ARGS__))

/* ---- events while the test runs: the flipper ------------------------------------------ */

/* Starts a process group that drives `test` through suspend/resume as fast as
 * virsh goes (100 commands per virsh run), until virsh fails; returns its id. */
static inline pid_t start_flipper(const Daemon *d)
{
    /* The child must not write what this process's stdio still holds (under
     * valgrind its exit flushes it). */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        char cmd[4096];
        int n = snprintf(cmd, sizeof cmd, "virsh -q -c '%s' '", d->uri);
        for (int i = 0; i < 50; i++)
            n += snprintf(cmd + n, sizeof cmd - (size_t)n, "suspend test; resume test; ");
        snprintf(cmd + n, sizeof cmd - (size_t)n, "' >/dev/null 2>&1");
        for (int i = 0; i < 1000; i++)
            if (system(cmd) != 0)
                break;
        _exit(0);
    }
    if (pid > 0)
        setpgid(pid, pid);
    return pid;
}

/* Ends the flipper's process group (by its id) and reaps it. */
static inline void stop_flipper(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* ---- the event thread's handler ---------------------------------------------------------- */

/* What a handler called on the event thread saw, under a mutex. */
typedef struct {
    pthread_mutex_t mu;
    Seen seen;
    int closed;       /* connection-closed events among them */
    int off_main;     /* calls made on another thread than main_thread */
    atomic_int freed; /* runs of locked_free */
} Locked;

static inline void locked_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Locked *l = arg;
    pthread_mutex_lock(&l->mu);
    seen_handler(conn, eventXML, &l->seen);
    if (is_type(eventXML, "connection-closed"))
        l->closed++;
    if (!pthread_equal(pthread_self(), main_thread))
        l->off_main++;
    pthread_mutex_unlock(&l->mu);
}

static inline void locked_free(void *arg)
{
    atomic_fetch_add(&((Locked *)arg)->freed, 1);
}

/* The value of `*count`, one of `l`'s counts (&l->seen.count, &l->closed). */
static inline int locked_get(Locked *l, const int *count)
{
    pthread_mutex_lock(&l->mu);
    int n = *count;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* Waits, for at most `ms`, until `*count`, one of `l`'s counts, is at least
 * `want`; returns it. */
static inline int wait_locked(Locked *l, const int *count, int want, int ms)
{
    long long deadline = now_ms() + ms;
    while (locked_get(l, count) < want && now_ms() < deadline)
        sleep_ms(2);
    return locked_get(l, count);
}

/* Runs one case and says how long it took. */
#define RUN(call)                                                             \
    do {                                                                      \
        long long start_ = now_ms();                                          \
        call;                                                                 \
        printf("  %-40s %5lld ms\n", #call, now_ms() - start_);              \
    } while (0)

/* Runs `virsh CMD` and waits for the one event it causes. */
static inline void step(const Daemon *d, virConnectPtr conn, Seen *seen, const char *cmd)
{
    int before = seen->count;
    int status = virsh(d, "%s", cmd);
    CHECK_INT(status, 0);
    if (status != 0)
        fprintf(stderr, "  virsh %s failed\n", cmd);
    int got = deliver_until(conn, seen, before + 1, 5000);
    CHECK_INT(got, before + 1);
    if (got != before + 1)
        fprintf(stderr, "  after virsh %s\n", cmd);
}

/* Opens `uri` to the daemon `d` (checked), drives the domain test through
 * suspend and resume and checks both events, with this process's thread
 * count `threads` before and after; returns the connection, or NULL. The
 * test driver's default state lives while a connection is open: each call
 * with no other connection starts from a running domain. */
static inline virConnectPtr suspend_resume_over(const Daemon *d, const char *uri, int threads)
{
    virConnectPtr conn = virConnectOpen(uri);
    CHECK(conn != NULL);
    if (!conn) {
        fprintf(stderr, "  cannot open %s: %d %s\n", uri, virGetLastErrorCode(), virGetLastErrorMessage());
        return NULL;
    }
    CHECK_INT(count_threads(), threads);
    Seen seen = {0};
    int id = virConnectAddEventHandler(conn, NULL, seen_handler, &seen);
    CHECK(id >= 0);
    step(d, conn, &seen, "suspend test");
    step(d, conn, &seen, "resume test");
    if (seen.count == 2) {
        EXPECT_TRANSITION(seen.xml[0], 1, 1, "test", TEST_UUID, "running", "paused", "suspended-paused");
        EXPECT_TRANSITION(seen.xml[1], 2, 1, "test", TEST_UUID, "paused", "running", "resumed-unpaused");
    }
    CHECK_INT(count_threads(), threads);
    /* `seen` ends here: its handler goes before closing could call it. */
    CHECK_INT(virConnectRemoveEventHandler(conn, id), 0);
    seen_clear(&seen);
    return conn;
}

#endif
