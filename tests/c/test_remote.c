/* Remote connections to a real private libvirt daemon (tests/c/daemon.h),
 * normal flows: opening (and failing to open), the domain events virsh causes
 * on the test driver with their exact old-state/new-state/reason/id, metadata
 * changes, several connections, filters, streams, the event thread, local
 * emits, the state learned at open (also while events flow), a burst over the
 * queue limit, and closing (idle and while events flow). The library starts
 * no thread for any of it (only virConnectStartEventThread does): events are
 * read when virDeliverEvents runs after the event descriptor polled readable.
 * Only the main thread uses CHECK; the event thread's handler records what it
 * saw. The daemon dying is test_remote_faults.c's. */
#include "remote.h"

#define TEST2_UUID "11111111-2222-3333-4444-555555555555"

/* ---- helpers ------------------------------------------------------------------ */

/* The number of clients the daemon serves, as virt-admin lists them on its
 * admin socket; -1 when virt-admin cannot tell. */
static int daemon_clients(const Daemon *d)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "virt-admin -q -c 'libvirtd:///system?socket=%s/libvirt-admin-sock' srv-clients-list libvirtd 2>/dev/null",
             d->dir);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, p))
        if (strstr(line, " unix ") || strstr(line, " tcp "))
            n++;
    return pclose(p) == 0 ? n : -1;
}

/* Waits, for at most 3 s, until the daemon serves `want` clients. */
static int wait_clients(const Daemon *d, int want)
{
    long long deadline = now_ms() + 3000;
    int n = daemon_clients(d);
    while (n != want && now_ms() < deadline) {
        sleep_ms(20);
        n = daemon_clients(d);
    }
    return n;
}

/* `xml` is the domain-metadata-change of domain `test` with these children
 * after the uuid. */
static void expect_metadata(const char *xml, long long seq, int id, const char *rest)
{
    char want[1024];
    snprintf(want, sizeof want,
             "<domain-id>%d</domain-id><domain-name>test</domain-name><domain-uuid>" TEST_UUID
             "</domain-uuid>%s</event>",
             id, rest);
    CHECK_STR(check_head(xml, "domain-metadata-change", seq), want);
}

/* ---- opening fails: no socket, nothing listening -------------------------------- */

static void bad_socket_paths(void)
{
    case_begin();
    int threads = count_threads(), fds = count_fds();
    char dir[] = "/tmp/virevent-nosock-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[100], uri[256];

    /* No such file. */
    snprintf(path, sizeof path, "%s/libvirt-sock", dir);
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s", path);
    CHECK(virConnectOpen(uri) == NULL);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, path);
    CHECK_CONTAINS(virGetLastErrorMessage(), "No such file or directory");

    /* No such folder either. */
    char deeper[128], uri2[300];
    snprintf(deeper, sizeof deeper, "%s/nowhere/libvirt-sock", dir);
    snprintf(uri2, sizeof uri2, "test+unix:///default?socket=%s", deeper);
    CHECK(virConnectOpen(uri2) == NULL);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, deeper);
    CHECK_CONTAINS(virGetLastErrorMessage(), "No such file or directory");

    /* A socket bound but not listening: refused. */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    CHECK_INT(bind(s, (struct sockaddr *)&addr, sizeof addr), 0);
    CHECK(virConnectOpen(uri) == NULL);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, path);
    CHECK_CONTAINS(virGetLastErrorMessage(), "Connection refused");
    close(s);
    unlink(path);
    /* Failed opens leave no descriptor open. */
    CHECK_INT(count_fds(), fds);

    /* A success afterwards resets the error; failures started no thread. */
    virConnectPtr local = virConnectOpen(NULL);
    CHECK(local != NULL);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(virConnectClose(local), 0);
    /* A daemon that refuses the driver URI: its error, and nothing left open. */
    Daemon d;
    daemon_start(&d);
    char quri[300];
    snprintf(quri, sizeof quri, "qemu+unix:///system?socket=%s", d.sock);
    fds = count_fds();
    CHECK(virConnectOpen(quri) == NULL);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, "qemu:///system");
    /* A transport other than unix. */
    CHECK(virConnectOpen("test+ext://example.org/default") == NULL);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, "test+ext://example.org/default");
    CHECK_INT(count_fds(), fds);
    CHECK_INT(wait_clients(&d, 0), 0);
    daemon_stop(&d);

    CHECK_INT(count_threads(), threads);
    rmdir(dir);
    case_end("bad socket paths");
}

/* ---- open, deliver, stream, close: no thread ------------------------------------ */

