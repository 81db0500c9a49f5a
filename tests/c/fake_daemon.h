/* A scripted FAKE libvirt daemon for the remote-protocol tests: a forked
 * child listening on a Unix socket in a temporary folder, which answers the
 * client's calls as a daemon would, then follows a script (send bytes, wait
 * for the parent's go, hang up, flood PINGs without reading) and records every
 * packet the client sent, for the parent to check the exact call sequence.
 *
 * The child talks to the parent through two descriptors: a report pipe (one
 * fixed-size record per packet received, then one record saying how it ended)
 * and a control socket pair (one byte from the parent = "go on with the
 * script"). It never calls the library, has alarm() as a safety net, and ends
 * by SIGKILL once its last record is written (as check.h's child_exit, so that
 * a memory checker does not blame it for its parent's memory). Only the parent
 * uses CHECK. */
#ifndef VIREVENT_FAKE_DAEMON_H
#define VIREVENT_FAKE_DAEMON_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Data a program including this header may not use. */
#define FAKE_UNUSED __attribute__((unused))

/* ---- wire constants --------------------------------------------------------- */

#define PROG_REMOTE 0x20008086u
#define PROG_QEMU 0x20008087u
#define PROG_KEEPALIVE 0x6b656570u
#define T_CALL 0
#define T_REPLY 1
#define T_MESSAGE 2
#define T_STREAM 3

#define P_OPEN 1
#define P_SUPPORTS_FEATURE 60
#define P_CLOSE 2
#define P_AUTH_LIST 66
#define P_AUTH_SASL_INIT 67
#define P_AUTH_POLKIT 70
#define P_GET_STATE 212
#define P_LIST_ALL 273
#define P_REGISTER 316
#define P_DEREGISTER 317
/* The other objects' registrations (each deregisters with the next number),
 * and the connection-close callback's. */
#define P_NETWORK_REGISTER 313
#define P_POOL_REGISTER 368
#define P_NODEDEV_REGISTER 374
#define P_SECRET_REGISTER 380
#define P_CLOSE_REGISTER 360
#define P_CLOSE_UNREGISTER 361
#define P_CONNECTION_CLOSED 362

/* The callback id the fake daemon gives each event id: not 0, 1, 2... so that
 * the order of the deregistrations shows. Networks, pools, node devices and
 * secrets get the same ids as domains, as a real daemon's other drivers may:
 * only the procedure tells their events apart. */
static inline int callback_of(int event_id)
{
    return 100 + 7 * event_id;
}

/* ---- XDR buffers -------------------------------------------------------------- */

typedef struct {
    unsigned char data[4096];
    size_t len;
    size_t mark; /* where the packet being built starts */
} Buf;

