/* Event streams (virevent.h: virConnectOpenEventStream): one
 * line of canonical XML per matching event, filters, argument errors, the
 * descriptor's flags, a reader that closes (no SIGPIPE), virConnectClose ending
 * the streams, and a stalled reader: emitters never block, memory stays
 * bounded, what the queue cannot hold is reported by one events-lost line, and
 * the backlog is written by the next emit, virDeliverEvents or the event
 * thread, and a thread-free loop learns when from the event descriptor. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "backlog.h"

static int is_lost(const char *xml)
{
    return strncmp(xml, "<event type=\"events-lost\" ", 26) == 0;
}

/* ---- lines read (lines.h reads them) -------------------------------------- */

/* Copies of lines read. */
typedef struct {
    int count, cap;
    char **line;
} Got;

static void got_add(Got *g, const char *s)
{
    if (g->count == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->line = realloc(g->line, g->cap * sizeof *g->line);
    }
    g->line[g->count++] = strdup(s);
}

static void got_clear(Got *g)
{
    for (int i = 0; i < g->count; i++)
        free(g->line[i]);
    free(g->line);
    memset(g, 0, sizeof *g);
}

/* Reads into `g` the lines readable now (waiting at most `timeout_ms` for each
 * chunk); returns how many came. */
static int read_lines(Lines *l, Got *g, int timeout_ms)
{
    int n = 0;
    for (;;) {
        char *s;
        while ((s = lines_next(l))) {
            got_add(g, s);
            n++;
        }
        if (l->eof || lines_fill(l, timeout_ms) <= 0)
            return n;
    }
}

/* Reads until end of file (waiting at most 10 s); returns whether it came. */
static int read_to_eof(Lines *l, Got *g)
{
    double deadline = now_s() + 10;
    while (!l->eof && now_s() < deadline)
        read_lines(l, g, 100);
    return l->eof;
}