static void no_thread(void)
{
    Daemon d;
    int threads = count_threads(), fds = count_fds();
    virConnectPtr conn = case_open(&d);
    CHECK_INT(count_threads(), threads);
    CHECK_INT(wait_clients(&d, 1), 1);
    int fd = virConnectGetEventFD(conn);
    CHECK(fd >= 0);
    CHECK_INT(virConnectGetEventFD(conn), fd);
    /* Nothing sent yet: not readable, nothing to deliver. */
    CHECK_INT(readable_within(fd, 0), 0);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);

    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    int stream = open_stream(conn, NULL);
    CHECK_INT(count_threads(), threads);

    CHECK_INT(virsh(&d, "suspend test"), 0);
    /* virsh has returned and the daemon has sent the event, but no thread read
     * it: the stream holds nothing until a delivery, and the descriptor says
     * there is something to read. */
    CHECK_INT(readable_within(fd, 5000), 1);
    char buf[4096] = "";
    CHECK_INT(read_some(stream, buf, sizeof buf), -1);
    CHECK_INT(seen.count, 0);
    CHECK_INT(deliver_until(conn, &seen, 1, 5000), 1);
    CHECK_INT(count_threads(), threads);
    if (seen.count == 1)
        EXPECT_TRANSITION(seen.xml[0], 1, 1, "test", TEST_UUID, "running", "paused", "suspended-paused");
    /* The stream got the same event as one line. */
    CHECK(read_some(stream, buf, sizeof buf) > 0);
    CHECK_INT(lines_in(buf), 1);
    char line[2048];
    CHECK_STR(line_of(buf, 0, line, sizeof line), seen.count ? seen.xml[0] : "");
    /* Drained. */
    CHECK_INT(readable_within(fd, 0), 0);
    CHECK_INT(virDeliverEvents(conn), 0);

    /* Domain calls are not forwarded to a daemon. */
    CHECK(virDomainLookupByName(conn, "test") == NULL);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_NO_SUPPORT);
    CHECK(virDomainLookupByName(conn, "nosuch") == NULL);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_NO_SUPPORT);

    CHECK_INT(count_threads(), threads);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(count_threads(), threads);
    close(stream);
    /* Close let go of the socket, its epoll set and the queue's descriptor. */
    CHECK_INT(count_fds(), fds);
    CHECK_INT(wait_clients(&d, 0), 0);
    seen_clear(&seen);
    case_close(&d, "open, deliver, stream and close start no thread");
}

/* ---- the lifecycle sequence, in order ----------------------------------------------- */


/* Writes DIR/test2.xml, an inactive domain test2 for `virsh define`, in the
 * daemon's folder DIR. */
static void write_test2(const Daemon *d)
{
    char path[256];
    snprintf(path, sizeof path, "%s/test2.xml", d->dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("<domain type='test'><name>test2</name><uuid>" TEST2_UUID "</uuid>"
              "<memory>8192</memory><os><type>hvm</type></os></domain>\n",
              f);
        fclose(f);
    }
}

static void lifecycle_sequence(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);

    write_test2(&d);
    step(&d, conn, &seen, "suspend test");
    step(&d, conn, &seen, "resume test");
    step(&d, conn, &seen, "destroy test");
    step(&d, conn, &seen, "start test");
    step(&d, conn, &seen, "shutdown test");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "define '%s/test2.xml'", d.dir);
    step(&d, conn, &seen, cmd);
    step(&d, conn, &seen, "start test2");
    step(&d, conn, &seen, "destroy test2");
    step(&d, conn, &seen, "undefine test2");
    /* Nothing else comes. */
    CHECK_INT(deliver_for(conn, 200), 0);

    CHECK_INT(seen.count, 9);
    if (seen.count == 9) {
        EXPECT_TRANSITION(seen.xml[0], 1, 1, "test", TEST_UUID, "running", "paused", "suspended-paused");
        EXPECT_TRANSITION(seen.xml[1], 2, 1, "test", TEST_UUID, "paused", "running", "resumed-unpaused");
        EXPECT_TRANSITION(seen.xml[2], 3, -1, "test", TEST_UUID, "running", "shutoff", "stopped-destroyed");
        EXPECT_TRANSITION(seen.xml[3], 4, 2, "test", TEST_UUID, "shutoff", "running", "started-booted");
        EXPECT_TRANSITION(seen.xml[4], 5, -1, "test", TEST_UUID, "running", "shutoff", "stopped-shutdown");
        EXPECT_TRANSITION(seen.xml[5], 6, -1, "test2", TEST2_UUID, "nostate", "shutoff", "defined-added");
        EXPECT_TRANSITION(seen.xml[6], 7, 3, "test2", TEST2_UUID, "shutoff", "running", "started-booted");
        EXPECT_TRANSITION(seen.xml[7], 8, -1, "test2", TEST2_UUID, "running", "shutoff", "stopped-destroyed");
        EXPECT_TRANSITION(seen.xml[8], 9, -1, "test2", TEST2_UUID, "shutoff", "shutoff", "undefined-removed");
    }

    /* Redefining the existing (inactive) test: defined-updated, state kept. */
    seen_clear(&seen);
    snprintf(cmd, sizeof cmd, "virsh -q -c '%s' dumpxml test > '%s/test.xml'", d.uri, d.dir);
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "define '%s/test.xml'", d.dir);
    step(&d, conn, &seen, cmd);
    if (seen.count == 1)
        EXPECT_TRANSITION(seen.xml[0], 10, -1, "test", TEST_UUID, "shutoff", "shutoff", "defined-updated");
    /* And a failed command emits nothing (test is not running). */
    CHECK(virsh(&d, "suspend test") != 0);
    CHECK_INT(deliver_for(conn, 200), 0);

    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
    case_close(&d, "suspend, resume, destroy, start, shutdown, define, start, destroy, undefine");
}

/* ---- metadata changes ---------------------------------------------------------------- */

static void metadata(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    step(&d, conn, &seen, "desc test --live hello");
    step(&d, conn, &seen, "metadata test http://example.org/x --key x --set '<a/>' --live");
    step(&d, conn, &seen, "desc test --live --title 'a title'");
    CHECK_INT(deliver_for(conn, 200), 0);
    CHECK_INT(seen.count, 3);
    if (seen.count == 3) {
        expect_metadata(seen.xml[0], 1, 1, "<type>description</type>");
        expect_metadata(seen.xml[1], 2, 1, "<type>element</type><nsuri>http://example.org/x</nsuri>");
        expect_metadata(seen.xml[2], 3, 1, "<type>title</type>");
    }
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
    case_close(&d, "desc and metadata");
}

