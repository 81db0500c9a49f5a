/* The log of every event a C test receives, for tests/c_programs.rs to
 * validate against docs/events.rng: when VIREVENT_SEEN_LOG names a file, each
 * event a handler of the program is called with, and each line it reads from
 * an event stream through lines.h, is appended to that file as one record
 * `R PID CONN XML`; each event the program emits itself as `E PID CONN SEQ`;
 * and each connection opened as `O PID CONN -`. The events a program emits
 * are its own, of any type and content (a test may emit a
 * `domain-state-transition` of its own making): the connection and seq of
 * each tell them apart from what the library made, and the `O` records which
 * connection a reused address stands for.
 *
 * check.h includes this header, whose macros route virConnectOpen,
 * virConnectEmitEvent, virConnectOpenEventStream and both forms of
 * virConnectAddEventHandler through the functions below. Every handler is
 * wrapped at registration: seen_log_add registers (with the Full form) a small
 * record of the test's handler, arg and freecb, whose own freecb runs the
 * test's, then frees it, so a handler costs nothing once it is gone (valgrind
 * sees no leak). Without VIREVENT_SEEN_LOG, or with a NULL handler (which the
 * library refuses), handlers go to the library unchanged.
 *
 * The file is opened before main, so that tests counting their descriptors
 * count it in every snapshot; close-on-exec, so that virsh and libvirtd do not
 * inherit it. Each line is one writev to a file opened O_APPEND: lines of
 * concurrent handlers, and of forked children, never interleave, and no lock
 * is taken (a child forked while another thread held one would hang). */
#ifndef VIREVENT_SEEN_LOG_H
#define VIREVENT_SEEN_LOG_H

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "virevent.h"

static int seen_log_fd = -1;

/* The connection of each event stream's descriptor, for lines.h. */
#define SEEN_LOG_FDS 4096
static _Atomic(virConnectPtr) seen_log_streams[SEEN_LOG_FDS];

__attribute__((constructor)) static void seen_log_open(void)
{
    const char *path = getenv("VIREVENT_SEEN_LOG");
    if (path && *path)
        seen_log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

/* Appends the record `KIND PID CONN TEXT` to the log, if there is one. errno is kept. */
static inline void seen_log_record(char kind, virConnectPtr conn, const char *text)
{
    if (seen_log_fd < 0 || !text)
        return;
    int saved = errno;
    char head[64];
    int len = snprintf(head, sizeof head, "%c %ld %p ", kind, (long)getpid(), (void *)conn);
    struct iovec parts[3] = {{head, (size_t)len}, {(void *)text, strlen(text)}, {(void *)"\n", 1}};
    ssize_t n = writev(seen_log_fd, parts, 3);
    (void)n;
    errno = saved;
}

/* An event received on `conn` (NULL: a stream whose connection is not known). */
static inline void seen_log_received(virConnectPtr conn, const char *xml)
{
    seen_log_record('R', conn, xml);
}

/* The connection of the event stream `fd`, or NULL. */
static inline virConnectPtr seen_log_stream_conn(int fd)
{
    return fd >= 0 && fd < SEEN_LOG_FDS ? atomic_load(&seen_log_streams[fd]) : NULL;
}

/* What a wrapped handler stands for. */
typedef struct {
    virEventHandler handler;
    void *arg;
    virFreeCallback freecb;
} SeenLogHandler;

static inline void seen_log_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    SeenLogHandler *h = arg;
    seen_log_received(conn, eventXML);
    h->handler(conn, eventXML, h->arg);
}

static inline void seen_log_free(void *arg)
{
    SeenLogHandler *h = arg;
    if (h->freecb)
        h->freecb(h->arg);
    free(h);
}

/* virConnectAddEventHandlerFull, with the handler wrapped when there is a log. */
static inline int seen_log_add(virConnectPtr conn, const char *const *filter, virEventHandler handler,
                               void *arg, virFreeCallback freecb, unsigned int flags)
{
    SeenLogHandler *h = seen_log_fd >= 0 && handler ? malloc(sizeof *h) : NULL;
    if (!h)
        return virConnectAddEventHandlerFull(conn, filter, handler, arg, freecb, flags);
    h->handler = handler;
    h->arg = arg;
    h->freecb = freecb;
    return virConnectAddEventHandlerFull(conn, filter, seen_log_handler, h, seen_log_free, flags);
}

/* virConnectAddEventHandler: the plain form itself when there is no log. */
static inline int seen_log_add_plain(virConnectPtr conn, const char *const *filter, virEventHandler handler,
                                     void *arg)
{
    if (seen_log_fd < 0 || !handler)
        return virConnectAddEventHandler(conn, filter, handler, arg);
    return seen_log_add(conn, filter, handler, arg, NULL, 0);
}

/* virConnectEmitEvent, recording the seq of what the program emits. */
static inline int seen_log_emit(virConnectPtr conn, const char *eventXML)
{
    int seq = virConnectEmitEvent(conn, eventXML);
    if (seq > 0) {
        char text[16];
        snprintf(text, sizeof text, "%d", seq);
        seen_log_record('E', conn, text);
    }
    return seq;
}

/* virConnectOpenEventStream, recording the stream's connection. */
static inline int seen_log_open_stream(virConnectPtr conn, const char *const *filter, unsigned int flags)
{
    int fd = virConnectOpenEventStream(conn, filter, flags);
    if (fd >= 0 && fd < SEEN_LOG_FDS)
        atomic_store(&seen_log_streams[fd], conn);
    return fd;
}

/* virConnectOpen, recording the connection: an address freed by a close
 * may come back for the next one, whose seqs start again from 1. */
static inline virConnectPtr seen_log_open_conn(const char *uri)
{
    virConnectPtr conn = virConnectOpen(uri);
    if (conn)
        seen_log_record('O', conn, "-");
    return conn;
}

#define virConnectOpen(uri) seen_log_open_conn((uri))
#define virConnectEmitEvent(conn, eventXML) seen_log_emit((conn), (eventXML))
#define virConnectOpenEventStream(conn, filter, flags) seen_log_open_stream((conn), (filter), (flags))
#define virConnectAddEventHandlerFull(conn, filter, handler, arg, freecb, flags) \
    seen_log_add((conn), (filter), (handler), (arg), (freecb), (flags))
#define virConnectAddEventHandler(conn, filter, handler, arg) \
    seen_log_add_plain((conn), (filter), (handler), (arg))

#endif
