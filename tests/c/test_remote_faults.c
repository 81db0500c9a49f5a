/* Remote connections whose libvirt daemon dies (docs/protocol.md section 10):
 * killed with SIGTERM or SIGKILL while idle, while events flow, and while the
 * event thread runs. Handlers with a NULL filter (or one naming
 * connection-closed) get exactly one connection-closed event (reason eof),
 * after every event that arrived before it; streams get it as a line; the event
 * descriptor stays readable; later deliveries and emits fail with
 * VIR_ERR_NO_CONNECT; close works; reconnecting fails as the socket file says
 * (refused after SIGKILL, which leaves it; missing after SIGTERM). Only the main
 * thread uses CHECK; the event thread's handler records what it saw. */
#include "remote.h"

/* ---- helpers ------------------------------------------------------------------ */

/* The CPU time this process has used, in ms. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Every call that needs the link fails with `code` (the link's error), naming
 * the socket; the descriptor is still given; removal still works. */
static void check_calls_fail(virConnectPtr conn, const Daemon *d, int fd, int code)
{
    CHECK_INT(virDeliverEvents(conn), -1);
    CHECK_ERROR(code, d->sock);
    CHECK_INT(virDeliverEvents(conn), -1);
    CHECK_INT(virGetLastErrorCode(), code);
    CHECK_INT(virConnectEmitEvent(conn, "<event type=\"late\"/>"), -1);
    CHECK_ERROR(code, d->sock);
    Rec late = {0};
    CHECK_INT(virConnectAddEventHandlerFull(conn, NULL, rec_handler, &late, rec_free, 0), -1);
    CHECK_ERROR(code, d->sock);
    CHECK_INT(late.freed, 1);
    CHECK_INT(virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK), -1);
    CHECK_ERROR(code, d->sock);
    CHECK_INT(virConnectStartEventThread(conn), -1);
    CHECK_ERROR(code, d->sock);
    CHECK_INT(virConnectGetEventFD(conn), fd);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    /* The descriptor stays readable. */
    CHECK_INT(readable_within(fd, 0), 1);
    CHECK_INT(virDeliverEvents(conn), -1);
    CHECK_INT(readable_within(fd, 0), 1);
}

/* Reconnecting to the dead daemon fails with VIR_ERR_NO_CONNECT naming the
 * socket and why: the socket file left by SIGKILL refuses, the one SIGTERM
 * removed is missing. */
static void check_reconnect_fails(const Daemon *d, int sig)
{
    struct stat st;
    int exists = stat(d->sock, &st) == 0;
    CHECK_INT(exists, sig == SIGKILL);
    CHECK(virConnectOpen(d->uri) == NULL);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, d->sock);
    CHECK_CONTAINS(virGetLastErrorMessage(), sig == SIGKILL ? "Connection refused" : "No such file or directory");
}

/* ---- killed while idle ---------------------------------------------------------- */

