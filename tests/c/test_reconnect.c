/* virConnectSetReconnect against a real private libvirtd (daemon.h) that is
 * stopped and started again in its folder: the exact events a handler sees
 * (connection-lost, the resync's differences, connection-restored, then live
 * events, seqs without a gap), with changes made while it was away and after
 * it came back; SIGTERM and SIGKILL, idle and while events flow; a daemon
 * away for 10 s (attempts spaced by the backoff, no busy loop, no delivery
 * that blocks); on the event thread; close and turning it off during an
 * outage; and the calls' bad arguments. The test driver's default state
 * lives in the daemon's memory, so a restart brings back the domain `test`
 * running, the network `default` and the pool `default-pool` active: what
 * the test changed before the restart is what the resync must report. */
#include "remote.h"

/* Polls the event descriptor and delivers until `seen` holds an event of
 * `type` after index `from`, for at most `ms`; returns its index or -1.
 * Counts wake-ups and the longest delivery call (ms). */
static int deliver_until_type(virConnectPtr conn, Seen *seen, int from, const char *type, int ms, int *wakeups,
                              long long *longest)
{
    int fd = virConnectGetEventFD(conn);
    long long deadline = now_ms() + ms;
    for (;;) {
        for (int i = from; i < seen->count; i++)
            if (is_type(seen->xml[i], type))
                return i;
        long long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        if (readable_within(fd, (int)left)) {
            if (wakeups)
                (*wakeups)++;
            long long t0 = now_ms();
            CHECK(virDeliverEvents(conn) >= 0);
            if (longest && now_ms() - t0 > *longest)
                *longest = now_ms() - t0;
        }
    }
}

/* The seqs of `seen` from index `from` on follow each other by one. */
static void expect_consecutive(const Seen *seen, int from)
{
    for (int i = from + 1; i < seen->count; i++)
        CHECK_INT(seq_of(seen->xml[i]), seq_of(seen->xml[i - 1]) + 1);
}

/* `xml` is connection-lost with this reason and a message. */
static void expect_lost(const char *xml, const char *reason)
{
    char got[64], message[512];
    CHECK(is_type(xml, "connection-lost"));
    CHECK_STR(field(xml, "reason", got, sizeof got), reason);
    CHECK(strlen(field(xml, "message", message, sizeof message)) > 0);
}

/* `xml` is connection-restored after at least `min_attempts` attempts, naming
 * domain-reboot among the event types that may have been missed and not the
 * lifecycle, which the resync recovered; returns its attempts. */
static long long expect_restored(const char *xml, int min_attempts)
{
    char attempts[32], start[32], end[32];
    CHECK(is_type(xml, "connection-restored"));
    long long n = atoll(field(xml, "attempts", attempts, sizeof attempts));
    CHECK(n >= min_attempts);
    CHECK(strtod(field(xml, "outage-start", start, sizeof start), NULL) > 0);
    CHECK(strtod(field(xml, "outage-end", end, sizeof end), NULL) >= strtod(start, NULL));
    CHECK_CONTAINS(xml, "<may-have-missed><event-type>domain-reboot</event-type>");
    CHECK(strstr(xml, "<event-type>domain-state-transition</event-type>") == NULL);
    CHECK(strstr(xml, "<event-type>network-lifecycle</event-type>") == NULL);
    return n;
}

/* `xml` is a network's or pool's lifecycle event, as a resync makes it. */
static void expect_object_resync(const char *xml, const char *type, const char *name_tag, const char *name,
                                 const char *lifecycle)
{
    char got[128];
    CHECK(is_type(xml, type));
    CHECK_STR(field(xml, name_tag, got, sizeof got), name);
    CHECK_STR(field(xml, "lifecycle", got, sizeof got), lifecycle);
    CHECK_STR(field(xml, "reason", got, sizeof got), "resync");
}

/* Changes before the restart (a domain defined, `test` suspended, the
 * network and the pool stopped), the daemon ended by `sig` while idle, a
 * second away, started again: the resync reports each change undone by the
 * restart, in its order, then connection-restored; a change made after it
 * comes through live; seqs run on without a gap; no thread is added. */