static inline void put_bytes(Buf *b, const void *p, size_t n)
{
    if (b->len + n > sizeof b->data) {
        fprintf(stderr, "Buf overflow\n");
        abort();
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void put_u32(Buf *b, uint32_t v)
{
    unsigned char w[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    put_bytes(b, w, 4);
}

static inline void put_i32(Buf *b, int32_t v)
{
    put_u32(b, (uint32_t)v);
}

static inline void put_hyper(Buf *b, int64_t v)
{
    put_u32(b, (uint32_t)((uint64_t)v >> 32));
    put_u32(b, (uint32_t)(uint64_t)v);
}

static inline void put_str(Buf *b, const char *s)
{
    static const unsigned char zeros[4] = {0};
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    put_bytes(b, s, n);
    put_bytes(b, zeros, (4 - n % 4) % 4);
}

static inline uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Starts a packet (its length word is filled in by pkt_end). */
static inline void pkt_begin(Buf *b, uint32_t prog, int proc, int type, uint32_t serial, int status)
{
    b->mark = b->len;
    put_u32(b, 0);
    put_u32(b, prog);
    put_u32(b, 1);
    put_i32(b, proc);
    put_i32(b, type);
    put_u32(b, serial);
    put_i32(b, status);
}

static inline void pkt_end(Buf *b)
{
    uint32_t n = (uint32_t)(b->len - b->mark);
    unsigned char *p = b->data + b->mark;
    p[0] = (unsigned char)(n >> 24);
    p[1] = (unsigned char)(n >> 16);
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
}

/* A remote_error body (docs/protocol.md section 3), its message as printf makes
 * it; returns 1, the status of a reply that carries it. */
__attribute__((format(printf, 3, 4))) static inline int put_error(Buf *b, int code, const char *fmt, ...)
{
    char message[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    put_i32(b, code);
    put_i32(b, 7); /* VIR_FROM_RPC */
    put_u32(b, 1);
    put_str(b, message);
    put_i32(b, 2); /* level: error */
    put_u32(b, 0); /* dom */
    put_u32(b, 0); /* str1 */
    put_u32(b, 0); /* str2 */
    put_u32(b, 0); /* str3 */
    put_i32(b, -1);
    put_i32(b, -1);
    put_u32(b, 0); /* net */
    return 1;
}

/* ---- domains and event packets ---------------------------------------------- */

typedef struct {
    const char *name;
    unsigned char uuid[16];
    int id;
    int state; /* what DOMAIN_GET_STATE says; -1: error 42, no such domain */
} Dom;

#define TEST_UUID_BYTES {0x66, 0x95, 0xeb, 0x01, 0xf6, 0xa4, 0x83, 0x04, 0x79, 0xaa, 0x97, 0xf2, 0x50, 0x2e, 0x19, 0x3f}
FAKE_UNUSED static const Dom DOM_TEST = {"test", TEST_UUID_BYTES, 1, 1};
/* Not listed by the daemon: an odd name length (padding), inactive. */
FAKE_UNUSED static const Dom DOM_TEST2 = {"test2", {0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55}, -1, 5};
FAKE_UNUSED static const Dom DOM_OTHER = {"other", {0xaa, 0xaa, 0xaa, 0xaa, 0xbb, 0xbb, 0xcc, 0xcc, 0xdd, 0xdd, 0xee, 0xee, 0xee, 0xee, 0xee, 0x01}, 7, 1};
FAKE_UNUSED static const Dom DOM_GONE = {"gone", {0xaa, 0xaa, 0xaa, 0xaa, 0xbb, 0xbb, 0xcc, 0xcc, 0xdd, 0xdd, 0xee, 0xee, 0xee, 0xee, 0xee, 0x02}, 3, -1};
FAKE_UNUSED static const Dom DOM_SLEEPY = {"sleepy", {0xaa, 0xaa, 0xaa, 0xaa, 0xbb, 0xbb, 0xcc, 0xcc, 0xdd, 0xdd, 0xee, 0xee, 0xee, 0xee, 0xee, 0x03}, 4, 7};

#define TEST_IDENT "<domain-id>1</domain-id><domain-name>test</domain-name>" \
                   "<domain-uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</domain-uuid>"

static inline void put_dom(Buf *b, const Dom *d)
{
    put_str(b, d->name);
    put_bytes(b, d->uuid, 16);
    put_i32(b, d->id);
}

/* An event MESSAGE of `proc` up to its domain: type 2, serial 1, status 0. */
static inline void ev_begin(Buf *b, int proc, int event_id, const Dom *d)
{
    pkt_begin(b, PROG_REMOTE, proc, T_MESSAGE, 1, 0);
    put_i32(b, callback_of(event_id));
    put_dom(b, d);
}

/* A lifecycle event with a lifecycle body, as procedure `proc`. */
static inline void ev_lifecycle_as(Buf *b, int proc, const Dom *d, int event, int detail)
{
    ev_begin(b, proc, 0, d);
    put_i32(b, event);
    put_i32(b, detail);
    pkt_end(b);
}

static inline void ev_lifecycle(Buf *b, const Dom *d, int event, int detail)
{
    ev_lifecycle_as(b, 318, d, event, detail);
}

/* A lifecycle event of test whose body is cut before its detail. */
static inline void ev_lifecycle_cut(Buf *b)
{
    ev_begin(b, 318, 0, &DOM_TEST);
    put_i32(b, 3);
    pkt_end(b);
}

static inline void ev_reboot(Buf *b, const Dom *d)
{
    ev_begin(b, 319, 1, d);
    pkt_end(b);
}

static inline void ev_rtc(Buf *b, const Dom *d, int64_t offset)
{
    ev_begin(b, 320, 2, d);
    put_hyper(b, offset);
    pkt_end(b);
}

static inline void ev_watchdog(Buf *b, const Dom *d, int action)
{
    ev_begin(b, 321, 3, d);
    put_i32(b, action);
    pkt_end(b);
}

static inline void ev_io_error(Buf *b, const Dom *d, const char *path, const char *alias, int action)
{
    ev_begin(b, 322, 4, d);
    put_str(b, path);
    put_str(b, alias);
    put_i32(b, action);
    pkt_end(b);
}

static inline void ev_metadata(Buf *b, const Dom *d, int type, const char *nsuri)
{
    ev_begin(b, 379, 23, d);
    put_i32(b, type);
    if (nsuri) {
        put_u32(b, 1);
        put_str(b, nsuri);
    } else {
        put_u32(b, 0);
    }
    pkt_end(b);
}

static inline void keepalive(Buf *b, int proc)
{
    pkt_begin(b, PROG_KEEPALIVE, proc, T_MESSAGE, 0, 0);
    pkt_end(b);
}

/* A reply of `prog` to LIST_ALL_DOMAINS with serial `serial`: no domain. */
static inline void empty_list_reply(Buf *b, uint32_t prog, uint32_t serial)
{
    pkt_begin(b, prog, P_LIST_ALL, T_REPLY, serial, 0);
    put_u32(b, 0);
    put_u32(b, 0);
    pkt_end(b);
}

/* What the parent expects: the children of an event of domain test, and a
 * transition's states. */
#define TEST_TRANSITION(old, new, reason)                                     \
    TEST_IDENT "<old-state>" old "</old-state><new-state>" new "</new-state>" \
               "<reason>" reason "</reason></event>"
#define STATES(old, new) "<old-state>" old "</old-state><new-state>" new "</new-state>"

/* ---- the script --------------------------------------------------------------- */

enum { S_SEND, S_WAIT, S_HANGUP, S_FLOOD, S_PAUSE };

typedef struct {
    int kind;
    const Buf *buf; /* S_SEND: bytes off..off+len of buf, `repeat` times */
    size_t off, len;
    int repeat;     /* S_FLOOD, S_PAUSE: for how many seconds */
} Step;

/* What the daemon does around its reply to the first call of `proc`. */
enum {
    H_BEFORE,  /* sends buf (whole packets) first, in a write of its own, and pauses */
    H_AFTER,   /* appends buf to the reply, in the same write */
    H_INSTEAD, /* replies with buf as the body and `status` */
    H_HANGUP,  /* closes the socket instead of replying */
};

typedef struct {
    int proc;
    int when;
    const Buf *buf;
    int status;
} Hook;

typedef struct {
    int hangup_on_accept;
    int nauth;
    int auth[4];              /* AUTH_LIST's answer */
    const char *polkit_error; /* AUTH_POLKIT fails with it (else replies 1) */
    int open_error;           /* CONNECT_OPEN fails with this code and message */
    const char *open_message;
    int register_error[28];   /* by event id: REGISTER fails with this code */
    int keepalive;            /* SUPPORTS_FEATURE(10) answers 1 (else 0: the fake
                               * answers no PING, so keepalive stays off) */
    int objects_error;        /* the other objects' registrations fail with it */
    int close_callback_error; /* the connection-close callback's fails with it */
    int deregister_error_first; /* the first DEREGISTER fails */
    int ndomains;
    Dom domains[4];
    int nhooks;
    Hook hooks[6];
    /* Run once the open sequence has been answered and the parent said go. */
    int nsteps;
    Step steps[16];
    int alarm_s; /* the child's safety net, in seconds (0: 8) */
    int idle_s;  /* how long it waits for the client, at most (0: 5) */
} Script;

static inline void script_init(Script *s)
{
    memset(s, 0, sizeof *s);
    s->nauth = 1;
    s->auth[0] = 0;
    s->ndomains = 1;
    s->domains[0] = DOM_TEST;
}

static inline void step_send_part(Script *s, const Buf *b, size_t off, size_t len)
{
    s->steps[s->nsteps++] = (Step){S_SEND, b, off, len, 1};
}

static inline void step_send(Script *s, const Buf *b)
{
    step_send_part(s, b, 0, b->len);
}

static inline void step_wait(Script *s)
{
    s->steps[s->nsteps++] = (Step){S_WAIT, NULL, 0, 0, 0};
}

static inline void step_hangup(Script *s)
{
    s->steps[s->nsteps++] = (Step){S_HANGUP, NULL, 0, 0, 0};
}

/* Sends PINGs as fast as the client takes them, never reading, for `seconds`
 * or until the client hangs up; then the child ends (FLOODED). */
static inline void step_flood(Script *s, int seconds)
{
    s->steps[s->nsteps++] = (Step){S_FLOOD, NULL, 0, 0, seconds};
}

/* Sends `b` `times` times, waiting while the client does not read. */
static inline void step_send_times(Script *s, const Buf *b, int times)
{
    s->steps[s->nsteps++] = (Step){S_SEND, b, 0, b->len, times};
}

/* Neither reads nor sends for `seconds`, or until the client hangs up
 * (FLOODED then, too); then the child ends. */
static inline void step_pause(Script *s, int seconds)
{
    s->steps[s->nsteps++] = (Step){S_PAUSE, NULL, 0, 0, seconds};
}

static inline void hook(Script *s, int proc, int when, const Buf *b, int status)
{
    s->hooks[s->nhooks++] = (Hook){proc, when, b, status};
}

/* ---- the child: the fake daemon ----------------------------------------------- */

/* One packet the client sent, or (proc REC_DONE) how the child ended. */
typedef struct {
    uint32_t len, prog, vers;
    int32_t proc, type;
    uint32_t serial;
    int32_t status;
    uint32_t bodylen;
    unsigned char body[64];
} WireRec;

#define REC_DONE (-1000)
enum { DONE_EOF = 1, DONE_CLOSE, DONE_HANGUP, DONE_TIMEOUT, DONE_ERROR, DONE_NOGO, DONE_FLOODED };
FAKE_UNUSED static const char *const DONE_NAMES[] = {"?", "EOF", "CLOSE", "HANGUP", "TIMEOUT", "ERROR", "NOGO", "FLOODED"};

typedef struct {
    int c, report, ctl;
    const Script *s;
    int fired[8];
    int states_answered;
    int open_done;
    int deregistered;
} Child;

FAKE_UNUSED static unsigned char child_packet[65536];

static inline void child_end(Child *ch, int how)
{
    WireRec r;
    memset(&r, 0, sizeof r);
    r.proc = REC_DONE;
    r.type = how;
    if (write(ch->report, &r, sizeof r) != (ssize_t)sizeof r) {
        /* nothing to do: the parent reports a missing end */
    }
    kill(getpid(), SIGKILL);
    _exit(3);
}

static inline void child_hangup(Child *ch, int how)
{
    shutdown(ch->c, SHUT_RDWR);
    close(ch->c);
    child_end(ch, how);
}

static inline void child_send(Child *ch, const void *p, size_t n)
{
    const unsigned char *bytes = p;
    while (n > 0) {
        ssize_t w = send(ch->c, bytes, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* the client is gone: its reads will tell */
        }
        bytes += w;
        n -= (size_t)w;
    }
}

/* The S_FLOOD step: PINGs, a hundred per write, never reading. */
static inline void child_flood(Child *ch, int seconds)
{
    Buf pings;
    memset(&pings, 0, sizeof pings);
    for (int i = 0; i < 100; i++)
        keepalive(&pings, 1);
    long long end = now_ms() + 1000LL * seconds;
    while (now_ms() < end) {
        size_t at = 0;
        while (at < pings.len) {
            ssize_t w = send(ch->c, pings.data + at, pings.len - at, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                child_hangup(ch, DONE_FLOODED); /* the client is gone */
            at += (size_t)w;
        }
    }
    child_hangup(ch, DONE_FLOODED);
}

/* The S_PAUSE step: waits, reading nothing, for the client's hang-up (which
 * a socket whose input is unread shows as POLLHUP) or `seconds`. */
static inline void child_pause(Child *ch, int seconds)
{
    long long end = now_ms() + 1000LL * seconds;
    for (long long left; (left = end - now_ms()) > 0;) {
        struct pollfd p = {ch->c, 0, 0};
        if (poll(&p, 1, (int)left) > 0 && (p.revents & (POLLHUP | POLLERR)))
            break;
    }
    child_hangup(ch, DONE_FLOODED);
}

/* Polls `p` for at most 5 s, ending the child if nothing comes or poll fails;
 * returns 0 when interrupted by a signal, else the number of ready entries. */
static inline int child_poll(Child *ch, struct pollfd *p, nfds_t n)
{
    int r = poll(p, n, ch->s->idle_s ? ch->s->idle_s * 1000 : 5000);
    if (r == 0)
        child_end(ch, DONE_TIMEOUT);
    if (r < 0 && errno != EINTR)
        child_end(ch, DONE_ERROR);
    return r < 0 ? 0 : r;
}

/* Reads exactly n bytes (5 s each wait); returns how many came before EOF. */
static inline size_t child_read_full(Child *ch, unsigned char *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd pfd = {ch->c, POLLIN, 0};
        if (!child_poll(ch, &pfd, 1))
            continue;
        ssize_t k = read(ch->c, p + got, n - got);
        if (k == 0)
            return got;
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            if (errno == ECONNRESET)
                return got;
            child_end(ch, DONE_ERROR);
        }
        got += (size_t)k;
    }
    return got;
}

static inline void child_record(Child *ch, const unsigned char *p, size_t n)
{
    WireRec r;
    memset(&r, 0, sizeof r);
    r.len = be32(p);
    r.prog = be32(p + 4);
    r.vers = be32(p + 8);
    r.proc = (int32_t)be32(p + 12);
    r.type = (int32_t)be32(p + 16);
    r.serial = be32(p + 20);
    r.status = (int32_t)be32(p + 24);
    r.bodylen = (uint32_t)(n - 28);
    memcpy(r.body, p + 28, r.bodylen < sizeof r.body ? r.bodylen : sizeof r.body);
    if (write(ch->report, &r, sizeof r) != (ssize_t)sizeof r)
        child_end(ch, DONE_ERROR);
}

static inline const Hook *child_hook(Child *ch, int proc, int when)
{
    for (int i = 0; i < ch->s->nhooks; i++) {
        const Hook *h = &ch->s->hooks[i];
        if (h->proc == proc && h->when == when && !(ch->fired[i] & (1 << when))) {
            ch->fired[i] |= 1 << when;
            return h;
        }
    }
    return NULL;
}

/* The domain a GET_STATE body names (by name). */
static inline const Dom *child_domain(Child *ch, const unsigned char *body, size_t n)
{
    if (n < 4)
        return NULL;
    uint32_t len = be32(body);
    if (len > n - 4)
        return NULL;
    for (int i = 0; i < ch->s->ndomains; i++) {
        const Dom *d = &ch->s->domains[i];
        if (strlen(d->name) == len && memcmp(d->name, body + 4, len) == 0)
            return d;
    }
    return NULL;
}

/* Writes the body of the daemon's reply to a call of `proc` into `r`; returns
 * the reply's status. */
static inline int child_reply_body(Child *ch, int proc, const unsigned char *body, size_t n, Buf *r)
{
    const Script *s = ch->s;
    int arg = n >= 4 ? (int)be32(body) : -1; /* the call's first int */
    switch (proc) {
    case P_AUTH_LIST:
        put_u32(r, (uint32_t)s->nauth);
        for (int i = 0; i < s->nauth; i++)
            put_i32(r, s->auth[i]);
        return 0;
    case P_AUTH_POLKIT:
        if (s->polkit_error)
            return put_error(r, 1, "%s", s->polkit_error);
        put_i32(r, 1);
        return 0;
    case P_OPEN:
        return s->open_error ? put_error(r, s->open_error, "%s", s->open_message) : 0;
    case P_SUPPORTS_FEATURE:
        put_i32(r, arg == 10 && s->keepalive);
        return 0;
    case P_REGISTER:
        if (arg >= 0 && arg < 28 && s->register_error[arg])
            return put_error(r, s->register_error[arg], "internal error: unsupported event ID %d", arg);
        put_i32(r, callback_of(arg));
        return 0;
    case P_NETWORK_REGISTER:
    case P_POOL_REGISTER:
    case P_NODEDEV_REGISTER:
    case P_SECRET_REGISTER:
        if (s->objects_error)
            return put_error(r, s->objects_error, "unknown procedure: %d", proc);
        put_i32(r, callback_of(arg));
        return 0;
    case P_CLOSE_REGISTER:
        return s->close_callback_error ? put_error(r, s->close_callback_error, "unknown procedure: %d", proc) : 0;
    case P_NETWORK_REGISTER + 1:
    case P_POOL_REGISTER + 1:
    case P_NODEDEV_REGISTER + 1:
    case P_SECRET_REGISTER + 1:
    case P_CLOSE_UNREGISTER:
        return 0;
    case P_LIST_ALL:
        put_u32(r, (uint32_t)s->ndomains);
        for (int i = 0; i < s->ndomains; i++)
            put_dom(r, &s->domains[i]);
        put_u32(r, (uint32_t)s->ndomains);
        return 0;
    case P_GET_STATE: {
        const Dom *d = child_domain(ch, body, n);
        ch->states_answered++;
        if (!d || d->state < 0)
            return put_error(r, 42, "Domain not found: no domain with matching name");
        put_i32(r, d->state);
        put_i32(r, 1);
        return 0;
    }
    case P_DEREGISTER:
        if (s->deregister_error_first && ch->deregistered++ == 0)
            return put_error(r, 1, "internal error: domain event callback %d not registered", arg);
        return 0;
    case P_CLOSE:
        return 0;
    default:
        return put_error(r, 39, "unknown procedure: %d", proc);
    }
}

static inline void child_answer(Child *ch, int proc, uint32_t serial, const unsigned char *body, size_t n)
{
    const Script *s = ch->s;
    const Hook *h;
    while ((h = child_hook(ch, proc, H_BEFORE))) {
        child_send(ch, h->buf->data, h->buf->len);
        sleep_ms(20);
    }
    if (child_hook(ch, proc, H_HANGUP))
        child_hangup(ch, DONE_HANGUP);

    Buf reply;
    memset(&reply, 0, sizeof reply);
    Buf *r = &reply;
    /* The body is written after a 28-byte header placeholder. */
    r->len = 28;
    int status = child_reply_body(ch, proc, body, n, r);
    if ((h = child_hook(ch, proc, H_INSTEAD))) {
        r->len = 28;
        put_bytes(r, h->buf->data, h->buf->len);
        status = h->status;
    }
    /* The header, over the placeholder. */
    size_t body_end = r->len;
    r->len = 0;
    pkt_begin(r, PROG_REMOTE, proc, T_REPLY, serial, status);
    r->len = body_end;
    pkt_end(r);
    while ((h = child_hook(ch, proc, H_AFTER)))
        put_bytes(r, h->buf->data, h->buf->len);
    child_send(ch, r->data, r->len);

    if (proc == P_CLOSE)
        child_hangup(ch, DONE_CLOSE);
    if ((proc == P_LIST_ALL && s->ndomains == 0) || (proc == P_GET_STATE && ch->states_answered == s->ndomains))
        ch->open_done = 1;
}

/* Reads one packet from the client, records it, answers it if it is a call. */
static inline void child_serve_one(Child *ch)
{
    size_t got = child_read_full(ch, child_packet, 4);
    if (got == 0)
        child_end(ch, DONE_EOF);
    if (got < 4)
        child_end(ch, DONE_ERROR);
    uint32_t len = be32(child_packet);
    if (len < 28 || len > sizeof child_packet)
        child_end(ch, DONE_ERROR);
    if (child_read_full(ch, child_packet + 4, len - 4) != len - 4)
        child_end(ch, DONE_ERROR);
    child_record(ch, child_packet, len);
    if (be32(child_packet + 4) == PROG_REMOTE && be32(child_packet + 16) == T_CALL)
        child_answer(ch, (int)be32(child_packet + 12), be32(child_packet + 20), child_packet + 28, len - 28);
}

/* Waits for the parent's go, serving the client meanwhile. */
static inline void child_wait_go(Child *ch)
{
    for (;;) {
        struct pollfd p[2] = {{ch->ctl, POLLIN, 0}, {ch->c, POLLIN, 0}};
        if (!child_poll(ch, p, 2))
            continue;
        if (p[0].revents) {
            char byte;
            if (read(ch->ctl, &byte, 1) == 1)
                return;
            child_end(ch, DONE_NOGO); /* the parent finished without saying go */
        }
        if (p[1].revents)
            child_serve_one(ch);
    }
}

static inline void child_main(int listener, const Script *s, int report, int ctl)
{
    alarm(s->alarm_s ? (unsigned)s->alarm_s : 8);
    Child ch;
    memset(&ch, 0, sizeof ch);
    ch.report = report;
    ch.ctl = ctl;
    ch.s = s;
    ch.c = -1;
    struct pollfd pfd = {listener, POLLIN, 0};
    if (poll(&pfd, 1, 5000) != 1)
        child_end(&ch, DONE_TIMEOUT);
    ch.c = accept(listener, NULL, NULL);
    close(listener);
    if (ch.c < 0)
        child_end(&ch, DONE_ERROR);
    if (s->hangup_on_accept)
        child_hangup(&ch, DONE_HANGUP);
    while (!ch.open_done)
        child_serve_one(&ch);
    if (s->nsteps > 0)
        child_wait_go(&ch);
    for (int i = 0; i < s->nsteps; i++) {
        const Step *st = &s->steps[i];
        switch (st->kind) {
        case S_SEND:
            for (int k = 0; k < st->repeat; k++)
                child_send(&ch, st->buf->data + st->off, st->len);
            break;
        case S_WAIT:
            child_wait_go(&ch);
            break;
        case S_HANGUP:
            child_hangup(&ch, DONE_HANGUP);
            break;
        case S_FLOOD:
            child_flood(&ch, st->repeat);
            break;
        case S_PAUSE:
            child_pause(&ch, st->repeat);
        }
    }
    for (;;)
        child_serve_one(&ch);
}

/* ---- the parent's side -------------------------------------------------------- */

typedef struct {
    char dir[64];
    char sock[128];
    char uri[256];
    pid_t pid;
    int report; /* read end of the report pipe */
    int ctl;    /* the parent's end of the control pair */
    WireRec recs[512];
    int nrecs;
    int done;   /* DONE_* of the child's last record, 0 if none */
    int status; /* the child's wait status, -1 if it had to be killed */
} Fake;

/* Makes the folder and socket (listening before the fork: no race), and forks
 * the daemon. `sockname` NULL is "sock". */
static inline void fake_start(Fake *f, const Script *s, const char *sockname)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/virevent-fake-XXXXXX");
    if (!mkdtemp(f->dir)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(f->sock, sizeof f->sock, "%s/%s", f->dir, sockname ? sockname : "sock");
    snprintf(f->uri, sizeof f->uri, "test+unix:///default?socket=%s", f->sock);
    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(f->sock) >= sizeof addr.sun_path) {
        fprintf(stderr, "socket path too long: %s\n", f->sock);
        exit(2);
    }
    memcpy(addr.sun_path, f->sock, strlen(f->sock) + 1);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 4) != 0) {
        perror("fake daemon socket");
        exit(2);
    }
    int report[2], ctl[2];
    if (pipe2(report, O_CLOEXEC) != 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) != 0) {
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
    if (f->pid == 0) {
        close(report[0]);
        close(ctl[0]);
        child_main(listener, s, report[1], ctl[1]);
        _exit(4);
    }
    close(listener);
    close(report[1]);
    close(ctl[1]);
    f->report = report[0];
    f->ctl = ctl[0];
}

