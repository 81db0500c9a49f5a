/* A stream backlog drained by a thread-free poll loop that delivers only when
 * the connection's event descriptor says so: shared by the embedded
 * (test_streams.c) and remote (test_remote_protocol.c) tests, since the event
 * descriptor must watch stream backlogs on every kind of connection. */
#ifndef VIREVENT_BACKLOG_H
#define VIREVENT_BACKLOG_H

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "check.h"
#include "lines.h"

#define BACKLOG_EMITS 200000
#define BACKLOG_LIMIT 100

/* What the reader got. */
typedef struct {
    long bulk;          /* "bulk" lines */
    long out_of_order;  /* bulk lines whose seq is not the one after the last */
    long long first_bulk, last_bulk;
    int lost;           /* events-lost lines */
    long long lost_count, lost_first, lost_last;
    int after;          /* the event emitted once events-lost was read */
    long long after_seq;
    int other;          /* any other line */
    int deliver_failures;
} Drained;

static inline void drained_line(Drained *d, const char *line, long long *after_seq_wanted, virConnectPtr conn)
{
    if (is_type(line, "bulk")) {
        long long seq = seq_of(line);
        if (d->bulk > 0 && seq != d->last_bulk + 1)
            d->out_of_order++;
        if (d->bulk == 0)
            d->first_bulk = seq;
        d->last_bulk = seq;
        d->bulk++;
    } else if (is_type(line, "events-lost")) {
        d->lost++;
        d->lost_count = attr_num(line, "count");
        d->lost_first = attr_num(line, "first-seq");
        d->lost_last = attr_num(line, "last-seq");
        /* Everything before it has been read: one event more, afterwards. */
        if (*after_seq_wanted == 0)
            *after_seq_wanted = virConnectEmitEvent(conn, "<event type=\"after\"/>");
    } else if (is_type(line, "after")) {
        d->after++;
        d->after_seq = seq_of(line);
    } else {
        d->other++;
    }
}

/* Emits BACKLOG_EMITS events into a stream (queue limit BACKLOG_LIMIT) that
 * nobody reads, then reads it in a loop of poll({stream, event fd}) that calls
 * virDeliverEvents only when the event fd polls readable: every line the pipe
 * and the queue held arrives, in order, then exactly one events-lost for the
 * rest, then an event emitted after that; and then the loop sleeps. */
static inline void backlog_drains_through_event_fd(virConnectPtr conn, const char *what)
{
    case_begin();
    CHECK_INT(virConnectSetEventQueueLimit(conn, BACKLOG_LIMIT), 0);
    int stream = virConnectOpenEventStream(conn, NULL, VIR_EVENT_STREAM_NONBLOCK);
    int efd = virConnectGetEventFD(conn);
    CHECK(stream >= 0 && efd >= 0);
    long long first = 0, last = 0;
    int refused = 0;
    for (int i = 0; i < BACKLOG_EMITS; i++) {
        int seq = virConnectEmitEvent(conn, "<event type=\"bulk\"/>");
        if (seq <= 0) {
            refused++;
            continue;
        }
        if (first == 0)
            first = seq;
        last = seq;
    }
    CHECK_INT(refused, 0);

    Drained d;
    memset(&d, 0, sizeof d);
    long long after_wanted = 0;
    Lines lines;
    lines_init(&lines, stream);
    long long deadline = now_ms() + 30000;
    while (!d.after && now_ms() < deadline) {
        struct pollfd p[2] = {{stream, POLLIN, 0}, {efd, POLLIN, 0}};
        if (poll(p, 2, 1000) <= 0)
            continue;
        if ((p[1].revents & POLLIN) && virDeliverEvents(conn) < 0)
            d.deliver_failures++;
        if (!(p[0].revents & POLLIN))
            continue;
        while (lines_fill(&lines, 0) > 0)
            for (char *line; (line = lines_next(&lines));)
                drained_line(&d, line, &after_wanted, conn);
    }
    /* What a full pipe and a full queue hold, in order, from the first. */
    CHECK(d.bulk > BACKLOG_LIMIT);
    CHECK_INT(d.out_of_order, 0);
    CHECK_INT(d.first_bulk, first);
    CHECK_INT(d.other, 0);
    CHECK_INT(d.deliver_failures, 0);
    /* Then one events-lost for all the rest... */
    CHECK_INT(d.lost, 1);
    CHECK_INT(d.lost_count, BACKLOG_EMITS - d.bulk);
    CHECK_INT(d.lost_first, d.last_bulk + 1);
    CHECK_INT(d.lost_last, last);
    /* ...then the event emitted afterwards. */
    CHECK_INT(d.after, 1);
    CHECK(after_wanted > 0);
    CHECK_INT(d.after_seq, after_wanted);

    /* Everything is read: the loop sleeps. */
    int wakeups = 0;
    long long idle_end = now_ms() + 500;
    for (long long left; (left = idle_end - now_ms()) > 0;) {
        struct pollfd p[2] = {{stream, POLLIN, 0}, {efd, POLLIN, 0}};
        if (poll(p, 2, (int)left) > 0) {
            wakeups++;
            if (p[1].revents & POLLIN)
                virDeliverEvents(conn);
            if (p[0].revents & POLLIN && lines_fill(&lines, 0) <= 0)
                break;
        }
    }
    lines_free(&lines);
    CHECK_INT(wakeups, 0);
    printf("%s: %ld lines, then events-lost count=%lld, then the later event; %d idle wake-ups\n", what, d.bulk,
           d.lost_count, wakeups);
    close(stream);
    CHECK_INT(virConnectSetEventQueueLimit(conn, 65536), 0);
    case_end(what);
}

#endif