/* ---- networks and storage pools ------------------------------------------------ */

/* The test driver's network `default` and pool `default-pool` (it has no
 * secrets and no node device events: the fake daemon's tests cover those):
 * each object's events arrive with its names. */
static void other_objects(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    step(&d, conn, &seen, "net-destroy default");
    step(&d, conn, &seen, "net-start default");
    step(&d, conn, &seen, "pool-refresh default-pool");
    step(&d, conn, &seen, "pool-destroy default-pool");
    CHECK_INT(deliver_for(conn, 200), 0);
    CHECK_INT(seen.count, 4);
    if (seen.count == 4) {
        CHECK(is_type(seen.xml[0], "network-lifecycle"));
        CHECK_CONTAINS(seen.xml[0], "><network-name>default</network-name><network-uuid>");
        CHECK_CONTAINS(seen.xml[0], "</network-uuid><lifecycle>stopped</lifecycle><detail>0</detail></event>");
        CHECK_CONTAINS(seen.xml[1], "<lifecycle>started</lifecycle>");
        CHECK(is_type(seen.xml[2], "storage-pool-refresh"));
        CHECK_CONTAINS(seen.xml[2], "><pool-name>default-pool</pool-name><pool-uuid>");
        CHECK(is_type(seen.xml[3], "storage-pool-lifecycle"));
        CHECK_CONTAINS(seen.xml[3], "<lifecycle>stopped</lifecycle>");
    }
    /* libvirt 9.0's test driver has no secrets, and lacks the kinds newer than 9.0. */
    char **types = NULL;
    int n = virConnectListRefusedEventTypes(conn, &types, 0);
    CHECK_INT(n, 4);
    for (int i = 0; i < n && types; i++) {
        static const char *const want[] = {"domain-nic-mac-change", "network-metadata-change", "secret-lifecycle",
                                           "secret-value-changed"};
        CHECK_STR(types[i], i < 4 ? want[i] : "");
        free(types[i]);
    }
    free(types);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
    case_close(&d, "network and storage pool events; the kinds the daemon lacks");
}

/* ---- TCP ---------------------------------------------------------------------------- */

/* The daemon over TCP on 127.0.0.1, by address and by name ("localhost" may
 * resolve to ::1 first, where nothing listens: the next address is tried):
 * the same events as over its Unix socket, no thread, nothing leaked. */
static void tcp_transport(void)
{
    case_begin();
    Daemon d;
    daemon_start_with(&d, 1, NULL);
    int threads = count_threads(), fds = count_fds();
    const char *hosts[] = {"127.0.0.1", "localhost"};
    for (int h = 0; h < 2; h++) {
        char uri[256];
        snprintf(uri, sizeof uri, "test+tcp://%s:%d/default", hosts[h], d.tcp_port);
        virConnectPtr conn = suspend_resume_over(&d, uri, threads);
        if (!conn)
            continue;
        CHECK_INT(wait_clients(&d, 1), 1);
        CHECK_INT(virConnectClose(conn), 0);
        CHECK_INT(count_fds(), fds);
        CHECK_INT(wait_clients(&d, 0), 0);
    }
    /* Nothing listens there any more: refused, naming the address. */
    int port = d.tcp_port;
    daemon_stop(&d);
    char uri[256], want[256];
    snprintf(uri, sizeof uri, "test+tcp://127.0.0.1:%d/default", port);
    CHECK(virConnectOpen(uri) == NULL);
    snprintf(want, sizeof want, "cannot connect to the libvirt daemon at '127.0.0.1:%d': 127.0.0.1:%d: Connection refused",
             port, port);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, want);
    CHECK(virConnectOpen("test+tcp://127.0.0.1:99999/default") == NULL);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, "'99999' is not a port number");
    CHECK(virConnectOpen("test+tcp://no-such-host.invalid/default") == NULL);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, "cannot resolve 'no-such-host.invalid'");
    CHECK_INT(count_fds(), fds);
    case_end("tcp: by address and by name, same events, no thread, nothing leaked; refusals named");
}

/* ---- two connections to one daemon ---------------------------------------------------- */

