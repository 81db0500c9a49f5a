/* Reading an event stream line by line, for the C tests: a growing buffer,
 * filled by one read(2) at a time, handing out whole lines. */
#ifndef VIREVENT_LINES_H
#define VIREVENT_LINES_H

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "seen_log.h"

typedef struct {
    int fd;
    char *buf;
    size_t start, len, cap; /* unread bytes: buf[start, len) */
    int eof;
} Lines;

static inline void lines_init(Lines *l, int fd)
{
    memset(l, 0, sizeof *l);
    l->fd = fd;
    l->cap = 1 << 17;
    l->buf = malloc(l->cap);
}

static inline void lines_free(Lines *l)
{
    free(l->buf);
    l->buf = NULL;
}

/* Waits up to `timeout_ms` for the stream to be readable, then reads once:
 * 1 when bytes came, 0 at end of file, -1 when nothing was readable. */
static inline int lines_fill(Lines *l, int timeout_ms)
{
    struct pollfd p = {l->fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0)
        return -1;
    if (l->start > 0) {
        memmove(l->buf, l->buf + l->start, l->len - l->start);
        l->len -= l->start;
        l->start = 0;
    }
    if (l->cap - l->len < 65536) {
        l->cap = l->cap * 2;
        l->buf = realloc(l->buf, l->cap);
    }
    ssize_t n;
    do
        n = read(l->fd, l->buf + l->len, l->cap - l->len);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
        l->eof = 1;
        return 0;
    }
    if (n < 0)
        return -1;
    l->len += (size_t)n;
    return 1;
}

/* The next complete line without its "\n", NUL-terminated in place and valid
 * until the next lines_fill; NULL when no complete line is buffered. Each line
 * handed out goes to the log of seen_log.h. */
static inline char *lines_next(Lines *l)
{
    char *s = l->buf + l->start;
    char *nl = memchr(s, '\n', l->len - l->start);
    if (!nl)
        return NULL;
    *nl = '\0';
    l->start = (size_t)(nl + 1 - l->buf);
    seen_log_received(seen_log_stream_conn(l->fd), s);
    return s;
}

/* Bytes of an unfinished line buffered. */
static inline size_t lines_partial(const Lines *l)
{
    return l->len - l->start;
}

#endif