static void killed_idle(int sig)
{
    Daemon d;
    int threads = count_threads();
    virConnectPtr conn = case_open(&d);
    Rec all = {0}, closed = {0}, domains = {0}, eof = {0};
    const char *const fclosed[] = {"connection-closed", NULL};
    const char *const fdomains[] = {"domain-*", NULL};
    const char *const feof[] = {"/event[reason='eof']", NULL};
    add_rec(conn, NULL, &all);
    add_rec(conn, fclosed, &closed);
    int domains_id = add_rec(conn, fdomains, &domains);
    add_rec(conn, feof, &eof);
    int stream = open_stream(conn, NULL);
    int dstream = open_stream(conn, fdomains);
    int fd = virConnectGetEventFD(conn);

    CHECK_INT(virsh(&d, "suspend test"), 0);
    CHECK_INT(deliver_until(conn, &all.seen, 1, 5000), 1);
    CHECK_INT(readable_within(fd, 0), 0);

    long long t0 = now_ms();
    daemon_kill(&d, sig);
    /* Noticed at once (no keepalive needed): the descriptor turns readable. */
    CHECK_INT(readable_within(fd, 3000), 1);
    CHECK(now_ms() - t0 < 2000);
    CHECK_INT(deliver_until(conn, &all.seen, 2, 3000), 2);
    CHECK_INT(all.seen.count, 2);
    CHECK_INT(closed.seen.count, 1);
    CHECK_INT(eof.seen.count, 1);
    CHECK_INT(domains.seen.count, 1);
    if (all.seen.count == 2) {
        CHECK(is_type(all.seen.xml[0], "domain-state-transition"));
        EXPECT_CLOSED(all.seen.xml[1], 2, "eof");
    }
    if (closed.seen.count == 1 && all.seen.count == 2)
        CHECK_STR(closed.seen.xml[0], all.seen.xml[1]);

    /* From now on: fails with VIR_ERR_NO_CONNECT; no second closed event. */
    check_calls_fail(conn, &d, fd, VIR_ERR_NO_CONNECT);
    CHECK_INT(all.seen.count, 2);
    CHECK_INT(closed.seen.count, 1);
    /* Removing a handler still works, and runs its freecb. */
    CHECK_INT(virConnectRemoveEventHandler(conn, domains_id), 0);
    CHECK_INT(domains.freed, 1);
    /* Domain calls are still not supported (or the link is gone). */
    CHECK(virDomainLookupByName(conn, "test") == NULL);
    CHECK(virGetLastErrorCode() == VIR_ERR_NO_SUPPORT || virGetLastErrorCode() == VIR_ERR_NO_CONNECT);

    /* The streams: the NULL-filter one got the event and the closed line. */
    char buf[4096] = "", dbuf[4096] = "", line[1024];
    CHECK_INT(read_lines(conn, stream, buf, sizeof buf, 2, 2000), 2);
    if (all.seen.count == 2) {
        CHECK_STR(line_of(buf, 0, line, sizeof line), all.seen.xml[0]);
        CHECK_STR(line_of(buf, 1, line, sizeof line), all.seen.xml[1]);
    }
    CHECK_INT(read_lines(conn, dstream, dbuf, sizeof dbuf, 1, 2000), 1);
    CHECK_INT(count_threads(), threads);

    t0 = now_ms();
    CHECK_INT(virConnectClose(conn), 0);
    CHECK(now_ms() - t0 < 1000);
    CHECK_INT(all.freed, 1);
    CHECK_INT(closed.freed, 1);
    CHECK_INT(eof.freed, 1);
    CHECK_INT(domains.freed, 1);
    /* Closing ends the streams, with nothing more in them. */
    CHECK_INT(read_to_eof(stream, buf, sizeof buf, 2000), 1);
    CHECK_INT(lines_in(buf), 2);
    CHECK_INT(read_to_eof(dstream, dbuf, sizeof dbuf, 2000), 1);
    CHECK_INT(lines_in(dbuf), 1);
    close(stream);
    close(dstream);
    CHECK_INT(count_threads(), threads);

    check_reconnect_fails(&d, sig);
    seen_clear(&all.seen);
    seen_clear(&closed.seen);
    seen_clear(&domains.seen);
    seen_clear(&eof.seen);
    case_close(&d, sig == SIGKILL ? "SIGKILL while idle" : "SIGTERM while idle");
}

/* With no handler and no stream, the loss shows as a failed delivery. */
static void killed_unwatched(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    int fd = virConnectGetEventFD(conn);
    CHECK_INT(virDeliverEvents(conn), 0);
    daemon_kill(&d, SIGKILL);
    CHECK_INT(readable_within(fd, 3000), 1);
    CHECK_INT(virDeliverEvents(conn), -1);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, d.sock);
    CHECK_INT(readable_within(fd, 0), 1);
    /* A handler added now is refused: it could never get an event. */
    Seen seen = {0};
    CHECK_INT(virConnectAddEventHandler(conn, NULL, seen_handler, &seen), -1);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_NO_CONNECT);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(seen.count, 0);
    case_close(&d, "SIGKILL with no handler");
}