static void two_connections(void)
{
    Daemon d;
    virConnectPtr a = case_open(&d);
    virConnectPtr b = open_remote(&d);
    Seen sa = {0}, sb = {0};
    add_seen(a, NULL, &sa);
    add_seen(b, NULL, &sb);
    CHECK(virConnectGetEventFD(a) != virConnectGetEventFD(b));
    /* a emits one of its own first: seqs are per connection. */
    CHECK_INT(virConnectEmitEvent(a, "<event type=\"mine\"/>"), 1);
    CHECK_INT(virsh(&d, "suspend test"), 0);
    CHECK_INT(virsh(&d, "resume test"), 0);
    CHECK_INT(deliver_until(a, &sa, 3, 5000), 3);
    CHECK_INT(deliver_until(b, &sb, 2, 5000), 2);
    if (sa.count == 3 && sb.count == 2) {
        CHECK(is_type(sa.xml[0], "mine"));
        EXPECT_TRANSITION(sa.xml[1], 2, 1, "test", TEST_UUID, "running", "paused", "suspended-paused");
        EXPECT_TRANSITION(sa.xml[2], 3, 1, "test", TEST_UUID, "paused", "running", "resumed-unpaused");
        EXPECT_TRANSITION(sb.xml[0], 1, 1, "test", TEST_UUID, "running", "paused", "suspended-paused");
        EXPECT_TRANSITION(sb.xml[1], 2, 1, "test", TEST_UUID, "paused", "running", "resumed-unpaused");
    }
    /* Closing one leaves the other receiving. */
    CHECK_INT(virConnectClose(a), 0);
    CHECK_INT(virsh(&d, "suspend test"), 0);
    CHECK_INT(deliver_until(b, &sb, 3, 5000), 3);
    if (sb.count == 3)
        EXPECT_TRANSITION(sb.xml[2], 3, 1, "test", TEST_UUID, "running", "paused", "suspended-paused");
    CHECK_INT(virConnectClose(b), 0);
    seen_clear(&sa);
    seen_clear(&sb);
    case_close(&d, "two connections to the same daemon");
}

/* ---- filters: a type, an XPath expression ---------------------------------------------- */

static void filters(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Seen all = {0}, transitions = {0}, paused = {0}, named = {0}, meta = {0};
    const char *const ftype[] = {"domain-state-transition", NULL};
    const char *const fpaused[] = {"/event[new-state='paused']", NULL};
    const char *const fnamed[] = {"//domain-name = 'test2'", "/event[reason='stopped-destroyed']", NULL};
    const char *const fmeta[] = {"domain-meta*", NULL};
    add_seen(conn, NULL, &all);
    add_seen(conn, ftype, &transitions);
    add_seen(conn, fpaused, &paused);
    add_seen(conn, fnamed, &named);
    add_seen(conn, fmeta, &meta);

    step(&d, conn, &all, "desc test --live hello");
    step(&d, conn, &all, "suspend test");
    step(&d, conn, &all, "resume test");
    step(&d, conn, &all, "suspend test");
    step(&d, conn, &all, "destroy test");
    CHECK_INT(deliver_for(conn, 200), 0);
    CHECK_INT(all.count, 5);
    CHECK_INT(transitions.count, 4);
    for (int i = 0; i < transitions.count; i++) {
        CHECK(is_type(transitions.xml[i], "domain-state-transition"));
        CHECK_INT(seq_of(transitions.xml[i]), i + 2);
    }
    CHECK_INT(paused.count, 2);
    if (paused.count == 2) {
        EXPECT_TRANSITION(paused.xml[0], 2, 1, "test", TEST_UUID, "running", "paused", "suspended-paused");
        EXPECT_TRANSITION(paused.xml[1], 4, 1, "test", TEST_UUID, "running", "paused", "suspended-paused");
    }
    CHECK_INT(named.count, 1);
    if (named.count == 1)
        EXPECT_TRANSITION(named.xml[0], 5, -1, "test", TEST_UUID, "paused", "shutoff", "stopped-destroyed");
    CHECK_INT(meta.count, 1);
    if (meta.count == 1)
        expect_metadata(meta.xml[0], 1, 1, "<type>description</type>");

    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&all);
    seen_clear(&transitions);
    seen_clear(&paused);
    seen_clear(&named);
    seen_clear(&meta);
    case_close(&d, "type and XPath filters");
}

/* ---- streams fed by deliveries ----------------------------------------------------------- */

static void streams(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    const char *const fpaused[] = {"/event[new-state='paused']", NULL};
    int all = open_stream(conn, NULL);
    int paused = open_stream(conn, fpaused);
    int fd = virConnectGetEventFD(conn);

    /* No handler at all: the descriptor still polls readable when the daemon
     * sends, and the delivery that feeds the streams makes no handler call. */
    CHECK_INT(virsh(&d, "suspend test"), 0);
    CHECK_INT(readable_within(fd, 5000), 1);
    char abuf[8192] = "", pbuf[8192] = "";
    CHECK_INT(read_some(all, abuf, sizeof abuf), -1);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK(read_some(all, abuf, sizeof abuf) > 0);
    CHECK_INT(lines_in(abuf), 1);

    CHECK_INT(virsh(&d, "resume test"), 0);
    CHECK_INT(virsh(&d, "suspend test"), 0);
    /* Deliver until both have come (they may come in one read or two). */
    long long deadline = now_ms() + 5000;
    while (lines_in(abuf) < 3 && now_ms() < deadline) {
        if (readable_within(fd, 100))
            CHECK(virDeliverEvents(conn) >= 0);
        read_some(all, abuf, sizeof abuf);
    }
    CHECK_INT(lines_in(abuf), 3);
    read_some(paused, pbuf, sizeof pbuf);
    CHECK_INT(lines_in(pbuf), 2);

    char line[2048];
    EXPECT_TRANSITION(line_of(abuf, 0, line, sizeof line), 1, 1, "test", TEST_UUID, "running", "paused",
                      "suspended-paused");
    EXPECT_TRANSITION(line_of(abuf, 1, line, sizeof line), 2, 1, "test", TEST_UUID, "paused", "running",
                      "resumed-unpaused");
    EXPECT_TRANSITION(line_of(abuf, 2, line, sizeof line), 3, 1, "test", TEST_UUID, "running", "paused",
                      "suspended-paused");
    EXPECT_TRANSITION(line_of(pbuf, 0, line, sizeof line), 1, 1, "test", TEST_UUID, "running", "paused",
                      "suspended-paused");
    EXPECT_TRANSITION(line_of(pbuf, 1, line, sizeof line), 3, 1, "test", TEST_UUID, "running", "paused",
                      "suspended-paused");
    /* Every line ends in "\n" and holds no other. */
    size_t len = strlen(abuf);
    CHECK(len > 0 && abuf[len - 1] == '\n');

    /* A stream closed by its reader is unsubscribed: deliveries go on. */
    close(paused);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    CHECK_INT(virsh(&d, "resume test"), 0);
    CHECK_INT(deliver_until(conn, &seen, 1, 5000), 1);
    abuf[0] = '\0';
    CHECK(read_some(all, abuf, sizeof abuf) > 0);
    CHECK_INT(lines_in(abuf), 1);
    if (seen.count == 1) {
        CHECK_STR(line_of(abuf, 0, line, sizeof line), seen.xml[0]);
        EXPECT_TRANSITION(seen.xml[0], 4, 1, "test", TEST_UUID, "paused", "running", "resumed-unpaused");
    }

    CHECK_INT(virConnectClose(conn), 0);
    close(all);
    seen_clear(&seen);
    case_close(&d, "streams fed by virDeliverEvents");
}

