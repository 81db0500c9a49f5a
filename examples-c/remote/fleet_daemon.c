/* A fleet of fake libvirt daemons in one process, for bench_fleet.sh: one Unix
 * socket, any number of client connections (epoll), each answered as a
 * libvirtd with the test driver would answer virevent's open sequence and
 * libvirt's client's (docs/protocol.md section 4). Calls it does not know get
 * an empty (void) success reply; keepalive PINGs get a PONG.
 *
 * SIGUSR1 starts a load phase: for SECONDS, domain lifecycle events
 * (procedure 318) go round-robin to every connection that registered for
 * them (316 with eventID 0), RATE events/s per connection, spread evenly in
 * time. Each event's domain name is "L" and the CLOCK_MONOTONIC nanoseconds
 * when it was sent, so the receiver (same host, same clock) can measure the
 * latency from here to its handler. At the end of a phase it prints, per
 * client process (SO_PEERCRED), "sent PID COUNT", then "done". SIGUSR2 sends
 * a burst instead: BURST events (default 1,000, about 82 KiB) back to back to
 * every registered connection, then the same lines. SIGTERM ends it.
 * With FLEET_TRACE=1 it prints the procedures each client process's first
 * connection calls ("call PID PROC"), to see what a client sends.
 *   fleet_daemon SOCKET RATE SECONDS [BURST] */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM_REMOTE 0x20008086u
#define PROGRAM_KEEPALIVE 0x6b656570u
#define CALL 0
#define REPLY 1
#define MESSAGE 2

/* One client connection: what came in and is not yet a whole packet, what
 * waits to go out, and its lifecycle registration. */
struct conn {
    int fd;
    pid_t pid;
    int traced;       /* the first connection of its process, with FLEET_TRACE */
    int lifecycle_cb; /* callbackID of its 316 eventID 0 registration, or -1 */
    int closing;      /* CONNECT_CLOSE answered: close once the output is out */
    int writing;      /* watched for EPOLLOUT: output waits */
    unsigned char *in, *out;
    size_t in_len, in_cap, out_len, out_cap;
};

static int ep;
static int trace;
static int next_callback; /* callbackIDs, counted up across connections */

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void watch(struct conn *c, int op)
{
    c->writing = c->out_len > 0;
    struct epoll_event e = {.events = EPOLLIN | (c->writing ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, op, c->fd, &e) < 0)
        die("epoll_ctl");
}

static void drop(struct conn *c)
{
    close(c->fd); /* also leaves the epoll set */
    c->fd = -1;   /* the struct stays: the load's list may still point to it */
    free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    c->in_len = c->out_len = 0;
}

/* Sends what waits in c->out as far as the socket takes it. */
static void flush(struct conn *c)
{
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            drop(c);
            return;
        }
        memmove(c->out, c->out + n, c->out_len - n);
        c->out_len -= n;
    }
    if (!c->out_len && c->closing) {
        drop(c);
        return;
    }
    if (c->writing != (c->out_len > 0))
        watch(c, EPOLL_CTL_MOD);
}

/* Queues a packet (header words and body) on c, then sends what it can. */
static void packet(struct conn *c, uint32_t program, uint32_t proc, uint32_t type, uint32_t serial,
                   const unsigned char *body, size_t len)
{
    if (c->fd < 0)
        return;
    size_t total = 28 + len;
    if (c->out_len + total > c->out_cap) {
        c->out_cap = (c->out_len + total) * 2;
        if (!(c->out = realloc(c->out, c->out_cap)))
            die("realloc");
    }
    unsigned char *p = c->out + c->out_len;
    uint32_t words[7] = {total, program, 1, proc, type, serial, 0};
    for (int i = 0; i < 7; i++)
        put32(p + 4 * i, words[i]);
    memcpy(p + 28, body, len);
    c->out_len += total;
    flush(c);
}

/* The domain the fake daemon has: the test driver's "test", running, id 1. */
static const unsigned char UUID[16] = {0x66, 0x95, 0xeb, 0x01, 0xf6, 0xa4, 0x83, 0x04,
                                       0x79, 0xaa, 0x97, 0xf2, 0x50, 0x2e, 0x19, 0x3f};