static int readable_now(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* The lowest free descriptor number: unchanged when nothing leaked one. */
static int lowest_free_fd(void)
{
    int fd = dup(2);
    close(fd);
    return fd;
}

/* An event of about 200 bytes in its canonical form. */
static const char *bulk_xml(void)
{
    static char xml[256];
    if (!xml[0]) {
        char pad[113];
        memset(pad, 'x', sizeof pad - 1);
        pad[sizeof pad - 1] = '\0';
        snprintf(xml, sizeof xml, "<event type=\"bulk\"><payload>%s</payload></event>", pad);
    }
    return xml;
}

/* ---- one line per event, the same text handlers get ----------------------- */

static void lines_are_events(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    Rec all = {0};
    CHECK(virConnectAddEventHandler(conn, NULL, rec_handler, &all) >= 0);
    int fd = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    CHECK(fd >= 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    /* Nothing emitted yet: nothing to read. */
    CHECK(!readable_now(fd));

    static const char *const events[] = {
        "<event type=\"plain\"/>",
        "<event type=\"attrs\" timestamp=\"1221756307.123456\" extra=\"a&amp;b\">"
        "<child x=\"1\">text &lt; more</child></event>",
        "<?xml version=\"1.0\"?>\n<event type=\"multi\">\n  <line>one\ntwo\n</line>\n"
        "  <!-- a comment -->\n  <empty/>\n</event>\n",
        "<event type=\"cdata\"><![CDATA[<not a tag> & \nnext line]]></event>",
        "<event type=\"utf8\"><name>h\xc3\xa9llo \xe2\x82\xac</name></event>",
        "<event type=\"crlf\" note=\"a\nb\">x\r\ny\rz</event>",
    };
    const int n_events = (int)(sizeof events / sizeof events[0]);
    int seqs[8];
    for (int i = 0; i < n_events; i++) {
        seqs[i] = virConnectEmitEvent(conn, events[i]);
        CHECK(seqs[i] > 0);
    }
    /* A domain transition from the test driver goes into the stream too. */
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    CHECK(dom != NULL);
    CHECK_INT(virDomainSuspend(dom), 0);
    virDomainFree(dom);

    /* Readable at once: no virDeliverEvents needed. */
    CHECK(readable_now(fd));
    Lines l;
    lines_init(&l, fd);
    Got got = {0};
    read_lines(&l, &got, 0);
    CHECK_INT(got.count, n_events + 1);
    CHECK_INT(lines_partial(&l), 0);
    CHECK(!readable_now(fd));

    /* The handler gets the same events; each line is its text exactly. */
    CHECK_INT(virDeliverEvents(conn), n_events + 1);
    CHECK_INT(all.seen.count, n_events + 1);
    for (int i = 0; i < got.count && i < all.seen.count; i++) {
        CHECK_STR(got.line[i], all.seen.xml[i]);
        CHECK(strchr(all.seen.xml[i], '\n') == NULL);
        if (i < n_events)
            CHECK_INT(seq_of(got.line[i]), seqs[i]);
        if (i > 0)
            CHECK(seq_of(got.line[i]) > seq_of(got.line[i - 1]));
    }
    if (got.count == n_events + 1) {
        CHECK(is_type(got.line[n_events], "domain-state-transition"));
        CHECK_CONTAINS(got.line[n_events], "<new-state>paused</new-state>");
        CHECK_INT(seq_of(got.line[n_events]), seqs[n_events - 1] + 1);
        CHECK(is_type(got.line[2], "multi"));
        CHECK_CONTAINS(got.line[1], "timestamp=\"1221756307.123456\"");
    }
    /* Nothing more, even after delivery. */
    CHECK(!readable_now(fd));

    got_clear(&got);
    lines_free(&l);
    seen_clear(&all.seen);
    close(fd);
    CHECK_INT(virConnectClose(conn), 0);
}

/* ---- events emitted before the stream opened are not in it ----------------- */

static void from_now_on(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    emit(conn, "early");
    emit(conn, "early");
    int fd = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    CHECK(fd >= 0);
    CHECK(!readable_now(fd));
    int s = emit(conn, "late");
    CHECK_INT(s, 3);
    Lines l;
    lines_init(&l, fd);
    Got got = {0};
    read_lines(&l, &got, 0);
    CHECK_INT(got.count, 1);
    if (got.count == 1) {
        CHECK_INT(seq_of(got.line[0]), s);
        CHECK(is_type(got.line[0], "late"));
    }
    /* Nor do the early ones come later. */
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK(!readable_now(fd));
    got_clear(&got);
    lines_free(&l);
    close(fd);
    CHECK_INT(virConnectClose(conn), 0);
}

/* ---- filters ----------------------------------------------------------------- */

static void filters(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    static const char *const fa[] = {"a", NULL};
    static const char *const fp[] = {"p*", NULL};
    static const char *const fab[] = {"a", "b", NULL};
    static const char *const fstar[] = {"*", NULL};
    static const char *const fdom[] = {"domain-*", NULL};
    static const char *const fnone[] = {"nomatch", NULL};
    static const char *const fmid[] = {"p*-b", "c", NULL};
    const char *const *vectors[] = {NULL, fa, fp, fab, fstar, fdom, fnone, fmid};
    /* What each filter takes of: a b p1 p22 pa-b c a domain-state-transition */
    static const int want[][8] = {
        {1, 1, 1, 1, 1, 1, 1, 1}, /* NULL */
        {1, 0, 0, 0, 0, 0, 1, 0}, /* a */
        {0, 0, 1, 1, 1, 0, 0, 0}, /* p* */
        {1, 1, 0, 0, 0, 0, 1, 0}, /* a b */
        {1, 1, 1, 1, 1, 1, 1, 1}, /* * */
        {0, 0, 0, 0, 0, 0, 0, 1}, /* domain-* */
        {0, 0, 0, 0, 0, 0, 0, 0}, /* nomatch */
        {0, 0, 0, 0, 1, 1, 0, 0}, /* p*-b c */
    };
    enum { N = 8 };
    int fds[N];
    Rec recs[N];
    memset(recs, 0, sizeof recs);
    for (int i = 0; i < N; i++) {
        fds[i] = virConnectOpenEventStream(conn, vectors[i], VIR_EVENT_STREAM_NONBLOCK);
        CHECK(fds[i] >= 0);
        /* A handler with the same filter, to compare with. */
        CHECK(virConnectAddEventHandler(conn, vectors[i], rec_handler, &recs[i]) >= 0);
    }
    int seqs[8];
    const char *types[] = {"a", "b", "p1", "p22", "pa-b", "c", "a"};
    for (int e = 0; e < 7; e++)
        seqs[e] = emit(conn, types[e]);
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    CHECK_INT(virDomainSuspend(dom), 0);
    virDomainFree(dom);
    seqs[7] = seqs[6] + 1;
    CHECK(virDeliverEvents(conn) > 0);

    for (int i = 0; i < N; i++) {
        case_begin();
        Lines l;
        lines_init(&l, fds[i]);
        Got got = {0};
        read_lines(&l, &got, 0);
        int expect = 0;
        for (int e = 0; e < 8; e++)
            expect += want[i][e];
        CHECK_INT(got.count, expect);
        CHECK_INT(recs[i].seen.count, expect);
        int k = 0;
        for (int e = 0; e < 8; e++) {
            if (!want[i][e])
                continue;
            if (k < got.count) {
                CHECK_INT(seq_of(got.line[k]), seqs[e]);
                if (k < recs[i].seen.count)
                    CHECK_STR(got.line[k], recs[i].seen.xml[k]);
            }
            k++;
        }
        if (expect == 0)
            CHECK(!readable_now(fds[i]));
        got_clear(&got);
        lines_free(&l);
        seen_clear(&recs[i].seen);
        close(fds[i]);
        char what[64];
        snprintf(what, sizeof what, "stream with filter #%d", i);
        case_end(what);
    }
    CHECK_INT(virConnectClose(conn), 0);
}

/* ---- argument errors ------------------------------------------------------- */

static void bad_arguments(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    int free_fd = lowest_free_fd();

    const char *const empty_vector[] = {NULL};
    CHECK_INT(virConnectOpenEventStream(conn, empty_vector, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "filter[0]");

    const char *const empty_entry[] = {"", NULL};
    CHECK_INT(virConnectOpenEventStream(conn, empty_entry, VIR_EVENT_STREAM_NONBLOCK), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "filter[0]");

    const char *const second_empty[] = {"a", "", NULL};
    CHECK_INT(virConnectOpenEventStream(conn, second_empty, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "filter[1]");

    CHECK_INT(virConnectOpenEventStream(conn, NULL, 2), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "flags");
    CHECK_INT(virConnectOpenEventStream(conn, NULL, 2 | VIR_EVENT_STREAM_NONBLOCK), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "flags");
    CHECK_INT(virConnectOpenEventStream(conn, NULL, 0x80000000u), -1);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "flags");
    /* Bad flags with a bad filter: still refused, nothing opened. */
    CHECK_INT(virConnectOpenEventStream(conn, empty_vector, 4), -1);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_INVALID_ARG);

    CHECK_INT(virConnectOpenEventStream(NULL, NULL, 0), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "");
    CHECK_INT(virConnectOpenEventStream(NULL, NULL, VIR_EVENT_STREAM_NONBLOCK), -1);
    CHECK_ERROR(VIR_ERR_INVALID_CONN, "");

    /* No failed call left a descriptor open. */
    CHECK_INT(lowest_free_fd(), free_fd);

    /* A good call afterwards succeeds and resets the error. */
    int fd = virConnectOpenEventStream(conn, NULL, 0);
    CHECK(fd >= 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_STR(virGetLastErrorMessage(), "no error");
    close(fd);
    CHECK_INT(virConnectClose(conn), 0);
}

/* ---- the descriptor's flags -------------------------------------------------- */

static void descriptor_flags(void)
{
    virConnectPtr conn = virConnectOpen(NULL);

    int fd = virConnectOpenEventStream(conn, NULL, 0);
    CHECK(fd >= 0);
    int fdflags = fcntl(fd, F_GETFD);
    CHECK(fdflags >= 0 && (fdflags & FD_CLOEXEC));
    int flflags = fcntl(fd, F_GETFL);
    CHECK(flflags >= 0 && !(flflags & O_NONBLOCK));
    /* Blocking: a read returns the line once it is there. */
    int s = emit(conn, "one");
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    CHECK(n > 0);
    if (n > 0) {
        buf[n] = '\0';
        CHECK(buf[n - 1] == '\n');
        CHECK_INT(seq_of(buf), s);
        CHECK(strchr(buf, '\n') == buf + n - 1);
    }
    close(fd);

    fd = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    CHECK(fd >= 0);
    fdflags = fcntl(fd, F_GETFD);
    CHECK(fdflags >= 0 && (fdflags & FD_CLOEXEC));
    flflags = fcntl(fd, F_GETFL);
    CHECK(flflags >= 0 && (flflags & O_NONBLOCK));
    /* Empty: EAGAIN at once. */
    errno = 0;
    n = read(fd, buf, sizeof buf);
    CHECK_INT(n, -1);
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    s = emit(conn, "two");
    n = read(fd, buf, sizeof buf - 1);
    CHECK(n > 0);
    if (n > 0) {
        buf[n] = '\0';
        CHECK_INT(seq_of(buf), s);
    }
    errno = 0;
    CHECK_INT(read(fd, buf, sizeof buf), -1);
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    close(fd);
    CHECK_INT(virConnectClose(conn), 0);
}

/* ---- a reader that closes its end ------------------------------------------ */

static int calls;

static void count_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    (void)conn;
    (void)eventXML;
    (void)arg;
    calls++;
}

/* Emits `n` bulk events; returns how many were refused or out of order. */
static int emit_bulk(virConnectPtr conn, int n, int *last)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int s = virConnectEmitEvent(conn, bulk_xml());
        if (s <= 0 || (last && s != *last + 1))
            bad++;
        if (last)
            *last = s;
    }
    return bad;
}