/* ---- killed while events flow --------------------------------------------------- */

/* Checks a run of events ending in the closed event: contiguous seqs from 1,
 * state transitions of test that alternate running/paused consistently (the
 * first from running), exactly one connection-closed, last, reason eof. */
static void check_run(Seen *seen)
{
    int bad = 0, closed = 0;
    char prev_new[32] = "running";
    for (int i = 0; i < seen->count; i++) {
        const char *xml = seen->xml[i];
        if (seq_of(xml) != i + 1)
            bad++;
        if (is_type(xml, "connection-closed")) {
            closed++;
            if (i != seen->count - 1)
                bad++;
            continue;
        }
        char old_state[32], new_state[32], reason[64], id[16], name[32], uuid[64];
        field(xml, "old-state", old_state, sizeof old_state);
        field(xml, "new-state", new_state, sizeof new_state);
        field(xml, "reason", reason, sizeof reason);
        field(xml, "domain-id", id, sizeof id);
        field(xml, "domain-name", name, sizeof name);
        field(xml, "domain-uuid", uuid, sizeof uuid);
        int ok = is_type(xml, "domain-state-transition") && strcmp(id, "1") == 0 && strcmp(name, "test") == 0 &&
                 strcmp(uuid, TEST_UUID) == 0 && strcmp(old_state, prev_new) == 0 &&
                 ((strcmp(old_state, "running") == 0 && strcmp(new_state, "paused") == 0 &&
                   strcmp(reason, "suspended-paused") == 0) ||
                  (strcmp(old_state, "paused") == 0 && strcmp(new_state, "running") == 0 &&
                   strcmp(reason, "resumed-unpaused") == 0));
        if (!ok) {
            if (bad < 5)
                fprintf(stderr, "  event %d out of line (previous new-state %s): %s\n", i, prev_new, xml);
            bad++;
        }
        snprintf(prev_new, sizeof prev_new, "%s", new_state);
    }
    CHECK_INT(bad, 0);
    CHECK_INT(closed, 1);
    if (seen->count > 0)
        EXPECT_CLOSED(seen->xml[seen->count - 1], seen->count, "eof");
}

static void killed_while_flowing(int sig)
{
    Daemon d;
    int threads = count_threads();
    virConnectPtr conn = case_open(&d);
    /* Up to 256 events are kept by Seen; stop well before. */
    Rec all = {0}, closed = {0};
    const char *const fclosed[] = {"connection-closed", NULL};
    add_rec(conn, NULL, &all);
    add_rec(conn, fclosed, &closed);
    int stream = open_stream(conn, NULL);
    int fd = virConnectGetEventFD(conn);

    pid_t flipper = start_flipper(&d);
    CHECK(flipper > 0);
    long long t0 = now_ms();
    CHECK(deliver_until(conn, &all.seen, 40, 8000) >= 40);
    int before = all.seen.count;
    long long took = now_ms() - t0;
    /* Let events pile up unread in the socket, then kill the daemon. */
    sleep_ms(50);
    daemon_kill(&d, sig);
    /* Deliver what was sent before the death, then the closed event. */
    long long deadline = now_ms() + 5000;
    while (closed.seen.count == 0 && all.seen.count < 256 && now_ms() < deadline)
        if (readable_within(fd, 100) && virDeliverEvents(conn) < 0)
            break;
    stop_flipper(flipper);
    printf("%s while flowing: %d events in %lld ms, then %d delivered after the kill\n",
           sig == SIGKILL ? "SIGKILL" : "SIGTERM", before, took, all.seen.count - before);

    CHECK(all.seen.count < 256);
    CHECK_INT(closed.seen.count, 1);
    check_run(&all.seen);
    if (closed.seen.count == 1 && all.seen.count > 0)
        CHECK_STR(closed.seen.xml[0], all.seen.xml[all.seen.count - 1]);
    check_calls_fail(conn, &d, fd, VIR_ERR_NO_CONNECT);
    CHECK_INT(closed.seen.count, 1);

    /* The stream carried the same lines. */
    static char buf[256 * 1024];
    buf[0] = '\0';
    CHECK_INT(read_lines(conn, stream, buf, sizeof buf, all.seen.count, 3000), all.seen.count);
    int differ = 0;
    static char line[2048];
    for (int i = 0; i < all.seen.count && i < lines_in(buf); i++)
        if (strcmp(line_of(buf, i, line, sizeof line), all.seen.xml[i]) != 0)
            differ++;
    CHECK_INT(differ, 0);

    CHECK_INT(count_threads(), threads);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(all.freed, 1);
    CHECK_INT(closed.freed, 1);
    CHECK_INT(read_to_eof(stream, buf, sizeof buf, 2000), 1);
    close(stream);
    check_reconnect_fails(&d, sig);
    seen_clear(&all.seen);
    seen_clear(&closed.seen);
    case_close(&d, sig == SIGKILL ? "SIGKILL while events flow" : "SIGTERM while events flow");
}