/* Tells the daemon to go on with its script. */
static inline void fake_go(Fake *f)
{
    char byte = 'g';
    if (send(f->ctl, &byte, 1, MSG_NOSIGNAL) != 1)
        fprintf(stderr, "fake_go: the fake daemon is gone\n");
}

/* Collects the daemon's records and its exit, and removes its folder. */
static inline void fake_finish(Fake *f)
{
    close(f->ctl);
    static unsigned char bytes[sizeof f->recs];
    size_t have = 0;
    long long deadline = now_ms() + 5000;
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd p = {f->report, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t k = read(f->report, bytes + have, sizeof bytes - have);
        if (k <= 0)
            break;
        have += (size_t)k;
        if (have == sizeof bytes)
            break;
    }
    close(f->report);
    f->nrecs = 0;
    for (size_t at = 0; at + sizeof(WireRec) <= have; at += sizeof(WireRec)) {
        WireRec r;
        memcpy(&r, bytes + at, sizeof r);
        if (r.proc == REC_DONE)
            f->done = r.type;
        else
            f->recs[f->nrecs++] = r;
    }
    int status = -1;
    while (now_ms() < deadline + 1000) {
        pid_t w = waitpid(f->pid, &status, WNOHANG);
        if (w == f->pid)
            break;
        status = -1;
        sleep_ms(5);
    }
    if (status == -1) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
    }
    f->status = status;
    unlink(f->sock);
    rmdir(f->dir);
    /* The daemon ended by itself, cleanly. */
    CHECK(f->status != -1);
    CHECK(f->done == DONE_EOF || f->done == DONE_CLOSE || f->done == DONE_HANGUP || f->done == DONE_FLOODED);
}

