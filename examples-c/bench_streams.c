/* Benchmark: event stream throughput. One thread emits the core issue's event
 * with virConnectEmitEvent; another reads the stream and splits it into lines.
 * Beside it, in the same run, the baseline: the same lines written with one
 * write(2) each to a plain pipe, read and split the same way.
 * Usage: bench_streams [events]   (default 1,000,000) */
#include <pthread.h>
#include <string.h>
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
    printf("%-18s %10.0f events/s %8.1f MB/s", name, events / seconds, events * line_bytes / seconds / 1e6);
    if (baseline > 0)
        printf("  %5.1f%% of the plain pipe", 100 * baseline / seconds);
    printf("\n");
}

static double plain_pipe(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        bench_die("pipe");
    char *line = malloc(line_bytes + 1);
    snprintf(line, line_bytes + 1, "%s\n", BENCH_EVENT);
    pthread_t t;
    double start = bench_now();
    pthread_create(&t, NULL, reader, &fds[0]);
    for (long i = 0; i < events; i++)
        if (write(fds[1], line, line_bytes) != (ssize_t)line_bytes)
            bench_die("write");
    close(fds[1]);
    void *lines;
    pthread_join(t, &lines);
    double seconds = bench_now() - start;
    if ((long)lines != events)
        bench_die("plain pipe lost lines");
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
    double pipe_seconds = plain_pipe();
    double stream_seconds = stream();
    report("plain pipe:", pipe_seconds, 0);
    report("event stream:", stream_seconds, pipe_seconds);
    return 0;
}