/* Reads a stream that stays open until `total` lines came (no events-lost),
 * calling virDeliverEvents when nothing is readable; checks seqs first..first+total-1. */
static void read_all_in_order(virConnectPtr conn, int fd, int first, int total)
{
    Lines l;
    lines_init(&l, fd);
    int count = 0, wrong = 0, lost = 0;
    double deadline = now_s() + 20;
    while (count < total && now_s() < deadline) {
        char *s;
        while ((s = lines_next(&l))) {
            if (is_lost(s))
                lost++;
            else if (seq_of(s) != first + count)
                wrong++;
            count++;
        }
        if (count < total && lines_fill(&l, 0) < 0)
            CHECK(virDeliverEvents(conn) >= 0);
    }
    CHECK_INT(count, total);
    CHECK_INT(wrong, 0);
    CHECK_INT(lost, 0);
    CHECK_INT(lines_partial(&l), 0);
    lines_free(&l);
}

static int sigpipe_pending(void)
{
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    return sigismember(&pending, SIGPIPE);
}

static int sigpipe_blocked(void)
{
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    return sigismember(&mask, SIGPIPE);
}

static void reader_closes(void)
{
    /* The default action for SIGPIPE, unblocked: a SIGPIPE ends the program. */
    signal(SIGPIPE, SIG_DFL);
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &pipe_set, NULL);

    int fds_unopened = count_fds();
    virConnectPtr conn = virConnectOpen(NULL);
    calls = 0;
    CHECK(virConnectAddEventHandler(conn, NULL, count_handler, NULL) >= 0);
    int fds_before = count_fds();
    int closing = virConnectOpenEventStream(conn, NULL, 0);
    int staying = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    CHECK(closing >= 0);
    CHECK(staying >= 0);
    int last = 0;
    CHECK_INT(emit_bulk(conn, 10, &last), 0);
    /* Closed with unread lines in it. */
    close(closing);
    /* Far more than any pipe holds. */
    CHECK_INT(emit_bulk(conn, 20000, &last), 0);
    CHECK_INT(last, 20010);
    CHECK_INT(virDeliverEvents(conn), 20010);
    CHECK_INT(calls, 20010);
    CHECK_INT(sigpipe_pending(), 0);
    /* The library blocked SIGPIPE only while it wrote. */
    CHECK_INT(sigpipe_blocked(), 0);
    /* The library let go of its end of the closed stream: one descriptor of
     * the two is left, the reader's end of the other stream... */
    CHECK_INT(count_fds(), fds_before + 2);
    /* ...which was not disturbed: every event, in order, none lost. */
    read_all_in_order(conn, staying, 1, 20010);
    close(staying);
    /* The staying stream's end goes at the next event it takes. */
    emit(conn, "after");
    CHECK_INT(count_fds(), fds_before);

    /* Closed while empty, and closed while the library has a backlog for it. */
    int empty = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    int backlog = virConnectOpenEventStream(conn, NULL, 0);
    CHECK(empty >= 0 && backlog >= 0);
    close(empty);
    CHECK_INT(emit_bulk(conn, 3000, NULL), 0);
    close(backlog);
    CHECK_INT(emit_bulk(conn, 3000, NULL), 0);
    CHECK(virDeliverEvents(conn) >= 0);
    CHECK_INT(count_fds(), fds_before);

    /* With SIGPIPE blocked, none is even pending afterwards. */
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    int a = virConnectOpenEventStream(conn, NULL, 0);
    int b = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    CHECK_INT(emit_bulk(conn, 1000, NULL), 0);
    close(a);
    close(b);
    CHECK_INT(emit_bulk(conn, 5000, NULL), 0);
    CHECK(virDeliverEvents(conn) >= 0);
    CHECK_INT(count_fds(), fds_before);
    CHECK_INT(sigpipe_pending(), 0);
    struct timespec zero = {0, 0};
    if (sigpipe_pending())
        sigtimedwait(&pipe_set, NULL, &zero);
    /* A SIGPIPE of the program's own, pending while blocked, stays pending
     * through writes to a reader that went away (and the mask stays). */
    pthread_kill(pthread_self(), SIGPIPE);
    CHECK_INT(sigpipe_pending(), 1);
    int d = virConnectOpenEventStream(conn, NULL, 0);
    CHECK_INT(emit_bulk(conn, 1000, NULL), 0);
    close(d);
    CHECK_INT(emit_bulk(conn, 1000, NULL), 0);
    CHECK(virDeliverEvents(conn) >= 0);
    CHECK_INT(count_fds(), fds_before);
    CHECK_INT(sigpipe_blocked(), 1);
    CHECK_INT(sigpipe_pending(), 1);
    CHECK_INT(sigtimedwait(&pipe_set, NULL, &zero), SIGPIPE);
    CHECK_INT(sigpipe_pending(), 0);
    pthread_sigmask(SIG_UNBLOCK, &pipe_set, NULL);

    /* The event thread writing a backlog to a reader that goes away. */
    CHECK_INT(virConnectStartEventThread(conn), 0);
    int c = virConnectOpenEventStream(conn, NULL, 0);
    CHECK(c >= 0);
    CHECK_INT(emit_bulk(conn, 3000, NULL), 0);
    char buf[4096];
    CHECK(read(c, buf, sizeof buf) > 0); /* the thread wakes to write more */
    close(c);
    sleep_ms(50);
    CHECK_INT(emit_bulk(conn, 3000, NULL), 0);
    sleep_ms(50);
    CHECK_INT(virConnectStopEventThread(conn), 0);
    CHECK_INT(sigpipe_pending(), 0);
    CHECK(virDeliverEvents(conn) >= 0);
    CHECK_INT(virConnectClose(conn), 0);
    /* Still alive: no SIGPIPE was raised. */
    CHECK_INT(sigpipe_pending(), 0);
    /* Closing let go of the connection's own descriptors too. */
    CHECK_INT(count_fds(), fds_unopened);
}