/* ---- the event thread ---------------------------------------------------------------------- */

static void event_thread(void)
{
    Daemon d;
    int threads = count_threads();
    virConnectPtr conn = case_open(&d);
    Locked l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    CHECK(virConnectAddEventHandler(conn, NULL, locked_handler, &l) >= 0);
    int stream = open_stream(conn, NULL);
    CHECK_INT(count_threads(), threads);

    CHECK_INT(virConnectStartEventThread(conn), 0);
    CHECK_INT(count_threads(), threads + 1);
    CHECK_INT(virConnectStartEventThread(conn), -1);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OPERATION_INVALID);

    /* Handlers run as events arrive, without any call from here. */
    CHECK_INT(virsh(&d, "suspend test"), 0);
    CHECK_INT(wait_locked(&l, &l.seen.count, 1, 5000), 1);
    CHECK_INT(virsh(&d, "resume test"), 0);
    CHECK_INT(wait_locked(&l, &l.seen.count, 2, 5000), 2);
    /* Meanwhile deliveries make no calls. */
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(virsh(&d, "suspend test"), 0);
    sleep_ms(50);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(wait_locked(&l, &l.seen.count, 3, 5000), 3);
    /* The thread also writes the streams. */
    char buf[8192] = "";
    CHECK_INT(read_lines(NULL, stream, buf, sizeof buf, 3, 5000), 3);

    CHECK_INT(virConnectStopEventThread(conn), 0);
    CHECK_INT(wait_threads(threads), threads);
    CHECK_INT(virConnectStopEventThread(conn), -1);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OPERATION_INVALID);

    pthread_mutex_lock(&l.mu);
    CHECK_INT(l.seen.count, 3);
    CHECK_INT(l.off_main, 3);
    if (l.seen.count == 3) {
        EXPECT_TRANSITION(l.seen.xml[0], 1, 1, "test", TEST_UUID, "running", "paused", "suspended-paused");
        EXPECT_TRANSITION(l.seen.xml[1], 2, 1, "test", TEST_UUID, "paused", "running", "resumed-unpaused");
        EXPECT_TRANSITION(l.seen.xml[2], 3, 1, "test", TEST_UUID, "running", "paused", "suspended-paused");
        char line[2048];
        for (int i = 0; i < 3; i++)
            CHECK_STR(line_of(buf, i, line, sizeof line), l.seen.xml[i]);
    }
    pthread_mutex_unlock(&l.mu);

    /* Back to virDeliverEvents on this thread. */
    CHECK_INT(virsh(&d, "resume test"), 0);
    int fd = virConnectGetEventFD(conn);
    long long until = now_ms() + 5000;
    while (locked_get(&l, &l.seen.count) < 4 && now_ms() < until)
        if (readable_within(fd, 100))
            CHECK(virDeliverEvents(conn) >= 0);
    pthread_mutex_lock(&l.mu);
    CHECK_INT(l.seen.count, 4);
    CHECK_INT(l.off_main, 3);
    if (l.seen.count == 4)
        EXPECT_TRANSITION(l.seen.xml[3], 4, 1, "test", TEST_UUID, "paused", "running", "resumed-unpaused");
    pthread_mutex_unlock(&l.mu);

    /* Closing with the thread running stops it. */
    CHECK_INT(virConnectStartEventThread(conn), 0);
    CHECK_INT(count_threads(), threads + 1);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(wait_threads(threads), threads);
    close(stream);
    seen_clear(&l.seen);
    pthread_mutex_destroy(&l.mu);
    case_close(&d, "event thread on a remote connection");
}

/* ---- local emits on a remote connection ------------------------------------------------------ */

