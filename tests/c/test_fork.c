/* fork(): a connection belongs to the process that opened it. In a forked
 * child every call on an inherited connection fails at once with
 * VIR_ERR_OPERATION_INVALID, "connection opened by process N, used in process
 * M"; virConnectClose there closes the child's copies of the descriptors and
 * nothing else (no freecb, no stream written, no lock taken); the parent goes
 * on as if nothing happened; the child can open connections of its own.
 *
 * Children report, through check.h's child_exit, 0 or the number of their
 * first failed check (child_check). Every child has alarm() as a safety net,
 * and the parent waits for it with a timeout (child_result). */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "lines.h"

/* The bit of the first failed child_check, counting from 1 (0: none). */
static int child_failed;
static int child_step;

static void child_check(int ok)
{
    child_step++;
    if (!ok && !child_failed)
        child_failed = child_step;
}

/* The call just made failed as every call in a child must. */
static void child_refused(int result, pid_t parent)
{
    char want[96];
    snprintf(want, sizeof want, "connection opened by process %d, used in process %d", (int)parent, (int)getpid());
    child_check(result == -1);
    child_check(virGetLastErrorCode() == VIR_ERR_OPERATION_INVALID);
    child_check(strstr(virGetLastErrorMessage(), want) != NULL);
}

/* A handler counting its calls, with a freecb counting its runs. */
typedef struct {
    atomic_int calls;
    atomic_int freed;
} Count;

static void count_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    (void)conn;
    (void)eventXML;
    atomic_fetch_add(&((Count *)arg)->calls, 1);
}

static void count_free(void *arg)
{
    atomic_fetch_add(&((Count *)arg)->freed, 1);
}

static int wait_count(atomic_int *n, int want, int ms)
{
    long long deadline = now_ms() + ms;
    while (atomic_load(n) < want && now_ms() < deadline)
        sleep_ms(1);
    return atomic_load(n);
}

/* The descriptors open now, as a bitmap of numbers below FDS (a memory
 * checker's own descriptors, if any, lie above). */
#define FDS 1024
static void open_fds(unsigned char *open)
{
    memset(open, 0, FDS);
    for (int fd = 0; fd < FDS; fd++)
        open[fd] = fcntl(fd, F_GETFD) >= 0;
}

/* A fresh connection works in the child. */
static void child_opens_its_own(void)
{
    virConnectPtr own = virConnectOpen(NULL);
    child_check(own != NULL);
    Count count = {0, 0};
    child_check(virConnectAddEventHandlerFull(own, NULL, count_handler, &count, count_free, 0) >= 0);
    child_check(virConnectEmitEvent(own, "<event type=\"mine\"/>") == 1);
    child_check(virDeliverEvents(own) == 1);
    child_check(virConnectClose(own) == 0);
    child_check(atomic_load(&count.freed) == 1);
}

/* ---- the event thread running in the parent ---------------------------------- */

static void with_event_thread(void)
{
    case_begin();
    unsigned char before[FDS], after[FDS];
    open_fds(before);
    int fds_unopened = count_fds();
    virConnectPtr conn = virConnectOpen(NULL);
    Count count = {0, 0};
    int id = virConnectAddEventHandlerFull(conn, NULL, count_handler, &count, count_free, 0);
    CHECK(id >= 0);
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    CHECK(dom != NULL);
    CHECK_INT(virConnectStartEventThread(conn), 0);
    emit(conn, "before");
    CHECK_INT(wait_count(&count.calls, 1, 2000), 1);
    /* The connection's descriptors: those opened since (its two epoll sets,
     * the queue's flag, the event thread's stop flag). */
    open_fds(after);
    int mine = 0;
    for (int fd = 0; fd < FDS; fd++)
        mine += after[fd] && !before[fd];
    CHECK(mine >= 4);

    pid_t parent = getpid();
    Forked child;
    if (fork_child(&child) == 0) {
        alarm(10);
        const char *const filter[] = {"x", NULL};
        child_refused(virConnectEmitEvent(conn, "<event type=\"child\"/>"), parent);
        child_refused(virDeliverEvents(conn), parent);
        child_refused(virConnectAddEventHandler(conn, NULL, count_handler, &count), parent);
        child_refused(virConnectRemoveEventHandler(conn, id), parent);
        child_refused(virConnectGetEventFD(conn), parent);
        child_refused(virConnectOpenEventStream(conn, filter, 0), parent);
        child_refused(virConnectStartEventThread(conn), parent);
        child_refused(virConnectStopEventThread(conn), parent);
        child_refused(virConnectSetEventQueueLimit(conn, 5), parent);
        child_check(virDomainLookupByName(conn, "test") == NULL);
        child_refused(-1, parent);
        child_refused(virDomainSuspend(dom), parent);
        child_check(virConnectClose(conn) == 0);
        /* No freecb ran here, and the child's copies of the connection's
         * descriptors are closed. */
        child_check(atomic_load(&count.freed) == 0);
        int left_open = 0;
        for (int fd = 0; fd < FDS; fd++)
            left_open += after[fd] && !before[fd] && fcntl(fd, F_GETFD) >= 0;
        child_check(left_open == 0);
        child_opens_its_own();
        child_exit(&child, child_failed);
    }
    CHECK_INT(child_result(&child, 15000), 0);
    /* The parent's thread, handlers and domain are as they were. */
    emit(conn, "after");
    CHECK_INT(wait_count(&count.calls, 2, 2000), 2);
    CHECK_INT(virDomainSuspend(dom), 0);
    CHECK_INT(wait_count(&count.calls, 3, 2000), 3);
    CHECK_INT(virDomainFree(dom), 0);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&count.freed), 1);
    CHECK_INT(count_fds(), fds_unopened);
    case_end("fork with the event thread running: the child is refused, the parent unaffected");
}