static void restart_while_idle(int sig)
{
    Daemon d;
    int threads = count_threads();
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    CHECK_INT(virConnectSetReconnect(conn, 100, 1000, 0), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/extra.xml", d.dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("<domain type='test'><name>extra</name><memory>8192</memory><os><type>hvm</type></os></domain>", f);
        fclose(f);
    }
    step(&d, conn, &seen, "suspend test");
    char cmd[400];
    snprintf(cmd, sizeof cmd, "define %s", path);
    step(&d, conn, &seen, cmd);
    step(&d, conn, &seen, "net-destroy default");
    step(&d, conn, &seen, "pool-destroy default-pool");
    int before = seen.count;
    CHECK_INT(before, 4);
    daemon_kill(&d, sig);
    int lost = deliver_until_type(conn, &seen, before, "connection-lost", 5000, NULL, NULL);
    CHECK_INT(lost, before);
    if (lost >= 0)
        expect_lost(seen.xml[lost], "eof");
    /* Away for a second: attempts fail (no socket, or nobody behind it). */
    long long longest = 0;
    CHECK_INT(deliver_until_type(conn, &seen, before + 1, "connection-restored", 1000, NULL, &longest), -1);
    CHECK_INT(seen.count, before + 1);
    daemon_restart(&d);
    int restored = deliver_until_type(conn, &seen, before + 1, "connection-restored", 10000, NULL, &longest);
    CHECK_INT(restored, before + 5);
    if (restored == before + 5) {
        long long seq = seq_of(seen.xml[before + 1]);
        char uuid[64];
        field(seen.xml[before - 3], "domain-uuid", uuid, sizeof uuid);
        EXPECT_TRANSITION(seen.xml[before + 1], seq, -1, "extra", uuid, "shutoff", "shutoff", "undefined-resync");
        EXPECT_TRANSITION(seen.xml[before + 2], seq + 1, 1, "test", TEST_UUID, "paused", "running", "resync");
        expect_object_resync(seen.xml[before + 3], "network-lifecycle", "network-name", "default", "started");
        expect_object_resync(seen.xml[before + 4], "storage-pool-lifecycle", "pool-name", "default-pool", "started");
        expect_restored(seen.xml[restored], 2);
    }
    /* No delivery waited for the daemon. */
    CHECK(longest < 1000);
    step(&d, conn, &seen, "suspend test");
    if (seen.count == before + 7)
        EXPECT_TRANSITION(seen.xml[before + 6], seq_of(seen.xml[0]) + before + 6, 1, "test", TEST_UUID, "running",
                          "paused", "suspended-paused");
    expect_consecutive(&seen, 0);
    CHECK_INT(count_threads(), threads);
    CHECK_INT(virConnectClose(conn), 0);
    unlink(path);
    seen_clear(&seen);
    case_close(&d, sig == SIGTERM ? "SIGTERM while idle: lost, resync, restored, live" :
                                    "SIGKILL while idle: lost, resync, restored, live");
}

/* What a handler checks of a stream of events while they flow: every
 * domain-state-transition of `test` starts where the one before it ended
 * (nothing unreported), seqs follow each other (nothing lost or repeated). */
typedef struct {
    long long last_seq;
    char state[32];
    int transitions, resyncs, lost, restored, broken_chain, broken_seq;
} Chain;

static void chain_handler(virConnectPtr conn, const char *xml, void *arg)
{
    Chain *c = arg;
    char old_state[32], new_state[32], reason[64], name[64];
    (void)conn;
    long long seq = seq_of(xml);
    if (c->last_seq && seq != c->last_seq + 1)
        c->broken_seq++;
    c->last_seq = seq;
    if (is_type(xml, "connection-lost"))
        c->lost++;
    if (is_type(xml, "connection-restored"))
        c->restored++;
    if (!is_type(xml, "domain-state-transition") || strcmp(field(xml, "domain-name", name, sizeof name), "test") != 0)
        return;
    field(xml, "old-state", old_state, sizeof old_state);
    field(xml, "new-state", new_state, sizeof new_state);
    if (strcmp(field(xml, "reason", reason, sizeof reason), "resync") == 0)
        c->resyncs++;
    if (c->state[0] && strcmp(old_state, c->state) != 0) {
        c->broken_chain++;
        fprintf(stderr, "  chain broken: was %s, then %s\n", c->state, xml);
    }
    snprintf(c->state, sizeof c->state, "%s", new_state);
    c->transitions++;
}

/* The daemon ended by `sig` while virsh suspends and resumes `test` as fast
 * as it goes, started again, and flipping again: the chain of states of
 * `test` has no gap (the resync fills what the outage hid), seqs no gap. */