/* ---- virConnectClose ends every stream ---------------------------------------- */

static void close_ends_streams(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    static const char *const fa[] = {"a", NULL};
    int all = virConnectOpenEventStream(conn, NULL, 0);
    int only_a = virConnectOpenEventStream(conn, fa, VIR_EVENT_STREAM_NONBLOCK);
    int early = virConnectOpenEventStream(conn, fa, 0);
    CHECK(all >= 0 && only_a >= 0 && early >= 0);
    int s1 = emit(conn, "a");
    int s2 = emit(conn, "b");
    int s3 = emit(conn, "a");
    /* early's reader takes its lines before the close. */
    Lines l;
    Got got = {0};
    lines_init(&l, early);
    CHECK_INT(read_lines(&l, &got, 0), 2);
    /* A stream with more than its pipe holds waiting in its queue. */
    int backlog = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    CHECK(backlog >= 0);
    int last = s3;
    CHECK_INT(emit_bulk(conn, 3000, &last), 0);

    CHECK_INT(virConnectClose(conn), 0);

    /* early: end of file, nothing more. */
    CHECK_INT(read_to_eof(&l, &got), 1);
    CHECK_INT(got.count, 2);
    CHECK_INT(lines_partial(&l), 0);
    got_clear(&got);
    lines_free(&l);
    close(early);

    /* all: its lines, then end of file (the blocking read returns 0). */
    int wrong;
    lines_init(&l, all);
    CHECK_INT(read_to_eof(&l, &got), 1);
    /* Its three lines, and what its pipe took of the 3000 (it has a
     * backlog too). */
    CHECK(got.count > 3 && got.count <= 3 + 3000);
    if (got.count >= 3) {
        CHECK_INT(seq_of(got.line[0]), s1);
        CHECK_INT(seq_of(got.line[1]), s2);
        CHECK_INT(seq_of(got.line[2]), s3);
    }
    wrong = 0;
    for (int i = 3; i < got.count; i++)
        if (seq_of(got.line[i]) != s3 + i - 2)
            wrong++;
    CHECK_INT(wrong, 0);
    CHECK_INT(lines_partial(&l), 0);
    char c;
    CHECK_INT(read(all, &c, 1), 0);
    got_clear(&got);
    lines_free(&l);
    close(all);

    lines_init(&l, only_a);
    CHECK_INT(read_to_eof(&l, &got), 1);
    CHECK_INT(got.count, 2);
    if (got.count == 2) {
        CHECK_INT(seq_of(got.line[0]), s1);
        CHECK_INT(seq_of(got.line[1]), s3);
    }
    CHECK_INT(read(only_a, &c, 1), 0);
    got_clear(&got);
    lines_free(&l);
    close(only_a);

    /* The backlog: what was written, whole lines in order, then end of file
     * (what waited in the queue is discarded with the connection). */
    lines_init(&l, backlog);
    CHECK_INT(read_to_eof(&l, &got), 1);
    CHECK(got.count > 0 && got.count <= 3000);
    wrong = 0;
    for (int i = 0; i < got.count; i++)
        if (seq_of(got.line[i]) != s3 + 1 + i)
            wrong++;
    CHECK_INT(wrong, 0);
    CHECK_INT(lines_partial(&l), 0);
    printf("close with a backlog: the reader got %d of 3000 lines, then end of file\n", got.count);
    got_clear(&got);
    lines_free(&l);
    close(backlog);
}

