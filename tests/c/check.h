/* A minimal check library for virevent's C tests: each CHECK prints where it
 * failed, and check_done() prints "N passed, N failed" and gives the exit code.
 * The counts are atomic, so that cases may run on threads of their own. */
#ifndef VIREVENT_CHECK_H
#define VIREVENT_CHECK_H

#include <dirent.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "virevent.h"
/* Every event received is logged when VIREVENT_SEEN_LOG is set. */
#include "seen_log.h"

static _Atomic int check_passed, check_failed;

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (cond) {                                                           \
            check_passed++;                                                   \
        } else {                                                              \
            check_failed++;                                                   \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                   \
        }                                                                     \
    } while (0)

#define CHECK_INT(got, want)                                                  \
    do {                                                                      \
        long long check_got_ = (long long)(got), check_want_ = (long long)(want); \
        if (check_got_ == check_want_) {                                      \
            check_passed++;                                                   \
        } else {                                                              \
            check_failed++;                                                   \
            fprintf(stderr, "%s:%d: %s is %lld, want %lld (last error %d: %s)\n", \
                    __FILE__, __LINE__, #got, check_got_, check_want_,        \
                    virGetLastErrorCode(), virGetLastErrorMessage());         \
        }                                                                     \
    } while (0)

#define CHECK_STR(got, want)                                                  \
    do {                                                                      \
        const char *check_got_ = (got), *check_want_ = (want);                \
        if (check_got_ && strcmp(check_got_, check_want_) == 0) {             \
            check_passed++;                                                   \
        } else {                                                              \
            check_failed++;                                                   \
            fprintf(stderr, "%s:%d: %s is \"%s\",\n  want \"%s\"\n", __FILE__, \
                    __LINE__, #got, check_got_ ? check_got_ : "(null)",       \
                    check_want_);                                             \
        }                                                                     \
    } while (0)

#define CHECK_CONTAINS(got, part)                                             \
    do {                                                                      \
        const char *check_got_ = (got), *check_part_ = (part);                \
        if (check_got_ && strstr(check_got_, check_part_)) {                  \
            check_passed++;                                                   \
        } else {                                                              \
            check_failed++;                                                   \
            fprintf(stderr, "%s:%d: %s is \"%s\", which lacks \"%s\"\n",      \
                    __FILE__, __LINE__, #got, check_got_ ? check_got_ : "(null)", \
                    check_part_);                                             \
        }                                                                     \
    } while (0)

/* The last call failed with `code` and a message containing `part`. */
#define CHECK_ERROR(code, part)                                               \
    do {                                                                      \
        CHECK_INT(virGetLastErrorCode(), code);                               \
        CHECK_CONTAINS(virGetLastErrorMessage(), part);                       \
    } while (0)

static inline int check_done(void)
{
    printf("%d passed, %d failed\n", atomic_load(&check_passed), atomic_load(&check_failed));
    return check_failed ? 1 : 0;
}

/* Copies of delivered events, for tests to look at after delivery. */
typedef struct {
    int count;
    char *xml[256];
} Seen;

static inline void seen_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Seen *seen = arg;
    (void)conn;
    if (seen->count < 256)
        seen->xml[seen->count++] = strdup(eventXML);
}

static inline void seen_clear(Seen *seen)
{
    for (int i = 0; i < seen->count; i++)
        free(seen->xml[i]);
    seen->count = 0;
}

/* A handler's record: the events it saw, and how often its freecb ran. */
typedef struct {
    Seen seen;
    int freed;
} Rec;

static inline void rec_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    seen_handler(conn, eventXML, &((Rec *)arg)->seen);
}

static inline void rec_free(void *arg)
{
    ((Rec *)arg)->freed++;
}

/* Emits `<event type="TYPE"/>` and checks that it was accepted; returns its seq. */
static inline int emit(virConnectPtr conn, const char *type)
{
    char xml[256];
    snprintf(xml, sizeof xml, "<event type=\"%s\"/>", type);
    int seq = virConnectEmitEvent(conn, xml);
    CHECK(seq > 0);
    return seq;
}

/* The seq attribute of event XML, or -1. */
static inline long long seq_of(const char *xml)
{
    const char *p = xml ? strstr(xml, " seq=\"") : NULL;
    return p ? strtoll(p + 6, NULL, 10) : -1;
}

/* Brackets a group of checks: case_end names the case when one of them failed. */
static int case_failed_before;

static inline void case_begin(void)
{
    case_failed_before = check_failed;
}

static inline void case_end(const char *what)
{
    if (check_failed != case_failed_before)
        fprintf(stderr, "  ^ in case: %s\n", what);
}