static void emit_remote(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    int stream = open_stream(conn, NULL);

    step(&d, conn, &seen, "suspend test");
    CHECK_INT(virConnectEmitEvent(conn, "<event type=\"local\"><n>1</n></event>"), 2);
    CHECK_INT(virDeliverEvents(conn), 1);
    /* A daemon event sent before an emit, but not yet read, is numbered when
     * it is read: after the emit. */
    CHECK_INT(virsh(&d, "resume test"), 0);
    CHECK_INT(readable_within(virConnectGetEventFD(conn), 5000), 1);
    CHECK_INT(virConnectEmitEvent(conn, "<event type=\"local\"><n>2</n></event>"), 3);
    CHECK_INT(deliver_until(conn, &seen, 4, 5000), 4);
    /* Bad XML is refused as on any connection. */
    CHECK_INT(virConnectEmitEvent(conn, "<event type=\"x\" seq=\"9\"/>"), -1);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_INVALID_ARG);
    CHECK_INT(virConnectEmitEvent(conn, "<event"), -1);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_XML_ERROR);
    CHECK_INT(deliver_for(conn, 100), 0);

    CHECK_INT(seen.count, 4);
    if (seen.count == 4) {
        EXPECT_TRANSITION(seen.xml[0], 1, 1, "test", TEST_UUID, "running", "paused", "suspended-paused");
        CHECK_STR(check_head(seen.xml[1], "local", 2), "<n>1</n></event>");
        CHECK_STR(check_head(seen.xml[2], "local", 3), "<n>2</n></event>");
        EXPECT_TRANSITION(seen.xml[3], 4, 1, "test", TEST_UUID, "paused", "running", "resumed-unpaused");
    }
    char buf[8192] = "", line[2048];
    read_some(stream, buf, sizeof buf);
    CHECK_INT(lines_in(buf), 4);
    for (int i = 0; i < 4 && i < seen.count; i++)
        CHECK_STR(line_of(buf, i, line, sizeof line), seen.xml[i]);

    CHECK_INT(virConnectClose(conn), 0);
    close(stream);
    seen_clear(&seen);
    case_close(&d, "emit on a remote connection");
}

/* ---- the state learned at open ---------------------------------------------------------------- */

/* Opens a new connection, runs `virsh CMD`, and checks the one event it
 * causes: seq 1, with these children. */