/* ---- parent threads emitting (and holding the library's locks) at the fork -------- */

typedef struct {
    virConnectPtr conn;
    atomic_int stop;
    atomic_int failures;
} Emitter;

static void *emitter(void *arg)
{
    Emitter *e = arg;
    while (!atomic_load(&e->stop))
        if (virConnectEmitEvent(e->conn, "<event type=\"busy\"><a>some text</a></event>") <= 0)
            atomic_fetch_add(&e->failures, 1);
    return NULL;
}

static void while_threads_emit(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    Count count = {0, 0};
    CHECK(virConnectAddEventHandlerFull(conn, NULL, count_handler, &count, count_free, 0) >= 0);
    int stream = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    CHECK(stream >= 0);
    CHECK_INT(virConnectSetEventQueueLimit(conn, 1000), 0);
    Emitter e = {conn, 0, 0};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&threads[i], NULL, emitter, &e);
    pid_t parent = getpid();
    int forks = 0, clean = 0;
    for (int i = 0; i < 40; i++) {
        Forked child;
        if (fork_child(&child) == 0) {
            /* A lock a parent thread held at the fork is never released here:
             * any call that took one would hang until the alarm. */
            alarm(5);
            child_refused(virConnectEmitEvent(conn, "<event type=\"child\"/>"), parent);
            child_refused(virDeliverEvents(conn), parent);
            child_check(virConnectClose(conn) == 0);
            child_exit(&child, child_failed);
        }
        forks++;
        clean += child_result(&child, 10000) == 0;
        if (i % 8 == 0)
            CHECK(virDeliverEvents(conn) >= 0);
    }
    atomic_store(&e.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    CHECK_INT(clean, forks);
    CHECK_INT(atomic_load(&e.failures), 0);
    CHECK(virDeliverEvents(conn) > 0);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(atomic_load(&count.freed), 1);
    close(stream);
    case_end("fork while parent threads emit: no child hangs");
}

/* ---- the parent's streams --------------------------------------------------------- */

/* Reads `fd` to its end, for at most `ms`; returns the number of lines, and
 * counts those that are not the parent's events in seq order from 1. -1 when
 * the end did not come in time. */
static int read_to_end(int fd, int ms, int *out_of_order)
{
    Lines lines;
    lines_init(&lines, fd);
    int count = 0;
    long long last = 0, deadline = now_ms() + ms;
    int got;
    while ((got = lines_fill(&lines, deadline > now_ms() ? (int)(deadline - now_ms()) : 0)) > 0) {
        for (char *line; (line = lines_next(&lines)); count++) {
            if (seq_of(line) != last + 1 || !is_type(line, "parent"))
                (*out_of_order)++;
            last = seq_of(line);
        }
    }
    lines_free(&lines);
    return got == 0 ? count : -1;
}

static void parent_streams(void)
{
    case_begin();
    virConnectPtr conn = virConnectOpen(NULL);
    int stream = virConnectOpenEventStream(conn, NULL, 0);
    CHECK(stream >= 0);
    for (int i = 0; i < 10; i++)
        emit(conn, "parent");
    int go[2];
    CHECK_INT(pipe(go), 0);
    pid_t parent = getpid();
    Forked child;
    if (fork_child(&child) == 0) {
        alarm(10);
        close(go[1]);
        close(stream);
        child_refused(virConnectEmitEvent(conn, "<event type=\"child\"/>"), parent);
        child_check(virConnectClose(conn) == 0);
        /* Stays alive, holding whatever it did not close, until told. */
        char byte;
        child_check(read(go[0], &byte, 1) == 0);
        child_exit(&child, child_failed);
    }
    close(go[0]);
    sleep_ms(100);
    for (int i = 0; i < 10; i++)
        emit(conn, "parent");
    CHECK_INT(virConnectClose(conn), 0);
    /* The parent's events only, seqs 1 to 20 in order, then end of file while
     * the child still runs: it closed its copy of the pipe's write end. */
    int out_of_order = 0;
    CHECK_INT(read_to_end(stream, 3000, &out_of_order), 20);
    CHECK_INT(out_of_order, 0);
    close(go[1]);
    CHECK_INT(child_result(&child, 10000), 0);
    close(stream);
    case_end("fork: the child neither writes into the parent's streams nor keeps them open");
}

int main(void)
{
    with_event_thread();
    while_threads_emit();
    parent_streams();
    return check_done();
}