static void restart_while_flowing(int sig)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Chain c = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, chain_handler, &c) >= 0);
    CHECK_INT(virConnectSetReconnect(conn, 50, 500, 0), 0);
    pid_t flipper = start_flipper(&d);
    deliver_for(conn, 1500);
    int before = c.transitions;
    CHECK(before > 10);
    daemon_kill(&d, sig);
    stop_flipper(flipper);
    deliver_for(conn, 500);
    CHECK_INT(c.lost, 1);
    daemon_restart(&d);
    flipper = start_flipper(&d);
    long long deadline = now_ms() + 10000;
    while (c.restored == 0 && now_ms() < deadline)
        deliver_for(conn, 100);
    CHECK_INT(c.restored, 1);
    int at_restore = c.transitions;
    deliver_for(conn, 1500);
    stop_flipper(flipper);
    deliver_for(conn, 300);
    CHECK(c.transitions > at_restore + 10);
    CHECK_INT(c.broken_chain, 0);
    CHECK_INT(c.broken_seq, 0);
    CHECK(c.resyncs <= 1);
    printf("%s while flowing: %d transitions before, %d after, %d resync\n", sig == SIGTERM ? "SIGTERM" : "SIGKILL",
           before, c.transitions - at_restore, c.resyncs);
    CHECK_INT(virConnectClose(conn), 0);
    case_close(&d, sig == SIGTERM ? "SIGTERM while events flow: no state change unreported"
                                  : "SIGKILL while events flow: no state change unreported");
}

/* Away 10 s with waits from 100 ms to 2 s: the attempts follow the backoff
 * (about 8 to 12 of them; while away the loop wakes only for them), no
 * delivery call blocks, and the connection comes back: its open is made
 * without blocking too, one wake-up per reply of the daemon. */
static void away_ten_seconds(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    CHECK_INT(virConnectSetReconnect(conn, 100, 2000, 0), 0);
    daemon_kill(&d, SIGKILL);
    /* The socket file goes too: connecting finds no file, as a path that
     * does not exist yet. */
    unlink(d.sock);
    int away = 0, back = 0;
    long long longest = 0;
    CHECK_INT(deliver_until_type(conn, &seen, 0, "connection-lost", 5000, NULL, NULL), 0);
    CHECK_INT(deliver_until_type(conn, &seen, 1, "connection-restored", 10000, &away, &longest), -1);
    daemon_restart(&d);
    int restored = deliver_until_type(conn, &seen, 1, "connection-restored", 5000, &back, &longest);
    CHECK_INT(restored, 1);
    long long attempts = restored == 1 ? expect_restored(seen.xml[1], 6) : 0;
    CHECK(attempts >= 6 && attempts <= 14);
    CHECK(away <= attempts);
    CHECK(longest < 100);
    printf("away 10 s: %lld attempts, %d wake-ups away, %d to come back, longest delivery %lld ms\n", attempts, away,
           back, longest);
    expect_consecutive(&seen, 0);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
    case_close(&d, "away 10 s: backoff, no busy loop, back");
}

/* A daemon that accepts but never answers (stopped with SIGSTOP after the
 * loss: its socket still takes connections): each attempt waits for replies
 * without blocking any delivery, gives up after 5 s, and the next one comes;
 * once the daemon runs again, the link is restored. */
static void attempt_never_answered(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    CHECK_INT(virConnectSetKeepAlive(conn, 0, 0), 0);
    CHECK_INT(virConnectSetReconnect(conn, 100, 200, 0), 0);
    /* The link is lost, and the daemon that comes back hangs at once: its
     * socket accepts (the kernel does that), nothing answers. */
    daemon_kill(&d, SIGKILL);
    CHECK_INT(deliver_until_type(conn, &seen, 0, "connection-lost", 5000, NULL, NULL), 0);
    daemon_restart(&d);
    kill(d.pid, SIGSTOP);
    long long longest = 0;
    int wakeups = 0;
    CHECK_INT(deliver_until_type(conn, &seen, 1, "connection-restored", 6000, &wakeups, &longest), -1);
    CHECK(longest < 100);
    CHECK(wakeups <= 10);
    kill(d.pid, SIGCONT);
    CHECK_INT(deliver_until_type(conn, &seen, 1, "connection-restored", 10000, NULL, &longest), 1);
    CHECK(longest < 100);
    printf("a daemon that does not answer: %d wake-ups in 6 s, longest delivery %lld ms\n", wakeups, longest);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
    case_close(&d, "an attempt the daemon does not answer blocks nothing");
}