/* What the client sent, one word a packet: the procedure of a REMOTE call,
 * K<proc> for keepalive, ?<prog>/<type>/<proc> for anything else; then how the
 * daemon ended. */
static inline const char *trace(const Fake *f)
{
    static char text[4096];
    size_t n = 0;
    text[0] = '\0';
    for (int i = 0; i < f->nrecs && n + 64 < sizeof text; i++) {
        const WireRec *r = &f->recs[i];
        if (r->prog == PROG_REMOTE && r->type == T_CALL)
            n += (size_t)snprintf(text + n, sizeof text - n, "%d ", r->proc);
        else if (r->prog == PROG_KEEPALIVE)
            n += (size_t)snprintf(text + n, sizeof text - n, "K%d ", r->proc);
        else
            n += (size_t)snprintf(text + n, sizeof text - n, "?%x/%d/%d ", r->prog, r->type, r->proc);
    }
    snprintf(text + n, sizeof text - n, "%s", f->done > 0 && f->done <= DONE_NOGO ? DONE_NAMES[f->done] : "NOEND");
    return text;
}

/* The int bodies of every call of `proc`, as "a b c". */
static inline const char *int_args(const Fake *f, int proc)
{
    static char text[512];
    size_t n = 0;
    text[0] = '\0';
    for (int i = 0; i < f->nrecs && n + 16 < sizeof text; i++) {
        const WireRec *r = &f->recs[i];
        if (r->prog == PROG_REMOTE && r->type == T_CALL && r->proc == proc && r->bodylen >= 4)
            n += (size_t)snprintf(text + n, sizeof text - n, "%s%d", n ? " " : "", (int)be32(r->body));
    }
    return text;
}

