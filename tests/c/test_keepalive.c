/* virConnectSetKeepAlive against a real private libvirtd (daemon.h): a daemon
 * that stops (SIGSTOP) is given up by keepalive alone, in a thread-free poll
 * loop on the event descriptor and on the event thread; a daemon that PINGs
 * us is answered and the connection stays up; the embedded driver has none. */
#include "remote.h"

/* Polls only the event descriptor and delivers when it is readable, for at
 * most `ms`, until `seen` holds a connection-closed; returns after how many
 * ms it came, or -1. Counts the loop's wake-ups in `*wakeups`. */
static long long poll_until_closed(virConnectPtr conn, Seen *seen, int ms, int *wakeups)
{
    long long start = now_ms(), deadline = start + ms;
    int fd = virConnectGetEventFD(conn);
    *wakeups = 0;
    while (now_ms() < deadline) {
        for (int i = 0; i < seen->count; i++)
            if (is_type(seen->xml[i], "connection-closed"))
                return now_ms() - start;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)(deadline - now_ms())) > 0) {
            (*wakeups)++;
            virDeliverEvents(conn);
        }
    }
    return -1;
}

/* The last event `seen` holds is connection-closed for keepalive, and calls
 * now fail with VIR_ERR_RPC saying so. */
static void expect_keepalive_end(virConnectPtr conn, const Seen *seen)
{
    CHECK(seen->count >= 1);
    if (seen->count >= 1)
        CHECK_CONTAINS(seen->xml[seen->count - 1], "<reason>keepalive</reason>");
    CHECK_INT(virDeliverEvents(conn), -1);
    CHECK_ERROR(VIR_ERR_RPC, "keepalive timeout");
}

/* interval 1, count 2: a stopped daemon is given up after about 3 s of
 * silence, with no thread, the loop woken by the timer (a few times, not a
 * busy loop). */
static void stopped_daemon_poll_loop(void)
{
    Daemon d;
    int threads = count_threads();
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    CHECK_INT(virConnectSetKeepAlive(conn, 1, 2), 0);
    kill(d.pid, SIGSTOP);
    int wakeups;
    long long closed = poll_until_closed(conn, &seen, 8000, &wakeups);
    CHECK(closed >= 2500 && closed <= 4000);
    CHECK(wakeups >= 2 && wakeups <= 10);
    CHECK_INT(count_threads(), threads);
    printf("a stopped daemon, poll loop: connection-closed after %lld ms, %d wake-ups\n", closed, wakeups);
    expect_keepalive_end(conn, &seen);
    CHECK_INT(virConnectClose(conn), 0);
    kill(d.pid, SIGCONT);
    seen_clear(&seen);
    case_close(&d, "keepalive gives a stopped daemon up, thread-free");
}

/* The same on the event thread: its handler sees connection-closed. */
static void stopped_daemon_event_thread(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Locked l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    CHECK(virConnectAddEventHandlerFull(conn, NULL, locked_handler, &l, locked_free, 0) >= 0);
    CHECK_INT(virConnectSetKeepAlive(conn, 1, 2), 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    long long t0 = now_ms();
    kill(d.pid, SIGSTOP);
    CHECK_INT(wait_locked(&l, &l.closed, 1, 8000), 1);
    long long closed = now_ms() - t0;
    CHECK(closed >= 2500 && closed <= 4000);
    printf("a stopped daemon, event thread: connection-closed after %lld ms\n", closed);
    pthread_mutex_lock(&l.mu);
    if (l.seen.count >= 1)
        CHECK_CONTAINS(l.seen.xml[l.seen.count - 1], "<reason>keepalive</reason>");
    pthread_mutex_unlock(&l.mu);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&l.freed), 1);
    kill(d.pid, SIGCONT);
    seen_clear(&l.seen);
    case_close(&d, "keepalive gives a stopped daemon up, on the event thread");
}

/* A daemon that PINGs every second and drops a client after two unanswered
 * ones, and our own keepalive (interval 1, count 2) that the daemon answers:
 * 30 s idle, the connection stays up, and an event still comes through. */
static void idle_daemon_stays_up(void)
{
    case_begin();
    Daemon d;
    daemon_start_with(&d, 0, "keepalive_interval = 1\nkeepalive_count = 2\n");
    virConnectPtr conn = open_remote(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    CHECK_INT(virConnectSetKeepAlive(conn, 1, 2), 0);
    int wakeups;
    CHECK_INT(poll_until_closed(conn, &seen, 30000, &wakeups), -1);
    CHECK_INT(seen.count, 0);
    /* About two PINGs a second (the daemon's and ours, answered). */
    CHECK(wakeups >= 20 && wakeups <= 200);
    printf("idle 30 s with keepalive both ways: up, %d wake-ups\n", wakeups);
    CHECK_INT(virsh(&d, "suspend test"), 0);
    CHECK_INT(deliver_until(conn, &seen, 1, 5000), 1);
    if (seen.count == 1)
        CHECK(is_type(seen.xml[0], "domain-state-transition"));
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
    case_close(&d, "an idle connection stays up with keepalive both ways");
}

/* Turned off, a stopped daemon goes unnoticed; bad connections say so. */
static void off_and_embedded(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    CHECK_INT(virConnectSetKeepAlive(conn, 1, 2), 0);
    CHECK_INT(virConnectSetKeepAlive(conn, 0, 2), 0);
    kill(d.pid, SIGSTOP);
    int wakeups;
    CHECK_INT(poll_until_closed(conn, &seen, 4000, &wakeups), -1);
    CHECK_INT(wakeups, 0);
    kill(d.pid, SIGCONT);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
    case_close(&d, "keepalive off: no PING, no timer");

    case_begin();
    virConnectPtr local = virConnectOpen(NULL);
    CHECK_INT(virConnectSetKeepAlive(local, 5, 5), -1);
    CHECK_ERROR(VIR_ERR_NO_SUPPORT, "embedded");
    CHECK_INT(virConnectClose(local), 0);
    CHECK_INT(virConnectSetKeepAlive(NULL, 5, 5), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "NULL");
    case_end("keepalive on the embedded driver and on NULL");
}

int main(void)
{
    main_thread = pthread_self();
    RUN(stopped_daemon_poll_loop());
    RUN(stopped_daemon_event_thread());
    RUN(off_and_embedded());
    RUN(idle_daemon_stays_up());
    return check_done();
}