/* The same restart seen by a handler on the event thread. */
static void on_the_event_thread(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Locked l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    CHECK(virConnectAddEventHandlerFull(conn, NULL, locked_handler, &l, locked_free, 0) >= 0);
    CHECK_INT(virConnectSetReconnect(conn, 100, 1000, 0), 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    CHECK_INT(virsh(&d, "suspend test"), 0);
    CHECK_INT(wait_locked(&l, &l.seen.count, 1, 5000), 1);
    daemon_kill(&d, SIGTERM);
    CHECK_INT(wait_locked(&l, &l.seen.count, 2, 5000), 2);
    daemon_restart(&d);
    CHECK_INT(wait_locked(&l, &l.seen.count, 4, 10000), 4);
    pthread_mutex_lock(&l.mu);
    if (l.seen.count >= 4) {
        expect_lost(l.seen.xml[1], "eof");
        EXPECT_TRANSITION(l.seen.xml[2], 3, 1, "test", TEST_UUID, "paused", "running", "resync");
        expect_restored(l.seen.xml[3], 1);
    }
    CHECK_INT(l.closed, 0);
    pthread_mutex_unlock(&l.mu);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&l.freed), 1);
    seen_clear(&l.seen);
    case_close(&d, "reconnection on the event thread");
}

/* Closing during an outage ends it at once, its stream told `client`;
 * turning reconnection off during one ends the link with the loss's reason. */
static void outage_ends(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    int stream = open_stream(conn, NULL);
    CHECK_INT(virConnectSetReconnect(conn, 100, 1000, 0), 0);
    daemon_kill(&d, SIGKILL);
    CHECK_INT(deliver_until_type(conn, &seen, 0, "connection-lost", 5000, NULL, NULL), 0);
    long long t0 = now_ms();
    CHECK_INT(virConnectClose(conn), 0);
    CHECK(now_ms() - t0 < 200);
    char buf[8192] = "";
    CHECK_INT(read_to_eof(stream, buf, sizeof buf, 2000), 1);
    CHECK_INT(lines_in(buf), 2);
    char line[4096];
    line_of(buf, 0, line, sizeof line);
    expect_lost(line, "eof");
    line_of(buf, 1, line, sizeof line);
    EXPECT_CLOSED(line, 2, "client");
    close(stream);
    seen_clear(&seen);
    case_close(&d, "close during an outage ends it at once");

    conn = case_open(&d);
    add_seen(conn, NULL, &seen);
    CHECK_INT(virConnectSetReconnect(conn, 100, 1000, 0), 0);
    daemon_kill(&d, SIGKILL);
    CHECK_INT(deliver_until_type(conn, &seen, 0, "connection-lost", 5000, NULL, NULL), 0);
    CHECK_INT(virConnectSetReconnect(conn, 0, 0, 0), 0);
    CHECK_INT(deliver_until_type(conn, &seen, 1, "connection-closed", 2000, NULL, NULL), 1);
    if (seen.count == 2)
        EXPECT_CLOSED(seen.xml[1], 2, "eof");
    CHECK_INT(virDeliverEvents(conn), -1);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, "closed the connection");
    CHECK_INT(virConnectSetReconnect(conn, 100, 1000, 0), -1);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, "closed the connection");
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
    case_close(&d, "reconnection turned off during an outage ends the link");
}

/* Off by default: a lost link is connection-closed, as before. */
static void off_by_default(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    daemon_kill(&d, SIGTERM);
    CHECK_INT(deliver_until_type(conn, &seen, 0, "connection-closed", 5000, NULL, NULL), 0);
    CHECK_INT(seen.count, 1);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
    case_close(&d, "off by default: a lost link ends the connection");
}

/* Writes the test driver file `path`: domains `alpha` (UUID ALPHA, in
 * libvirt state `alpha_state`) and, when given, `beta` or `gamma`, each
 * running or shut off as asked. */
#define ALPHA "11111111-2222-3333-4444-555555555555"
static void write_node(const char *path, int alpha_state, const char *other, int other_state)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    const char *dom = "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>%s</name>"
                      "%s<memory>8192</memory><os><type>hvm</type></os><test:runstate>%d</test:runstate></domain>";
    fputs("<node>", f);
    fprintf(f, dom, "alpha", "<uuid>" ALPHA "</uuid>", alpha_state);
    fprintf(f, dom, other, "", other_state);
    fputs("</node>", f);
    fclose(f);
}

/* A daemon whose test driver file says, after the restart, what changed
 * while it was down: `alpha` paused, `beta` gone, `gamma` new (shut off). */