static inline const WireRec *first_call(const Fake *f, int proc)
{
    for (int i = 0; i < f->nrecs; i++)
        if (f->recs[i].prog == PROG_REMOTE && f->recs[i].type == T_CALL && f->recs[i].proc == proc)
            return &f->recs[i];
    return NULL;
}

/* Every call is framed as libvirt frames it, and the serials are 0, 1, 2...
 * Returns the number of calls. */
static inline int check_calls(const Fake *f)
{
    int calls = 0, bad_serial = 0, bad_header = 0;
    for (int i = 0; i < f->nrecs; i++) {
        const WireRec *r = &f->recs[i];
        if (r->vers != 1 || r->status != 0 || r->len != 28 + r->bodylen)
            bad_header++;
        if (r->prog == PROG_REMOTE) {
            if (r->type != T_CALL)
                bad_header++;
            if (r->serial != (uint32_t)calls)
                bad_serial++;
            calls++;
        } else if (r->prog == PROG_KEEPALIVE) {
            /* A PONG: proc 2, MESSAGE, serial 0, no body. */
            if (r->proc != 2 || r->type != T_MESSAGE || r->serial != 0 || r->bodylen != 0)
                bad_header++;
        } else {
            bad_header++;
        }
    }
    CHECK_INT(bad_serial, 0);
    CHECK_INT(bad_header, 0);
    return calls;
}