/* ---- killed while the event thread runs ------------------------------------------ */

static void killed_with_event_thread(int sig, int flowing)
{
    Daemon d;
    int threads = count_threads();
    virConnectPtr conn = case_open(&d);
    Locked l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    CHECK(virConnectAddEventHandlerFull(conn, NULL, locked_handler, &l, locked_free, 0) >= 0);
    int stream = open_stream(conn, NULL);
    int fd = virConnectGetEventFD(conn);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    CHECK_INT(count_threads(), threads + 1);

    pid_t flipper = 0;
    if (flowing) {
        flipper = start_flipper(&d);
        CHECK(wait_locked(&l, &l.seen.count, 40, 8000) >= 40);
    } else {
        CHECK_INT(virsh(&d, "suspend test"), 0);
        CHECK_INT(wait_locked(&l, &l.seen.count, 1, 8000), 1);
    }
    daemon_kill(&d, sig);
    CHECK_INT(wait_locked(&l, &l.closed, 1, 5000), 1);
    stop_flipper(flipper);

    /* Nothing spins once the link is gone: the process stays nearly idle. */
    double cpu0 = cpu_ms();
    sleep_ms(300);
    double used = cpu_ms() - cpu0;
    CHECK(used < 60);
    if (used >= 60)
        fprintf(stderr, "  %.1f ms of CPU in 300 ms after the loss\n", used);
    CHECK_INT(locked_get(&l, &l.closed), 1);
    CHECK_INT(count_threads(), threads + 1);

    /* Meanwhile: deliveries make no calls, and emits fail. */
    int n = virDeliverEvents(conn);
    CHECK(n == 0 || (n == -1 && virGetLastErrorCode() == VIR_ERR_NO_CONNECT));
    printf("event thread, %s%s: %.1f ms of CPU in the 300 ms after the loss; virDeliverEvents gave %d\n",
           sig == SIGKILL ? "SIGKILL" : "SIGTERM", flowing ? " while events flow" : "", used, n);
    CHECK_INT(virConnectEmitEvent(conn, "<event type=\"late\"/>"), -1);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, d.sock);
    CHECK_INT(virConnectGetEventFD(conn), fd);

    pthread_mutex_lock(&l.mu);
    check_run(&l.seen);
    pthread_mutex_unlock(&l.mu);

    CHECK_INT(virConnectStopEventThread(conn), 0);
    CHECK_INT(wait_threads(threads), threads);
    /* Delivery is back here, and it fails as without the thread. */
    CHECK_INT(virDeliverEvents(conn), -1);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, d.sock);
    CHECK_INT(virConnectStartEventThread(conn), -1);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, d.sock);
    CHECK_INT(count_threads(), threads);
    CHECK_INT(readable_within(fd, 0), 1);

    /* The stream got every event and the closed line. */
    static char buf[256 * 1024];
    buf[0] = '\0';
    int count = locked_get(&l, &l.seen.count);
    CHECK_INT(read_lines(conn, stream, buf, sizeof buf, count, 3000), count);
    pthread_mutex_lock(&l.mu);
    char line[1024];
    if (l.seen.count > 0)
        CHECK_STR(line_of(buf, l.seen.count - 1, line, sizeof line), l.seen.xml[l.seen.count - 1]);
    pthread_mutex_unlock(&l.mu);

    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&l.freed), 1);
    CHECK_INT(read_to_eof(stream, buf, sizeof buf, 2000), 1);
    close(stream);
    check_reconnect_fails(&d, sig);
    seen_clear(&l.seen);
    pthread_mutex_destroy(&l.mu);
    case_close(&d, flowing ? "killed with the event thread running, events flowing"
                     : "killed with the event thread running, idle");
}