/* ---- a stalled reader ---------------------------------------------------------- */

static long vm_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* What a reader found in a stream after a stall. */
typedef struct {
    long long normal;      /* lines of emitted events */
    long long lost_lines;  /* events-lost lines */
    long long before_lost; /* normal lines before the first events-lost */
    long long last_before; /* seq of the last line before it */
    long long count, first, last, lost_seq; /* the first events-lost line */
    long long after_bad;   /* lines after it with seq <= last-seq */
    long long not_increasing;
    long long first_seq;   /* of the first line */
    long long last_seq;    /* of the last normal line */
    int rounds;            /* virDeliverEvents calls that made more readable */
    int wrong_type;
} Stall;

/* Reads the stream until a line or notice covers seq `until` (or 30 s pass),
 * calling virDeliverEvents whenever nothing is readable. */
static void read_stall(virConnectPtr conn, int fd, long long until, Stall *st)
{
    memset(st, 0, sizeof *st);
    st->first_seq = -1;
    Lines l;
    lines_init(&l, fd);
    long long prev = 0;
    int done = 0, idle = 0;
    double deadline = now_s() + 30;
    while (!done && now_s() < deadline) {
        char *s;
        while ((s = lines_next(&l))) {
            if (is_lost(s)) {
                st->lost_lines++;
                if (st->lost_lines == 1) {
                    st->count = attr_num(s, "count");
                    st->first = attr_num(s, "first-seq");
                    st->last = attr_num(s, "last-seq");
                    st->lost_seq = attr_num(s, "seq");
                    st->before_lost = st->normal;
                    st->last_before = prev;
                }
                if (attr_num(s, "last-seq") >= until)
                    done = 1;
                continue;
            }
            long long seq = seq_of(s);
            if (st->first_seq < 0)
                st->first_seq = seq;
            if (seq <= prev)
                st->not_increasing++;
            if (st->lost_lines && seq <= st->last)
                st->after_bad++;
            if (!is_type(s, "bulk"))
                st->wrong_type++;
            prev = seq;
            st->last_seq = seq;
            st->normal++;
            if (seq >= until)
                done = 1;
        }
        if (done)
            break;
        if (lines_fill(&l, 0) > 0) {
            idle = 0;
            continue;
        }
        /* Nothing readable: the backlog is written by the next delivery. */
        CHECK_INT(virDeliverEvents(conn), 0);
        if (readable_now(fd))
            st->rounds++;
        else if (++idle > 3)
            break; /* nothing more comes */
    }
    /* Nothing after: no partial line, no second notice. */
    CHECK_INT(lines_partial(&l), 0);
    lines_free(&l);
}