/* The bodies of the open sequence's calls, byte for byte. */
static inline void check_open_bodies(const Fake *f, const char *name)
{
    Buf want;
    memset(&want, 0, sizeof want);
    put_u32(&want, 1);
    put_str(&want, name);
    put_u32(&want, 1); /* VIR_CONNECT_RO */
    const WireRec *open = first_call(f, P_OPEN);
    CHECK(open != NULL);
    if (open) {
        CHECK_INT(open->bodylen, want.len);
        CHECK(open->bodylen == want.len && memcmp(open->body, want.data, want.len) == 0);
        CHECK_INT(open->serial, first_call(f, P_AUTH_LIST) ? 1 : 0);
    }
    /* SUPPORTS_FEATURE asks for feature 10, keepalive, alone. */
    const WireRec *feature = first_call(f, P_SUPPORTS_FEATURE);
    CHECK(feature && feature->bodylen == 4 && be32(feature->body) == 10);
    /* Each registration: the event id, then 0 = no domain filter. */
    int bad = 0;
    for (int i = 0; i < f->nrecs; i++) {
        const WireRec *r = &f->recs[i];
        int object = r->proc == P_REGISTER || r->proc == P_NETWORK_REGISTER || r->proc == P_POOL_REGISTER ||
                     r->proc == P_NODEDEV_REGISTER || r->proc == P_SECRET_REGISTER;
        if (r->type == T_CALL && object && (r->bodylen != 8 || be32(r->body + 4) != 0))
            bad++;
        if (r->type == T_CALL && r->proc == P_CLOSE_REGISTER && r->bodylen != 0)
            bad++;
    }
    CHECK_INT(bad, 0);
    CHECK_STR(int_args(f, P_REGISTER), "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27");
    CHECK_STR(int_args(f, P_NETWORK_REGISTER), "0 1");
    CHECK_STR(int_args(f, P_SECRET_REGISTER), "0 1");
    const WireRec *list = first_call(f, P_LIST_ALL);
    static const unsigned char list_body[8] = {0, 0, 0, 1, 0, 0, 0, 0};
    CHECK(list && list->bodylen == 8 && memcmp(list->body, list_body, 8) == 0);
    const WireRec *state = first_call(f, P_GET_STATE);
    if (state) {
        memset(&want, 0, sizeof want);
        put_dom(&want, &DOM_TEST);
        put_u32(&want, 0);
        CHECK_INT(state->bodylen, want.len);
        CHECK(state->bodylen == want.len && memcmp(state->body, want.data, want.len) == 0);
    }
}