static void first_event(Daemon *d, const char *cmd, int id, const char *name, const char *uuid,
                        const char *old_state, const char *new_state, const char *reason)
{
    virConnectPtr conn = open_remote(d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    step(d, conn, &seen, cmd);
    if (seen.count == 1)
        expect_transition(seen.xml[0], 1, id, name, uuid, old_state, new_state, reason);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
}

/* The test driver resets its domains when its last connection closes (virsh's
 * own connection is one), so a `keeper` connection holds the daemon's state
 * while virsh changes it before the second connection is opened. */
static void state_learned_at_open(void)
{
    Daemon d;
    virConnectPtr keeper = case_open(&d);
    Seen kept = {0};
    add_seen(keeper, NULL, &kept);
    CHECK_INT(virsh(&d, "suspend test"), 0);
    CHECK_INT(deliver_until(keeper, &kept, 1, 5000), 1);

    /* Opened while test is paused: the resume's old-state is paused. */
    EXPECTED_HERE(first_event(&d, "resume test", 1, "test", TEST_UUID, "paused", "running", "resumed-unpaused"));

    /* Opened while test is shut off (id -1): the start's old-state is shutoff. */
    CHECK_INT(virsh(&d, "destroy test"), 0);
    EXPECTED_HERE(first_event(&d, "start test", 2, "test", TEST_UUID, "shutoff", "running", "started-booted"));

    /* A second, inactive domain defined before the open: its undefine is
     * shutoff -> shutoff, not nostate. */
    write_test2(&d);
    CHECK_INT(virsh(&d, "define '%s/test2.xml'", d.dir), 0);
    EXPECTED_HERE(first_event(&d, "undefine test2", -1, "test2", TEST2_UUID, "shutoff", "shutoff",
                              "undefined-removed"));

    CHECK_INT(virConnectClose(keeper), 0);
    seen_clear(&kept);
    case_close(&d, "domain states learned at open");
}

/* ---- opened while events flow ------------------------------------------------------------------ */

/* Connections opened while test flips between running and paused: the state
 * listed at open must make the first event's old-state right, that is, each
 * event's old-state is the state its reason leaves (running for
 * suspended-paused, paused for resumed-unpaused), never the new state, and the
 * next event goes on from it. Only the first event after open may say nostate:
 * when its change raced the listing (see below). */
static void open_while_flowing(void)
{
    Daemon d;
    /* Holds the test driver's state between the flipper's virsh runs. */
    virConnectPtr keeper = case_open(&d);
    pid_t flipper = start_flipper(&d);
    CHECK(flipper > 0);
    int opens = 0, events = 0, same = 0, nostate = 0, other = 0;
    /* At least 20 opens (each one registers 37 times and deregisters as
     * often: slow under valgrind), at most 150; past 4 s, 20 are enough. */
    long long enough = now_ms() + 4000, deadline = now_ms() + 60000;
    while (opens < 150 && now_ms() < deadline && !(opens >= 20 && now_ms() >= enough)) {
        virConnectPtr conn = virConnectOpen(d.uri);
        if (!conn) {
            other++;
            fprintf(stderr, "  open failed: %s\n", virGetLastErrorMessage());
            break;
        }
        opens++;
        Seen seen = {0};
        add_seen(conn, NULL, &seen);
        deliver_until(conn, &seen, 2, 2000);
        char prev[32] = "";
        for (int i = 0; i < seen.count; i++) {
            char old_state[32], new_state[32], reason[64];
            field(seen.xml[i], "old-state", old_state, sizeof old_state);
            field(seen.xml[i], "new-state", new_state, sizeof new_state);
            field(seen.xml[i], "reason", reason, sizeof reason);
            const char *want_old = strcmp(reason, "suspended-paused") == 0 ? "running" : "paused";
            const char *want_new = strcmp(reason, "suspended-paused") == 0 ? "paused" : "running";
            events++;
            if (strcmp(old_state, new_state) == 0) {
                if (same++ < 3)
                    fprintf(stderr, "  event %d after open %d: %s\n", i, opens, seen.xml[i]);
            } else if (i == 0 && strcmp(old_state, "nostate") == 0 && strcmp(new_state, want_new) == 0) {
                nostate++;
            } else if (strcmp(old_state, want_old) != 0 || strcmp(new_state, want_new) != 0 ||
                       (i > 0 && strcmp(old_state, prev) != 0)) {
                if (other++ < 3)
                    fprintf(stderr, "  event %d after open %d: %s\n", i, opens, seen.xml[i]);
            }
            snprintf(prev, sizeof prev, "%s", new_state);
        }
        CHECK_INT(virConnectClose(conn), 0);
        seen_clear(&seen);
    }
    stop_flipper(flipper);
    printf("opened %d connections while events flowed: %d events, %d with old-state = new-state, "
           "%d first events with old-state nostate\n",
           opens, events, same, nostate);
    CHECK(opens >= 20);
    CHECK(events >= opens);
    /* The library registers for events, then lists the states; libvirtd
     * sends an event from its event loop after the call that caused it has
     * returned, so a DOMAIN_GET_STATE reply can already show a transition
     * whose event comes after it. That event, the first after open, then says
     * old-state nostate (the state before it is unknown): counted above, and
     * allowed. A state-changing event never says old-state = new-state (e.g.
     * paused -> paused, suspended-paused), and no later event says nostate
     * (both counted in `same` and `other`). */
    CHECK_INT(same, 0);
    CHECK_INT(other, 0);
    CHECK_INT(virConnectClose(keeper), 0);
    case_close(&d, "opened while events flow: the first event's old-state");
}

/* ---- a burst over the queue limit ---------------------------------------------------------------- */

/* Nine events from one virsh run, read by one delivery (most likely) into a
 * handler queue that holds 3: the handler gets some and one events-lost for
 * the rest, the stream (whose pipe has room) gets all nine, and the state
 * record follows every event, dropped or not. */
static void queue_limit_burst(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Seen seen = {0};
    add_seen(conn, NULL, &seen);
    int stream = open_stream(conn, NULL);
    CHECK_INT(virConnectSetEventQueueLimit(conn, 3), 0);
    CHECK_INT(virsh(&d, "'suspend test; resume test; suspend test; resume test; suspend test; "
                        "resume test; suspend test; resume test; suspend test'"),
              0);
    sleep_ms(200);
    /* Deliver until the nine are accounted for: delivered or reported lost. */
    int fd = virConnectGetEventFD(conn), accounted = 0, lost_notices = 0, bad = 0;
    int handled = 0;
    long long deadline = now_ms() + 5000;
    while (accounted < 9 && now_ms() < deadline) {
        if (readable_within(fd, 100))
            CHECK(virDeliverEvents(conn) >= 0);
        for (; handled < seen.count; handled++) {
            const char *xml = seen.xml[handled];
            char v[32];
            if (is_type(xml, "events-lost")) {
                lost_notices++;
                CHECK_INT(seq_of(xml), 0);
                long long count = atoll(attr(xml, "count", v, sizeof v));
                long long first = atoll(attr(xml, "first-seq", v, sizeof v));
                long long last = atoll(attr(xml, "last-seq", v, sizeof v));
                CHECK_INT(last - first + 1, count);
                accounted += (int)count;
            } else {
                long long seq = seq_of(xml);
                int odd = seq % 2 == 1;
                char want[256];
                snprintf(want, sizeof want, "<old-state>%s</old-state><new-state>%s</new-state>",
                         odd ? "running" : "paused", odd ? "paused" : "running");
                if (!strstr(xml, want))
                    bad++;
                accounted++;
            }
        }
    }
    CHECK_INT(accounted, 9);
    CHECK_INT(bad, 0);
    CHECK(lost_notices <= 2);
    printf("burst of 9 over a queue limit of 3: %d handler calls, %d events-lost notices\n", seen.count,
           lost_notices);
    /* The stream got all nine. */
    char buf[16384] = "", line[2048];
    CHECK_INT(read_lines(NULL, stream, buf, sizeof buf, 9, 2000), 9);
    for (int i = 0; i < 9 && i < lines_in(buf); i++) {
        int odd = i % 2 == 0;
        EXPECT_TRANSITION(line_of(buf, i, line, sizeof line), i + 1, 1, "test", TEST_UUID,
                          odd ? "running" : "paused", odd ? "paused" : "running",
                          odd ? "suspended-paused" : "resumed-unpaused");
    }
    /* The record followed the dropped events: test is paused. */
    CHECK_INT(virConnectSetEventQueueLimit(conn, 100), 0);
    int before = seen.count;
    step(&d, conn, &seen, "resume test");
    if (seen.count == before + 1)
        EXPECT_TRANSITION(seen.xml[before], 10, 1, "test", TEST_UUID, "paused", "running", "resumed-unpaused");
    CHECK_INT(virConnectClose(conn), 0);
    close(stream);
    seen_clear(&seen);
    case_close(&d, "a burst over the queue limit");
}

/* ---- closing while events flow ------------------------------------------------------------------- */

/* A stream's reader on a thread of its own, as a real reader is: what the
 * library's end cannot write by the time the connection closes is dropped. */
typedef struct {
    int fd;
    char *buf;
    size_t size;
    int eof;
} StreamReader;

static void *read_stream(void *arg)
{
    StreamReader *r = arg;
    r->eof = read_to_eof(r->fd, r->buf, r->size, 5000);
    return NULL;
}

/* Closing while the daemon sends events (with and without the event thread):
 * the stream, read meanwhile, gets every event read until the goodbye, in
 * order and consistent, then connection-closed (client), then end of file;
 * nothing hangs. */
static void close_while_flowing(int threaded)
{
    Daemon d;
    int threads = count_threads();
    virConnectPtr conn = case_open(&d);
    int stream = open_stream(conn, NULL);
    static char buf[512 * 1024];
    buf[0] = '\0';
    pid_t flipper = start_flipper(&d);
    CHECK(flipper > 0);
    int fd = virConnectGetEventFD(conn);
    if (threaded)
        CHECK_INT(virConnectStartEventThread(conn), 0);
    /* Let 20 events through (read from the stream as they come). */
    long long deadline = now_ms() + 5000;
    while (lines_in(buf) < 20 && now_ms() < deadline) {
        if (!threaded && readable_within(fd, 20))
            CHECK(virDeliverEvents(conn) >= 0);
        if (read_some(stream, buf, sizeof buf) < 0 && threaded)
            readable_within(stream, 20);
    }
    CHECK(lines_in(buf) >= 20);
    int before = lines_in(buf);
    /* Let events pile up unread (without the thread) before closing. */
    sleep_ms(30);
    StreamReader reader = {stream, buf, sizeof buf, 0};
    pthread_t reading;
    CHECK_INT(pthread_create(&reading, NULL, read_stream, &reader), 0);
    long long t0 = now_ms();
    CHECK_INT(virConnectClose(conn), 0);
    CHECK(now_ms() - t0 < 2000);
    stop_flipper(flipper);
    pthread_join(reading, NULL);
    CHECK_INT(reader.eof, 1);
    CHECK_INT(wait_threads(threads), threads);
    close(stream);

    int n = lines_in(buf), bad = 0;
    char line[2048], prev[32] = "running";
    for (int i = 0; i < n - 1; i++) {
        char old_state[32], new_state[32];
        line_of(buf, i, line, sizeof line);
        field(line, "old-state", old_state, sizeof old_state);
        field(line, "new-state", new_state, sizeof new_state);
        if (!is_type(line, "domain-state-transition") || seq_of(line) != i + 1 || strcmp(old_state, prev) != 0 ||
            strcmp(old_state, new_state) == 0) {
            if (bad++ < 3)
                fprintf(stderr, "  line %d out of line: %s\n", i, line);
        }
        snprintf(prev, sizeof prev, "%s", new_state);
    }
    CHECK_INT(bad, 0);
    EXPECT_CLOSED(line_of(buf, n - 1, line, sizeof line), n, "client");
    printf("closed %s while events flowed: %d events (%d before the close), then connection-closed\n",
           threaded ? "with the event thread" : "without thread", n - 1, before);
    case_close(&d, threaded ? "close while events flow, event thread" : "close while events flow");
}

/* ---- closing a live connection with a stream open ---------------------------------------------- */

static void close_with_stream(void)
{
    Daemon d;
    virConnectPtr conn = case_open(&d);
    Rec rec = {0};
    add_rec(conn, NULL, &rec);
    int stream = open_stream(conn, NULL);
    step(&d, conn, &rec.seen, "suspend test");
    char buf[8192] = "";
    CHECK(read_some(stream, buf, sizeof buf) > 0);
    CHECK_INT(lines_in(buf), 1);

    CHECK_INT(wait_clients(&d, 1), 1);
    long long t0 = now_ms();
    CHECK_INT(virConnectClose(conn), 0);
    CHECK(now_ms() - t0 < 2000);
    CHECK_INT(rec.freed, 1);
    CHECK_INT(wait_clients(&d, 0), 0);
    /* The handler saw only the suspend. */
    CHECK_INT(rec.seen.count, 1);
    /* The stream carries connection-closed (client), then ends. */
    CHECK_INT(read_to_eof(stream, buf, sizeof buf, 3000), 1);
    CHECK_INT(lines_in(buf), 2);
    char line[2048];
    EXPECT_CLOSED(line_of(buf, 1, line, sizeof line), 2, "client");
    close(stream);

    /* The daemon lives on and serves others. */
    CHECK_INT(virsh(&d, "list --all"), 0);
    conn = open_remote(&d);
    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&rec.seen);
    case_close(&d, "close with a stream open");
}

int main(void)
{
    main_thread = pthread_self();
    long long t0 = now_ms();
    RUN(bad_socket_paths());
    RUN(no_thread());
    RUN(tcp_transport());
    RUN(lifecycle_sequence());
    RUN(metadata());
    RUN(other_objects());
    RUN(two_connections());
    RUN(filters());
    RUN(streams());
    RUN(event_thread());
    RUN(emit_remote());
    RUN(state_learned_at_open());
    RUN(queue_limit_burst());
    RUN(open_while_flowing());
    RUN(close_with_stream());
    RUN(close_while_flowing(0));
    RUN(close_while_flowing(1));
    printf("test_remote: %lld ms\n", now_ms() - t0);
    return check_done();
}