/* Whether this runs under valgrind, whose own memory shows in VmRSS. */
static int under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload") != NULL;
}

static void stalled_reader(void)
{
    enum { TOTAL = 200000, FULL = 70000 };
    virConnectPtr conn = virConnectOpen(NULL);
    int fd = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    CHECK(fd >= 0);
    bulk_xml();
    long rss_before = vm_rss_kib(), rss_full = -1;
    double start = now_s(), slowest = 0;
    int refused = 0, out_of_order = 0, prev = 0;
    for (int i = 0; i < TOTAL; i++) {
        double t = now_s();
        int s = virConnectEmitEvent(conn, bulk_xml());
        double took = now_s() - t;
        if (took > slowest)
            slowest = took;
        if (s <= 0)
            refused++;
        if (s != prev + 1)
            out_of_order++;
        prev = s;
        /* By now the queue (65536) and the pipe are full. */
        if (i + 1 == FULL)
            rss_full = vm_rss_kib();
    }
    double elapsed = now_s() - start;
    long rss_after = vm_rss_kib();
    CHECK_INT(refused, 0);
    CHECK_INT(out_of_order, 0);
    CHECK_INT(prev, TOTAL);
    /* No emit waited for the reader. */
    CHECK(slowest < 1.0);
    CHECK(rss_before > 0 && rss_full > 0 && rss_after > 0);
    /* Bounded: the queue's 65536 events at most; and the events that found it
     * full cost nothing once dropped. Under valgrind, its shadow memory and
     * freed-block quarantine count too: the bounds are wider. */
    int vg = under_valgrind();
    CHECK(rss_after - rss_before < (vg ? 4 : 1) * 64 * 1024);
    CHECK(rss_after - rss_full < (vg ? 48 : 16) * 1024);
    printf("stalled reader: %d emits in %.2f s (slowest %.1f ms), VmRSS %ld -> %ld KiB (+%ld), "
           "+%ld KiB over the last %d emits%s\n",
           TOTAL, elapsed, slowest * 1000, rss_before, rss_after, rss_after - rss_before,
           rss_after - rss_full, TOTAL - FULL, vg ? " (under valgrind)" : "");

    Stall st;
    read_stall(conn, fd, TOTAL, &st);
    CHECK_INT(st.lost_lines, 1);
    CHECK_INT(st.lost_seq, 0);
    CHECK_INT(st.first_seq, 1);
    CHECK_INT(st.not_increasing, 0);
    CHECK_INT(st.wrong_type, 0);
    CHECK_INT(st.count, st.last - st.first + 1);
    CHECK_INT(st.first, st.last_before + 1);
    CHECK_INT(st.after_bad, 0);
    CHECK_INT(st.normal + st.count, TOTAL);
    CHECK_INT(st.before_lost, st.last_before); /* lines 1..A-1, none missing */
    /* The queue held its limit, the pipe a little more. */
    CHECK(st.before_lost >= 65536);
    CHECK(st.before_lost < TOTAL);
    CHECK(st.rounds >= 1);
    printf("stalled reader: %lld lines, then events-lost count=%lld first-seq=%lld last-seq=%lld; "
           "%d deliveries wrote more\n",
           st.normal, st.count, st.first, st.last, st.rounds);

    /* Afterwards the stream flows again, nothing lost. */
    int s1 = emit(conn, "later");
    int s2 = emit(conn, "later");
    Lines l;
    Got got = {0};
    lines_init(&l, fd);
    CHECK_INT(read_lines(&l, &got, 0), 2);
    if (got.count == 2) {
        CHECK_INT(seq_of(got.line[0]), s1);
        CHECK_INT(seq_of(got.line[1]), s2);
    }
    got_clear(&got);
    lines_free(&l);
    close(fd);
    CHECK_INT(virConnectClose(conn), 0);
}

/* ---- a small queue limit -------------------------------------------------------- */