/* ---- time and the root element's attributes ----------------------------- */

static inline void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static inline long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The value of attribute `name` of the root element, copied into `out` ("" when
 * absent). Only the first tag is looked at. */
static inline const char *attr(const char *xml, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    if (!xml)
        return out;
    const char *end = strchr(xml, '>');
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *p = strstr(xml, key);
    if (!p || (end && p > end))
        return out;
    p += strlen(key);
    size_t n = 0;
    while (p[n] && p[n] != '"' && n + 1 < size) {
        out[n] = p[n];
        n++;
    }
    out[n] = '\0';
    return out;
}

/* A numeric attribute of the root element, or -1 when absent. */
static inline long long attr_num(const char *xml, const char *name)
{
    char v[64];
    attr(xml, name, v, sizeof v);
    return v[0] ? strtoll(v, NULL, 10) : -1;
}

static inline int is_type(const char *xml, const char *type)
{
    char got[64];
    return strcmp(attr(xml, "type", got, sizeof got), type) == 0;
}

/* ---- this process's threads and descriptors ------------------------------------- */

/* The number of entries of the folder `path` (. and .. aside), or -1. */
static inline int count_entries(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(dir);
    return n;
}

/* The number of threads of this process (libvirtd and virsh are other
 * processes and do not count). */
static inline int count_threads(void)
{
    return count_entries("/proc/self/task");
}

/* The number of open descriptors of this process. */
static inline int count_fds(void)
{
    return count_entries("/proc/self/fd");
}

/* Waits, for at most 3 s, until there are `want` threads; returns the count. A
 * joined thread may linger in /proc for a moment after pthread_join returns. */
static inline int wait_threads(int want)
{
    long long deadline = now_ms() + 3000;
    int n = count_threads();
    while (n != want && now_ms() < deadline) {
        sleep_ms(1);
        n = count_threads();
    }
    return n;
}

/* ---- child processes ---------------------------------------------------------- */

/* A forked child that reports a result byte through a pipe, then ends by
 * SIGKILL: a child holds copies of what its parent allocated, which a memory
 * checker (valgrind's leak check at exit) would otherwise blame on it. */
typedef struct {
    pid_t pid;
    int report; /* the parent's: the read end; the child's: the write end */
} Forked;

/* Forks; returns 0 in the child, the child's pid in the parent (which exits
 * the test on failure). */
static inline pid_t fork_child(Forked *f)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    fflush(stderr);
    f->pid = fork();
    if (f->pid < 0) {
        perror("fork");
        exit(2);
    }
    close(fds[f->pid == 0 ? 0 : 1]);
    f->report = fds[f->pid == 0 ? 1 : 0];
    return f->pid;
}

/* Ends the child with `result` (0 to 255) for the parent's child_result. */
static inline void child_exit(Forked *f, int result)
{
    unsigned char byte = (unsigned char)result;
    if (write(f->report, &byte, 1) != 1)
        _exit(2);
    kill(getpid(), SIGKILL);
    _exit(result);
}

/* Waits at most `ms` for the child's result; -1 when none came (the child is
 * killed if it still runs). */
static inline int child_result(Forked *f, int ms)
{
    unsigned char byte;
    long long deadline = now_ms() + ms;
    int result = -1;
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd p = {f->report, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = read(f->report, &byte, 1);
        if (n == 1)
            result = byte;
        if (n == 1 || n == 0)
            break;
    }
    close(f->report);
    if (result < 0)
        kill(f->pid, SIGKILL);
    waitpid(f->pid, NULL, 0);
    return result;
}

/* ---- a handler that takes 200 ms, and its freecb ------------------------------ */

/* What a slow handler and its freecb saw: whether a call is running, how many
 * began and returned, how often the freecb ran and whether during a call. */
typedef struct {
    atomic_int in_call;
    atomic_int calls;
    atomic_int returned;
    atomic_int freed;
    atomic_int freed_during_call;
    atomic_int release;   /* for gate_handler */
    atomic_int timed_out; /* gate_handler gave up waiting */
} Slow;

static inline void slow_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Slow *s = arg;
    (void)conn;
    (void)eventXML;
    atomic_fetch_add(&s->calls, 1);
    atomic_store(&s->in_call, 1);
    sleep_ms(200);
    atomic_store(&s->in_call, 0);
    atomic_fetch_add(&s->returned, 1);
}

static inline void slow_free(void *arg)
{
    Slow *s = arg;
    if (atomic_load(&s->in_call))
        atomic_fetch_add(&s->freed_during_call, 1);
    atomic_fetch_add(&s->freed, 1);
}

#endif