/* Every registration: the 28 domain event ids, two for each other object,
 * the connection-close callback; deregistered in the same order. */
#define REGISTER_SEQ "316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 316 313 313 368 368 374 374 380 380 360"
#define DEREGISTER_SEQ "317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 314 314 369 369 375 375 381 381 361"
#define OPEN_SEQ "66 1 60 " REGISTER_SEQ " 273 212"
#define CLOSE_SEQ DEREGISTER_SEQ " 2 CLOSE"
#define ALL_CALLBACKS "100 107 114 121 128 135 142 149 156 163 170 177 184 191 198 205 212 219 226 233 240 247 254 261 268 275 282 289"

/* ---- the parent's helpers ----------------------------------------------------- */

static inline int readable(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, ms);
    return r == 1 && (p.revents & POLLIN) ? 1 : 0;
}

/* A poll loop: waits on the connection's descriptor and delivers, until `*count`
 * reaches `want` or `ms` pass. Returns the number of failed deliveries. */
static inline int deliver_until(virConnectPtr conn, const int *count, int want, int ms)
{
    int fd = virConnectGetEventFD(conn);
    long long deadline = now_ms() + ms;
    int failures = 0;
    while (*count < want) {
        long long left = deadline - now_ms();
        if (left <= 0)
            break;
        if (!readable(fd, (int)left))
            continue;
        if (virDeliverEvents(conn) < 0) {
            failures++;
            break;
        }
    }
    return failures;
}