static void changed_while_down(void)
{
    case_begin();
    Daemon d;
    daemon_start(&d);
    char node[300], uri[600];
    snprintf(node, sizeof node, "%s/node.xml", d.dir);
    write_node(node, 1, "beta", 1);
    snprintf(uri, sizeof uri, "test+unix://%s?socket=%s", node, d.sock);
    virConnectPtr conn = virConnectOpen(uri);
    CHECK(conn != NULL);
    if (!conn) {
        daemon_stop(&d);
        return;
    }
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    CHECK_INT(virConnectSetReconnect(conn, 100, 1000, 0), 0);
    daemon_kill(&d, SIGTERM);
    write_node(node, 3, "gamma", 5);
    CHECK_INT(deliver_until_type(conn, &seen, 0, "connection-lost", 5000, NULL, NULL), 0);
    daemon_restart(&d);
    CHECK_INT(deliver_until_type(conn, &seen, 1, "connection-restored", 10000, NULL, NULL), 4);
    if (seen.count == 5) {
        EXPECT_TRANSITION(seen.xml[1], 2, 1, "alpha", ALPHA, "running", "paused", "resync");
        char name[32], uuid[64], reason[64], old_state[32], new_state[32];
        CHECK_STR(field(seen.xml[2], "domain-name", name, sizeof name), "beta");
        CHECK_STR(field(seen.xml[2], "reason", reason, sizeof reason), "undefined-resync");
        CHECK_STR(field(seen.xml[2], "old-state", old_state, sizeof old_state), "running");
        CHECK_STR(field(seen.xml[2], "new-state", new_state, sizeof new_state), "shutoff");
        CHECK_STR(field(seen.xml[3], "domain-name", name, sizeof name), "gamma");
        CHECK_STR(field(seen.xml[3], "reason", reason, sizeof reason), "defined-resync");
        CHECK_STR(field(seen.xml[3], "old-state", old_state, sizeof old_state), "nostate");
        CHECK_STR(field(seen.xml[3], "new-state", new_state, sizeof new_state), "shutoff");
        CHECK(strlen(field(seen.xml[3], "domain-uuid", uuid, sizeof uuid)) == 36);
        expect_restored(seen.xml[4], 1);
    }
    expect_consecutive(&seen, 0);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
    case_close(&d, "a test driver file changed while the daemon was down");
}

/* Keepalive (interval 1, count 2) gives a stopped daemon up: connection-lost
 * with reason keepalive; once it runs again, the link is restored. */
static void keepalive_loss(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    CHECK_INT(virConnectSetKeepAlive(conn, 1, 2), 0);
    CHECK_INT(virConnectSetReconnect(conn, 100, 500, 0), 0);
    kill(d.pid, SIGSTOP);
    CHECK_INT(deliver_until_type(conn, &seen, 0, "connection-lost", 8000, NULL, NULL), 0);
    if (seen.count >= 1)
        expect_lost(seen.xml[0], "keepalive");
    kill(d.pid, SIGCONT);
    int restored = deliver_until_type(conn, &seen, 1, "connection-restored", 10000, NULL, NULL);
    CHECK_INT(restored, 1);
    if (restored == 1)
        expect_restored(seen.xml[1], 1);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
    case_close(&d, "keepalive loss, then restored");
}

/* Bad arguments: a clear error, nothing changed. */
static void bad_arguments(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    CHECK_INT(virConnectSetReconnect(conn, 500, 100, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "0 < min <= max");
    CHECK_INT(virConnectSetReconnect(conn, 100, 500, 1), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "flags must be 0");
    CHECK_INT(virConnectSetReconnect(conn, 0, 0, 0), 0);
    CHECK_INT(virConnectClose(conn), 0);
    case_close(&d, "virConnectSetReconnect's bad arguments");

    case_begin();
    virConnectPtr local = virConnectOpen(NULL);
    CHECK_INT(virConnectSetReconnect(local, 100, 1000, 0), -1);
    CHECK_ERROR(VIR_ERR_NO_SUPPORT, "embedded");
    CHECK_INT(virConnectClose(local), 0);
    CHECK_INT(virConnectSetReconnect(NULL, 100, 1000, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "NULL");
    case_end("reconnection on the embedded driver and on NULL");
}

int main(void)
{
    main_thread = pthread_self();
    RUN(bad_arguments());
    RUN(off_by_default());
    RUN(restart_while_idle(SIGTERM));
    RUN(restart_while_idle(SIGKILL));
    RUN(restart_while_flowing(SIGTERM));
    RUN(restart_while_flowing(SIGKILL));
    RUN(changed_while_down());
    RUN(keepalive_loss());
    RUN(on_the_event_thread());
    RUN(outage_ends());
    RUN(away_ten_seconds());
    RUN(attempt_never_answered());
    return check_done();
}
