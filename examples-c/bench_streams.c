/* Benchmark: event stream throughput. One thread emits the core issue's event
 * with virConnectEmitEvent; another reads the stream and splits it into lines.
 * Beside it, in the same run, the baseline: the same lines written with one
 * write(2) each to a plain pipe, read and split the same way.
 *
 * Two more rows show the ceiling for any stream that writes each event when it
 * is emitted (docs/api.md section 4) and never raises SIGPIPE: the same lines, one
 * system call each and no library work, sent with MSG_NOSIGNAL on a socket
 * pair (what virevent does), and written to a pipe with SIGPIPE blocked around
 * each write(2).
 * Usage: bench_streams [events]   (default 1,000,000) */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_common.h"

static long events;
static size_t line_bytes;

/* Reads `fd` to its end, counting lines; returns how many. */
static long count_lines(int fd)
{
    static char buf[1 << 16];
    long lines = 0;
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0)
        for (char *p = buf, *end = buf + got; (p = memchr(p, '\n', end - p)); p++)
            lines++;
    return lines;
}

static void *reader(void *fd)
{
    return (void *)count_lines(*(int *)fd);
}

static void report(const char *name, double seconds, double baseline)
{
    printf("%-22s %10.0f events/s %8.1f MB/s", name, events / seconds, events * line_bytes / seconds / 1e6);
    if (baseline > 0)
        printf("  %5.1f%% of the plain pipe", 100 * baseline / seconds);
    printf("\n");
}

/* How a baseline writes one line to `fd`. */
enum writer { PLAIN_WRITE, SEND_NOSIGNAL, WRITE_SIGPIPE_BLOCKED };

static void write_line(enum writer how, int fd, const char *line)
{
    ssize_t done;
    if (how == SEND_NOSIGNAL) {
        done = send(fd, line, line_bytes, MSG_NOSIGNAL);
    } else if (how == WRITE_SIGPIPE_BLOCKED) {
        sigset_t pipe_only, old;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
        done = write(fd, line, line_bytes);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    } else {
        done = write(fd, line, line_bytes);
    }
    if (done != (ssize_t)line_bytes)
        bench_die("write");
}

/* The lines written by `how`, one system call each, to a pipe (a socket pair
 * for SEND_NOSIGNAL) that a second thread reads. */
static double baseline(enum writer how)
{
    int fds[2];
    if ((how == SEND_NOSIGNAL ? socketpair(AF_UNIX, SOCK_STREAM, 0, fds) : pipe(fds)) != 0)
        bench_die("pipe");
    char *line = malloc(line_bytes + 1);
    snprintf(line, line_bytes + 1, "%s\n", BENCH_EVENT);
    pthread_t t;
    double start = bench_now();
    pthread_create(&t, NULL, reader, &fds[0]);
    for (long i = 0; i < events; i++)
        write_line(how, fds[1], line);
    close(fds[1]);
    void *lines;
    pthread_join(t, &lines);
    double seconds = bench_now() - start;
    if ((long)lines != events)
        bench_die("a baseline lost lines");
    close(fds[0]);
    free(line);
    return seconds;
}

static double stream(void)
{
    virConnectPtr conn = virConnectOpen(NULL);
    int fd = virConnectOpenEventStream(conn, NULL, 0);
    if (fd < 0)
        bench_die("virConnectOpenEventStream");
    pthread_t t;
    double start = bench_now();
    pthread_create(&t, NULL, reader, &fd);
    for (long i = 0; i < events; i++)
        if (virConnectEmitEvent(conn, BENCH_EVENT) < 0)
            bench_die("emit");
    virConnectClose(conn); /* writes nothing more: the reader sees end of file */
    void *lines;
    pthread_join(t, &lines);
    double seconds = bench_now() - start;
    close(fd);
    if ((long)lines != events) {
        fprintf(stderr, "bench: the stream carried %ld of %ld events (the reader fell a queue behind)\n",
                (long)lines, events);
        exit(1);
    }
    return seconds;
}

int main(int argc, char **argv)
{
    events = argc > 1 ? atol(argv[1]) : 1000000;
    /* Delivered lines carry seq="N" too: count the bytes of a typical one. */
    line_bytes = strlen(BENCH_EVENT) + strlen(" seq=\"1000000\"") + 1;
    double pipe_seconds = baseline(PLAIN_WRITE);
    double send_seconds = baseline(SEND_NOSIGNAL);
    double blocked_seconds = baseline(WRITE_SIGPIPE_BLOCKED);
    double stream_seconds = stream();
    report("plain pipe:", pipe_seconds, 0);
    report("send, MSG_NOSIGNAL:", send_seconds, pipe_seconds);
    report("pipe, SIGPIPE blocked:", blocked_seconds, pipe_seconds);
    report("event stream:", stream_seconds, pipe_seconds);
    return 0;
}