/* Answers one call: procedure `proc` with `body`. */
static void answer(struct conn *c, uint32_t proc, uint32_t serial, const unsigned char *body, size_t len)
{
    unsigned char r[64];
    size_t n = 0;
    if (c->traced)
        printf("call %d %u\n", (int)c->pid, proc);
    switch (proc) {
    case 66: /* AUTH_LIST: [NONE] */
        put32(r, 1);
        put32(r + 4, 0);
        n = 8;
        break;
    case 60: /* CONNECT_SUPPORTS_FEATURE: every feature */
        put32(r, 1);
        n = 4;
        break;
    case 316: /* domain event registrations: a callbackID */
        if (len >= 4 && get32(body) == 0)
            c->lifecycle_cb = next_callback;
        /* fall through */
    case 313: /* network, storage pool, node device, secret */
    case 368:
    case 374:
    case 380:
        put32(r, next_callback++);
        n = 4;
        break;
    case 273: /* CONNECT_LIST_ALL_DOMAINS: "test", ret 1 */
        put32(r, 1);
        put32(r + 4, 4);
        memcpy(r + 8, "test", 4);
        memcpy(r + 12, UUID, 16);
        put32(r + 28, 1);
        put32(r + 32, 1);
        n = 36;
        break;
    case 281: /* CONNECT_LIST_ALL_STORAGE_POOLS, CONNECT_LIST_ALL_NETWORKS (a */
    case 283: /* client watching every kind, as virevent-relay): none, ret 0 */
        put32(r, 0);
        put32(r + 4, 0);
        n = 8;
        break;
    case 212: /* DOMAIN_GET_STATE: running, reason 1 */
        put32(r, 1);
        put32(r + 4, 1);
        n = 8;
        break;
    case 2: /* CONNECT_CLOSE: then the daemon closes the socket */
        c->closing = 1;
        break;
    default: /* CONNECT_OPEN, deregistrations, the close callback, ...: void */
        break;
    }
    packet(c, PROGRAM_REMOTE, proc, REPLY, serial, r, n);
}

/* Reads what the client sent and answers every whole call in it. */
static void readable(struct conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 65536) {
            c->in_cap = c->in_len + 65536;
            if (!(c->in = realloc(c->in, c->in_cap)))
                die("realloc");
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            drop(c);
            return;
        }
        c->in_len += n;
    }
    size_t at = 0;
    while (c->fd >= 0 && c->in_len - at >= 28) {
        unsigned char *p = c->in + at;
        uint32_t len = get32(p);
        if (len < 28 || len > (1u << 24)) {
            drop(c);
            return;
        }
        if (c->in_len - at < len)
            break;
        uint32_t program = get32(p + 4), proc = get32(p + 12), type = get32(p + 16), serial = get32(p + 20);
        if (program == PROGRAM_REMOTE && type == CALL)
            answer(c, proc, serial, p + 28, len - 28);
        else if (program == PROGRAM_KEEPALIVE && proc == 1) /* PING: PONG */
            packet(c, PROGRAM_KEEPALIVE, 2, MESSAGE, 0, NULL, 0);
        at += len;
    }
    if (c->fd >= 0) {
        memmove(c->in, c->in + at, c->in_len - at);
        c->in_len -= at;
    }
}

/* One lifecycle event to c: suspended/paused or resumed/unpaused by turns,
 * for a domain named after this moment. */
static void event(struct conn *c, int n)
{
    unsigned char b[56];
    char name[21];
    snprintf(name, sizeof name, "L%019lld", now_ns());
    put32(b, c->lifecycle_cb);
    put32(b + 4, 20);
    memcpy(b + 8, name, 20);
    memcpy(b + 28, UUID, 16);
    put32(b + 44, 1);
    put32(b + 48, n % 2 ? 4 : 3);
    put32(b + 52, 0);
    packet(c, PROGRAM_REMOTE, 318, MESSAGE, 1, b, sizeof b);
}

/* Per client process: events sent in this phase. */
static struct count {
    pid_t pid;
    long sent;
} counts[64];
static int ncounts;