/* The event's children: what follows the root's start tag. */
static inline const char *children(const char *xml)
{
    const char *p = xml ? strchr(xml, '>') : NULL;
    return p ? p + 1 : "";
}

/* `xml` is connection-closed with `reason`. */
static inline void check_closed(const char *xml, const char *reason)
{
    char want[64];
    snprintf(want, sizeof want, "<reason>%s</reason></event>", reason);
    CHECK(is_type(xml, "connection-closed"));
    CHECK_STR(children(xml), want);
}

/* Starts the fake daemon on script `s` and opens its URI (checked), with a
 * NULL-filter handler recording into `seen` when given; NULL if it does not
 * open. */
static inline virConnectPtr fake_open(Fake *f, const Script *s, Seen *seen)
{
    fake_start(f, s, NULL);
    virConnectPtr conn = virConnectOpen(f->uri);
    CHECK(conn != NULL);
    if (!conn)
        fprintf(stderr, "  open failed: %d %s\n", virGetLastErrorCode(), virGetLastErrorMessage());
    else if (seen)
        CHECK(virConnectAddEventHandler(conn, NULL, seen_handler, seen) >= 0);
    return conn;
}

/* Closes `conn` (checked; NULL: closed already, or never opened), collects
 * what the daemon saw, and returns its trace. */
static inline const char *fake_close(Fake *f, virConnectPtr conn)
{
    if (conn)
        CHECK_INT(virConnectClose(conn), 0);
    fake_finish(f);
    return trace(f);
}

/* Starts the fake daemon on `s`, opens a connection and closes it; returns
 * the daemon's trace. */
static inline const char *open_close(Fake *f, const Script *s)
{
    return fake_close(f, fake_open(f, s, NULL));
}

/* Tells the daemon to go on with its script, and delivers until `seen` holds
 * `want` events; checks that it does, with no delivery failing. */
static inline void go_deliver(Fake *f, virConnectPtr conn, Seen *seen, int want)
{
    fake_go(f);
    CHECK_INT(deliver_until(conn, &seen->count, want, 3000), 0);
    CHECK_INT(seen->count, want);
}

/* Tells the daemon to go on with its script: what it sends makes the
 * descriptor readable, but a delivery makes no handler call (checked). */
static inline void go_no_event(Fake *f, virConnectPtr conn, const Seen *seen)
{
    int before = seen->count;
    fake_go(f);
    CHECK_INT(readable(virConnectGetEventFD(conn), 2000), 1);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(seen->count, before);
}

#endif