static void small_limit(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    /* One stream opened before the limit is set, one after. */
    int before = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    CHECK_INT(virConnectSetEventQueueLimit(conn, 100), 0);
    int after = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    CHECK(before >= 0 && after >= 0);
    int last = 0;
    CHECK_INT(emit_bulk(conn, 1000, &last), 0);
    CHECK_INT(last, 1000);

    int fds[2] = {before, after};
    for (int i = 0; i < 2; i++) {
        case_begin();
        Stall st;
        read_stall(conn, fds[i], 1000, &st);
        CHECK_INT(st.lost_lines, 1);
        CHECK_INT(st.lost_seq, 0);
        CHECK_INT(st.first_seq, 1);
        CHECK_INT(st.not_increasing, 0);
        CHECK_INT(st.before_lost, st.last_before);
        CHECK_INT(st.first, st.last_before + 1);
        CHECK_INT(st.last, 1000);
        CHECK_INT(st.count, st.last - st.first + 1);
        CHECK_INT(st.normal + st.count, 1000);
        /* 100 queued, and what the pipe took. */
        CHECK(st.before_lost >= 100);
        CHECK(st.before_lost < 1000);
        printf("limit 100, stream %d: %lld lines, then events-lost count=%lld first-seq=%lld last-seq=%lld\n",
               i, st.normal, st.count, st.first, st.last);
        case_end(i == 0 ? "stream opened before the limit was set" : "stream opened after");
    }
    /* Later events follow the notice, none lost while the reader keeps up. */
    for (int round = 0; round < 3; round++) {
        int first = last + 1;
        CHECK_INT(emit_bulk(conn, 50, &last), 0);
        for (int i = 0; i < 2; i++)
            read_all_in_order(conn, fds[i], first, 50);
    }
    close(before);
    close(after);
    CHECK_INT(virConnectClose(conn), 0);
}

/* Waits (at most 5 s) until the library's event thread sleeps; returns whether
 * it does. */
static int wait_event_thread_asleep(void)
{
    double deadline = now_s() + 5;
    while (now_s() < deadline) {
        DIR *d = opendir("/proc/self/task");
        struct dirent *e;
        int asleep = 0;
        while (d && (e = readdir(d))) {
            char path[300], text[512] = "";
            snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
            FILE *f = fopen(path, "r");
            if (!f)
                continue;
            int named = fgets(text, sizeof text, f) && strcmp(text, "virevent-events\n") == 0;
            fclose(f);
            if (!named)
                continue;
            snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
            f = fopen(path, "r");
            if (!f)
                continue;
            if (fgets(text, sizeof text, f)) {
                const char *state = strrchr(text, ')');
                asleep = state && state[1] == ' ' && state[2] == 'S';
            }
            fclose(f);
        }
        if (d)
            closedir(d);
        if (asleep)
            return 1;
        sleep_ms(1);
    }
    return 0;
}

/* With the event thread running (and a NULL-filter handler when `with_handler`),
 * a stalled stream's backlog reaches a reader that only reads. */
static void thread_writes_backlog(int with_handler)
{
    enum { N = 10000 };
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    calls = 0;
    if (with_handler)
        CHECK(virConnectAddEventHandler(conn, NULL, count_handler, NULL) >= 0);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    int fd = virConnectOpenEventStream(conn, NULL, 0);
    CHECK(fd >= 0);
    /* Let the thread settle in its wait first: then only the library can
     * wake it. */
    CHECK(wait_event_thread_asleep());
    sleep_ms(20);
    int last = 0;
    CHECK_INT(emit_bulk(conn, N, &last), 0);
    Lines l;
    lines_init(&l, fd);
    Got got = {0};
    /* Read until all came, or nothing came for 2 s. */
    double idle_until = now_s() + 2;
    while (got.count < N && now_s() < idle_until)
        if (read_lines(&l, &got, 100) > 0)
            idle_until = now_s() + 2;
    CHECK_INT(got.count, N);
    int wrong = 0;
    for (int i = 0; i < got.count; i++)
        if (seq_of(got.line[i]) != 1 + i)
            wrong++;
    CHECK_INT(wrong, 0);
    CHECK_INT(virConnectStopEventThread(conn), 0);
    printf("event thread, %s: the reader got %d of %d lines without emitting or delivering\n",
           with_handler ? "a NULL-filter handler" : "no handler", got.count, N);
    got_clear(&got);
    lines_free(&l);
    close(fd);
    CHECK_INT(virConnectClose(conn), 0);
    case_end(with_handler ? "event thread flushes a backlog (with a handler)"
                          : "event thread flushes a backlog (no handler)");
}

/* ---- the backlog is written by the next emit, delivery or the event thread ---- */