/* The thread is still running at close after the loss: close stops it. */
static void close_with_thread_after_loss(void)
{
    Daemon d;
    int threads = count_threads();
    virConnectPtr conn = case_open(&d);
    Locked l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    CHECK(virConnectAddEventHandlerFull(conn, NULL, locked_handler, &l, locked_free, 0) >= 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    daemon_kill(&d, SIGTERM);
    CHECK_INT(wait_locked(&l, &l.closed, 1, 5000), 1);
    long long t0 = now_ms();
    CHECK_INT(virConnectClose(conn), 0);
    CHECK(now_ms() - t0 < 1000);
    CHECK_INT(wait_threads(threads), threads);
    CHECK_INT(atomic_load(&l.freed), 1);
    CHECK_INT(l.seen.count, 1);
    if (l.seen.count == 1)
        EXPECT_CLOSED(l.seen.xml[0], 1, "eof");
    seen_clear(&l.seen);
    pthread_mutex_destroy(&l.mu);
    case_close(&d, "close with the event thread running after the loss");
}

/* ---- closed before the loss was noticed -------------------------------------------- */

/* The daemon is gone but nothing has read the end of file yet: close neither
 * hangs nor raises SIGPIPE (the goodbye calls fail), and the stream still gets
 * one connection-closed line, then end of file. Its reason is the loss's, as
 * the goodbye found it (eof, or error when writing to the dead socket fails),
 * not client. */
static void close_before_noticing(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Rec rec = {0};
    add_rec(conn, NULL, &rec);
    int stream = open_stream(conn, NULL);
    daemon_kill(&d, SIGKILL);
    long long t0 = now_ms();
    CHECK_INT(virConnectClose(conn), 0);
    CHECK(now_ms() - t0 < 1000);
    CHECK_INT(rec.freed, 1);
    CHECK_INT(rec.seen.count, 0);
    char buf[4096] = "", line[1024];
    CHECK_INT(read_to_eof(stream, buf, sizeof buf, 2000), 1);
    CHECK_INT(lines_in(buf), 1);
    line_of(buf, 0, line, sizeof line);
    CHECK(is_type(line, "connection-closed"));
    CHECK_INT(seq_of(line), 1);
    char reason[16];
    field(line, "reason", reason, sizeof reason);
    int lost = strcmp(reason, "eof") == 0 || strcmp(reason, "error") == 0;
    CHECK(lost);
    if (!lost)
        fprintf(stderr, "  closed with reason \"%s\", not the loss's\n", reason);
    close(stream);
    case_close(&d, "close after the daemon died, before the loss was read");
}

int main(void)
{
    long long t0 = now_ms();
    RUN(killed_idle(SIGTERM));
    RUN(killed_idle(SIGKILL));
    RUN(killed_unwatched());
    RUN(killed_while_flowing(SIGKILL));
    RUN(killed_while_flowing(SIGTERM));
    RUN(killed_with_event_thread(SIGKILL, 0));
    RUN(killed_with_event_thread(SIGTERM, 1));
    RUN(close_with_thread_after_loss());
    RUN(close_before_noticing());
    printf("test_remote_faults: %lld ms\n", now_ms() - t0);
    return check_done();
}