static void count(pid_t pid)
{
    int i = 0;
    while (i < ncounts && counts[i].pid != pid)
        i++;
    if (i == ncounts) {
        if (ncounts == 64)
            return;
        counts[ncounts++] = (struct count){pid, 0};
    }
    counts[i].sent++;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: fleet_daemon SOCKET RATE SECONDS [BURST]\n");
        return 2;
    }
    double rate = atof(argv[2]), seconds = atof(argv[3]);
    long burst = argc == 5 ? atol(argv[4]) : 1000;
    trace = getenv("FLEET_TRACE") != NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);

    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", argv[1]);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0)
        die("listen");
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGUSR2);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || sfd < 0)
        die("epoll");
    /* data.ptr NULL is the listener, &sfd the signals. */
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
    e.data.ptr = &sfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &e);

    /* Every connection ever accepted (never freed: the run is short). */
    struct conn **all = NULL;
    size_t nall = 0, capall = 0;
    pid_t traced[64];
    int ntraced = 0;
    /* The load phase: targets, start time, events sent so far, total. */
    struct conn **load = NULL;
    size_t nload = 0;
    long long start = 0, step = 0;
    long sent = 0, total = 0;
    printf("listening\n");
    for (;;) {
        struct epoll_event got[256];
        struct timespec wait = {0, 0}, *timeout = NULL;
        if (nload) {
            long long left = start + sent * step - now_ns();
            if (left > 0)
                wait = (struct timespec){left / 1000000000LL, left % 1000000000LL};
            timeout = &wait;
        }
        int n = epoll_pwait2(ep, got, 256, timeout, NULL);
        if (n < 0 && errno != EINTR)
            die("epoll_pwait2");
        for (int i = 0; i < n; i++) {
            void *who = got[i].data.ptr;
            if (who == NULL) { /* new clients */
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct conn *c = calloc(1, sizeof *c);
                    struct ucred cred;
                    socklen_t cl = sizeof cred;
                    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl);
                    *c = (struct conn){.fd = fd, .pid = cred.pid, .lifecycle_cb = -1};
                    if (trace) {
                        int k = 0;
                        while (k < ntraced && traced[k] != c->pid)
                            k++;
                        if (k == ntraced && ntraced < 64) {
                            traced[ntraced++] = c->pid;
                            c->traced = 1;
                        }
                    }
                    if (nall == capall) {
                        capall = capall ? 2 * capall : 1024;
                        if (!(all = realloc(all, capall * sizeof *all)))
                            die("realloc");
                    }
                    all[nall++] = c;
                    watch(c, EPOLL_CTL_ADD);
                }
            } else if (who == &sfd) {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof si) != sizeof si)
                    continue;
                if (si.ssi_signo != SIGUSR1 && si.ssi_signo != SIGUSR2)
                    return 0;
                if (nload)
                    continue; /* a phase already runs */
                if (si.ssi_signo == SIGUSR2) { /* the burst, at once */
                    ncounts = 0;
                    for (size_t k = 0; k < nall; k++)
                        for (long j = 0; j < burst && all[k]->fd >= 0 && all[k]->lifecycle_cb >= 0; j++) {
                            event(all[k], (int)j);
                            if (all[k]->fd >= 0)
                                count(all[k]->pid);
                        }
                    for (int k = 0; k < ncounts; k++)
                        printf("sent %d %ld\n", (int)counts[k].pid, counts[k].sent);
                    printf("done\n");
                    continue;
                }
                /* A new phase: every live connection with a lifecycle registration. */
                free(load);
                load = calloc(nall + 1, sizeof *load);
                for (size_t k = 0; k < nall; k++)
                    if (all[k]->fd >= 0 && all[k]->lifecycle_cb >= 0)
                        load[nload++] = all[k];
                if (!nload) {
                    printf("done (no registered connection)\n");
                    continue;
                }
                step = (long long)(1e9 / (rate * nload));
                total = (long)(rate * nload * seconds);
                start = now_ns();
                sent = 0;
                ncounts = 0;
            } else {
                struct conn *c = who;
                if (c->fd >= 0 && (got[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                    flush(c);
                if (c->fd >= 0 && (got[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                    readable(c);
            }
        }
        /* The events due by now, each to the next connection in turn. */
        long long t = now_ns();
        while (nload && sent < total && start + sent * step <= t) {
            struct conn *c = load[sent % nload];
            if (c->fd >= 0) {
                event(c, (int)(sent / nload));
                if (c->fd >= 0)
                    count(c->pid);
            }
            sent++;
        }
        if (nload && sent == total) {
            for (int k = 0; k < ncounts; k++)
                printf("sent %d %ld\n", (int)counts[k].pid, counts[k].sent);
            printf("done\n");
            nload = 0;
        }
    }
}