static void backlog_flushing(void)
{
    enum { N = 10000 };
    virConnectPtr conn = virConnectOpen(NULL);
    static const char *const fbulk[] = {"bulk", NULL};
    int fd = virConnectOpenEventStream(conn, fbulk, VIR_EVENT_STREAM_NONBLOCK);
    CHECK(fd >= 0);
    int last = 0;
    CHECK_INT(emit_bulk(conn, N, &last), 0);

    Lines l;
    lines_init(&l, fd);
    Got got = {0};
    /* What the pipe holds now; then nothing, until something writes more. */
    int first_batch = read_lines(&l, &got, 0);
    CHECK(first_batch > 0 && first_batch < N);
    CHECK(!readable_now(fd));
    sleep_ms(20);
    CHECK(!readable_now(fd));

    /* virDeliverEvents, with no handler at all, writes more. */
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK(readable_now(fd));
    read_lines(&l, &got, 0);
    CHECK(got.count > first_batch);
    CHECK(!readable_now(fd));

    /* So does the next emit, of an event this stream does not even take. */
    int before = got.count;
    int other = emit(conn, "other");
    CHECK(readable_now(fd));
    read_lines(&l, &got, 0);
    CHECK(got.count > before);

    /* ...and the next emit of one it takes: older lines first. */
    before = got.count;
    int mine = virConnectEmitEvent(conn, bulk_xml());
    CHECK_INT(mine, other + 1);
    CHECK(readable_now(fd));
    read_lines(&l, &got, 0);
    CHECK(got.count > before);

    /* Deliveries until all is there: before each, nothing is readable; after
     * each, more is. */
    int rounds = 0, early = 0, stuck = 0;
    double deadline = now_s() + 20;
    while (got.count < N + 1 && now_s() < deadline) {
        if (readable_now(fd))
            early++;
        CHECK_INT(virDeliverEvents(conn), 0);
        if (!readable_now(fd))
            stuck++;
        if (read_lines(&l, &got, 0) > 0)
            rounds++;
        if (stuck > 3)
            break;
    }
    CHECK_INT(got.count, N + 1);
    CHECK_INT(early, 0);
    CHECK_INT(stuck, 0);
    CHECK(rounds >= 1);
    int wrong = 0, lost = 0;
    for (int i = 0; i < got.count; i++) {
        if (is_lost(got.line[i]))
            lost++;
        /* 1..N, then (the "other" event not taken) the last bulk one. */
        long long want = i < N ? i + 1 : mine;
        if (seq_of(got.line[i]) != want)
            wrong++;
    }
    CHECK_INT(wrong, 0);
    CHECK_INT(lost, 0);
    CHECK_INT(lines_partial(&l), 0);
    CHECK(!readable_now(fd));
    printf("backlog: %d lines at first, %d more deliveries to get all %d\n", first_batch, rounds, N + 1);
    got_clear(&got);
    lines_free(&l);

    close(fd);
    CHECK_INT(virConnectClose(conn), 0);

    /* The event thread writes the backlog as the reader makes room: the reader
     * only reads. With a handler that takes every event, and with none. */
    thread_writes_backlog(1);
    thread_writes_backlog(0);
}

/* ---- closed readers are released; a backlog makes room before a drop ------ */

/* A stream whose reader closed is released without an event it takes: by
 * virDeliverEvents, and by the event thread on its own. */
static void closed_readers_are_released(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    const char *rare[] = {"x", NULL};
    int before = count_fds();
    int fds[5];
    for (int i = 0; i < 5; i++)
        fds[i] = virConnectOpenEventStream(conn, rare, 0);
    CHECK_INT(count_fds(), before + 10); /* our ends and the library's */
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    CHECK_INT(count_fds(), before + 5);
    emit(conn, "y"); /* no stream takes it */
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(count_fds(), before);

    /* The event thread notices the hang-up by itself. */
    CHECK_INT(virConnectStartEventThread(conn), 0);
    int threaded = count_fds();
    int fd = virConnectOpenEventStream(conn, rare, 0);
    CHECK_INT(count_fds(), threaded + 2);
    close(fd);
    double deadline = now_s() + 5;
    while (count_fds() != threaded && now_s() < deadline)
        sleep_ms(1);
    CHECK_INT(count_fds(), threaded);
    CHECK_INT(virConnectClose(conn), 0);
    case_end("closed readers are released");
}

/* When the queue is full but the reader has made room, an emit writes what
 * waited before it queues its own event: nothing is dropped needlessly. */
static void backlog_makes_room_before_dropping(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    CHECK_INT(virConnectSetEventQueueLimit(conn, 100), 0);
    int fd = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    int last = 0;
    CHECK_INT(emit_bulk(conn, 1000, &last), 0); /* fills the pipe, then the queue */
    Lines l;
    lines_init(&l, fd);
    Got got = {0};
    while (read_lines(&l, &got, 0) > 0) {
    }
    int seen_before = got.count;
    CHECK(seen_before < 1000); /* the stall dropped some */
    int seq = virConnectEmitEvent(conn, bulk_xml());
    while (read_lines(&l, &got, 100) > 0) {
    }
    /* What waited, the notice of what was dropped, then the new event itself. */
    CHECK(got.count >= seen_before + 102);
    CHECK(got.count > 1 && is_lost(got.line[got.count - 2]));
    CHECK_INT(seq_of(got.line[got.count - 1]), seq);
    CHECK(attr_num(got.line[got.count - 2], "last-seq") < seq);
    got_clear(&got);
    lines_free(&l);
    close(fd);
    CHECK_INT(virConnectClose(conn), 0);
    case_end("backlog makes room before dropping");
}

int main(void)
{
    lines_are_events();
    from_now_on();
    filters();
    bad_arguments();
    descriptor_flags();
    reader_closes();
    close_ends_streams();
    stalled_reader();
    small_limit();
    backlog_flushing();
    closed_readers_are_released();
    backlog_makes_room_before_dropping();
    virConnectPtr conn = virConnectOpen(NULL);
    backlog_drains_through_event_fd(conn, "embedded: a stalled stream drained through the event fd");
    CHECK_INT(virConnectClose(conn), 0);
    return check_done();
}
