/* The libvirt remote-protocol client (LIBVIRT-RPC.md, API.md section 2) against
 * a scripted FAKE daemon: a forked child listening on a Unix socket in a
 * temporary folder, which answers the client's calls as a daemon would, then
 * sends what a real daemon never does (bad lengths, truncated bodies, unknown
 * procedures, partial packets, replies nobody asked for) and records every
 * packet the client sent, for the parent to check the exact call sequence.
 *
 * The child talks to the parent through two descriptors: a report pipe (one
 * fixed-size record per packet received, then one record saying how it ended)
 * and a control socket pair (one byte from the parent = "go on with the
 * script"). It never calls the library, has alarm() as a safety net, and ends
 * with _exit. Only the parent uses CHECK. */
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

/* ---- wire constants --------------------------------------------------------- */

#define PROG_REMOTE 0x20008086u
#define PROG_QEMU 0x20008087u
#define PROG_KEEPALIVE 0x6b656570u
#define T_CALL 0
#define T_REPLY 1
#define T_MESSAGE 2
#define T_STREAM 3

#define P_OPEN 1
#define P_CLOSE 2
#define P_AUTH_LIST 66
#define P_AUTH_POLKIT 70
#define P_GET_STATE 212
#define P_LIST_ALL 273
#define P_REGISTER 316
#define P_DEREGISTER 317

/* The callback id the fake daemon gives each event id: not 0, 1, 2... so that
 * the order of the deregistrations shows. */
static int callback_of(int event_id)
{
    return 100 + 7 * event_id;
}

/* ---- XDR buffers -------------------------------------------------------------- */

typedef struct {
    unsigned char data[4096];
    size_t len;
    size_t mark; /* where the packet being built starts */
} Buf;

static void put_bytes(Buf *b, const void *p, size_t n)
{
    if (b->len + n > sizeof b->data) {
        fprintf(stderr, "Buf overflow\n");
        abort();
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u32(Buf *b, uint32_t v)
{
    unsigned char w[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    put_bytes(b, w, 4);
}

static void put_i32(Buf *b, int32_t v)
{
    put_u32(b, (uint32_t)v);
}

static void put_hyper(Buf *b, int64_t v)
{
    put_u32(b, (uint32_t)((uint64_t)v >> 32));
    put_u32(b, (uint32_t)(uint64_t)v);
}

static void put_str(Buf *b, const char *s)
{
    static const unsigned char zeros[4] = {0};
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    put_bytes(b, s, n);
    put_bytes(b, zeros, (4 - n % 4) % 4);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Starts a packet (its length word is filled in by pkt_end). */
static void pkt_begin(Buf *b, uint32_t prog, int proc, int type, uint32_t serial, int status)
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

static void pkt_end(Buf *b)
{
    uint32_t n = (uint32_t)(b->len - b->mark);
    unsigned char *p = b->data + b->mark;
    p[0] = (unsigned char)(n >> 24);
    p[1] = (unsigned char)(n >> 16);
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
}

/* A remote_error body (LIBVIRT-RPC.md section 3), its message as printf makes
 * it; returns 1, the status of a reply that carries it. */
__attribute__((format(printf, 3, 4))) static int put_error(Buf *b, int code, const char *fmt, ...)
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
static const Dom DOM_TEST = {"test", TEST_UUID_BYTES, 1, 1};
/* Not listed by the daemon: an odd name length (padding), inactive. */
static const Dom DOM_TEST2 = {"test2", {0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55}, -1, 5};
static const Dom DOM_OTHER = {"other", {0xaa, 0xaa, 0xaa, 0xaa, 0xbb, 0xbb, 0xcc, 0xcc, 0xdd, 0xdd, 0xee, 0xee, 0xee, 0xee, 0xee, 0x01}, 7, 1};
static const Dom DOM_GONE = {"gone", {0xaa, 0xaa, 0xaa, 0xaa, 0xbb, 0xbb, 0xcc, 0xcc, 0xdd, 0xdd, 0xee, 0xee, 0xee, 0xee, 0xee, 0x02}, 3, -1};
static const Dom DOM_SLEEPY = {"sleepy", {0xaa, 0xaa, 0xaa, 0xaa, 0xbb, 0xbb, 0xcc, 0xcc, 0xdd, 0xdd, 0xee, 0xee, 0xee, 0xee, 0xee, 0x03}, 4, 7};

#define TEST_IDENT "<domain-id>1</domain-id><domain-name>test</domain-name>" \
                   "<domain-uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</domain-uuid>"

static void put_dom(Buf *b, const Dom *d)
{
    put_str(b, d->name);
    put_bytes(b, d->uuid, 16);
    put_i32(b, d->id);
}

/* An event MESSAGE of `proc` up to its domain: type 2, serial 1, status 0. */
static void ev_begin(Buf *b, int proc, int event_id, const Dom *d)
{
    pkt_begin(b, PROG_REMOTE, proc, T_MESSAGE, 1, 0);
    put_i32(b, callback_of(event_id));
    put_dom(b, d);
}

/* A lifecycle event with a lifecycle body, as procedure `proc`. */
static void ev_lifecycle_as(Buf *b, int proc, const Dom *d, int event, int detail)
{
    ev_begin(b, proc, 0, d);
    put_i32(b, event);
    put_i32(b, detail);
    pkt_end(b);
}

static void ev_lifecycle(Buf *b, const Dom *d, int event, int detail)
{
    ev_lifecycle_as(b, 318, d, event, detail);
}

/* A lifecycle event of test whose body is cut before its detail. */
static void ev_lifecycle_cut(Buf *b)
{
    ev_begin(b, 318, 0, &DOM_TEST);
    put_i32(b, 3);
    pkt_end(b);
}

static void ev_reboot(Buf *b, const Dom *d)
{
    ev_begin(b, 319, 1, d);
    pkt_end(b);
}

static void ev_rtc(Buf *b, const Dom *d, int64_t offset)
{
    ev_begin(b, 320, 2, d);
    put_hyper(b, offset);
    pkt_end(b);
}

static void ev_watchdog(Buf *b, const Dom *d, int action)
{
    ev_begin(b, 321, 3, d);
    put_i32(b, action);
    pkt_end(b);
}

static void ev_io_error(Buf *b, const Dom *d, const char *path, const char *alias, int action)
{
    ev_begin(b, 322, 4, d);
    put_str(b, path);
    put_str(b, alias);
    put_i32(b, action);
    pkt_end(b);
}

static void ev_metadata(Buf *b, const Dom *d, int type, const char *nsuri)
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

static void keepalive(Buf *b, int proc)
{
    pkt_begin(b, PROG_KEEPALIVE, proc, T_MESSAGE, 0, 0);
    pkt_end(b);
}

/* A reply of `prog` to LIST_ALL_DOMAINS with serial `serial`: no domain. */
static void empty_list_reply(Buf *b, uint32_t prog, uint32_t serial)
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

enum { S_SEND, S_WAIT, S_HANGUP };

typedef struct {
    int kind;
    const Buf *buf; /* S_SEND: bytes off..off+len of buf, `repeat` times */
    size_t off, len;
    int repeat;
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
    int register_error[24];   /* by event id: REGISTER fails with this code */
    int deregister_error_first; /* the first DEREGISTER fails */
    int ndomains;
    Dom domains[4];
    int nhooks;
    Hook hooks[6];
    /* Run once the open sequence has been answered and the parent said go. */
    int nsteps;
    Step steps[16];
} Script;

static void script_init(Script *s)
{
    memset(s, 0, sizeof *s);
    s->nauth = 1;
    s->auth[0] = 0;
    s->ndomains = 1;
    s->domains[0] = DOM_TEST;
}

static void step_send_part(Script *s, const Buf *b, size_t off, size_t len)
{
    s->steps[s->nsteps++] = (Step){S_SEND, b, off, len, 1};
}

static void step_send(Script *s, const Buf *b)
{
    step_send_part(s, b, 0, b->len);
}

static void step_wait(Script *s)
{
    s->steps[s->nsteps++] = (Step){S_WAIT, NULL, 0, 0, 0};
}

static void step_hangup(Script *s)
{
    s->steps[s->nsteps++] = (Step){S_HANGUP, NULL, 0, 0, 0};
}

static void hook(Script *s, int proc, int when, const Buf *b, int status)
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
enum { DONE_EOF = 1, DONE_CLOSE, DONE_HANGUP, DONE_TIMEOUT, DONE_ERROR, DONE_NOGO };
static const char *const DONE_NAMES[] = {"?", "EOF", "CLOSE", "HANGUP", "TIMEOUT", "ERROR", "NOGO"};

typedef struct {
    int c, report, ctl;
    const Script *s;
    int fired[8];
    int states_answered;
    int open_done;
    int deregistered;
} Child;

static unsigned char child_packet[65536];

static void child_end(Child *ch, int how)
{
    WireRec r;
    memset(&r, 0, sizeof r);
    r.proc = REC_DONE;
    r.type = how;
    if (write(ch->report, &r, sizeof r) != (ssize_t)sizeof r) {
        /* nothing to do: the parent reports a missing end */
    }
    _exit(how == DONE_EOF || how == DONE_CLOSE || how == DONE_HANGUP ? 0 : 3);
}

static void child_hangup(Child *ch, int how)
{
    shutdown(ch->c, SHUT_RDWR);
    close(ch->c);
    child_end(ch, how);
}

static void child_send(Child *ch, const void *p, size_t n)
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

/* Polls `p` for at most 5 s, ending the child if nothing comes or poll fails;
 * returns 0 when interrupted by a signal, else the number of ready entries. */
static int child_poll(Child *ch, struct pollfd *p, nfds_t n)
{
    int r = poll(p, n, 5000);
    if (r == 0)
        child_end(ch, DONE_TIMEOUT);
    if (r < 0 && errno != EINTR)
        child_end(ch, DONE_ERROR);
    return r < 0 ? 0 : r;
}

/* Reads exactly n bytes (5 s each wait); returns how many came before EOF. */
static size_t child_read_full(Child *ch, unsigned char *p, size_t n)
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

static void child_record(Child *ch, const unsigned char *p, size_t n)
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

static const Hook *child_hook(Child *ch, int proc, int when)
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
static const Dom *child_domain(Child *ch, const unsigned char *body, size_t n)
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
static int child_reply_body(Child *ch, int proc, const unsigned char *body, size_t n, Buf *r)
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
    case P_REGISTER:
        if (arg >= 0 && arg < 24 && s->register_error[arg])
            return put_error(r, s->register_error[arg], "internal error: unsupported event ID %d", arg);
        put_i32(r, callback_of(arg));
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

static void child_answer(Child *ch, int proc, uint32_t serial, const unsigned char *body, size_t n)
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
static void child_serve_one(Child *ch)
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
static void child_wait_go(Child *ch)
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

static void child_main(int listener, const Script *s, int report, int ctl)
{
    alarm(8);
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
static void fake_start(Fake *f, const Script *s, const char *sockname)
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
static void fake_go(Fake *f)
{
    char byte = 'g';
    if (send(f->ctl, &byte, 1, MSG_NOSIGNAL) != 1)
        fprintf(stderr, "fake_go: the fake daemon is gone\n");
}

/* Collects the daemon's records and its exit, and removes its folder. */
static void fake_finish(Fake *f)
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
    CHECK(f->status != -1 && WIFEXITED(f->status) && WEXITSTATUS(f->status) == 0);
}

/* What the client sent, one word a packet: the procedure of a REMOTE call,
 * K<proc> for keepalive, ?<prog>/<type>/<proc> for anything else; then how the
 * daemon ended. */
static const char *trace(const Fake *f)
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
static const char *int_args(const Fake *f, int proc)
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

static const WireRec *first_call(const Fake *f, int proc)
{
    for (int i = 0; i < f->nrecs; i++)
        if (f->recs[i].prog == PROG_REMOTE && f->recs[i].type == T_CALL && f->recs[i].proc == proc)
            return &f->recs[i];
    return NULL;
}

/* Every call is framed as libvirt frames it, and the serials are 0, 1, 2...
 * Returns the number of calls. */
static int check_calls(const Fake *f)
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
static void check_open_bodies(const Fake *f, const char *name)
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
    /* Each registration: the event id, then 0 = no domain filter. */
    int bad = 0;
    for (int i = 0; i < f->nrecs; i++) {
        const WireRec *r = &f->recs[i];
        if (r->type == T_CALL && r->proc == P_REGISTER && (r->bodylen != 8 || be32(r->body + 4) != 0))
            bad++;
    }
    CHECK_INT(bad, 0);
    CHECK_STR(int_args(f, P_REGISTER), "0 1 2 3 4 23");
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

#define OPEN_SEQ "66 1 316 316 316 316 316 316 273 212"
#define CLOSE_SEQ "317 317 317 317 317 317 2 CLOSE"
#define ALL_CALLBACKS "100 107 114 121 128 261"

/* ---- the parent's helpers ----------------------------------------------------- */

static int readable(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, ms);
    return r == 1 && (p.revents & POLLIN) ? 1 : 0;
}

/* A poll loop: waits on the connection's descriptor and delivers, until `*count`
 * reaches `want` or `ms` pass. Returns the number of failed deliveries. */
static int deliver_until(virConnectPtr conn, const int *count, int want, int ms)
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
static const char *children(const char *xml)
{
    const char *p = xml ? strchr(xml, '>') : NULL;
    return p ? p + 1 : "";
}

/* `xml` is connection-closed with `reason`. */
static void check_closed(const char *xml, const char *reason)
{
    char want[64];
    snprintf(want, sizeof want, "<reason>%s</reason></event>", reason);
    CHECK(is_type(xml, "connection-closed"));
    CHECK_STR(children(xml), want);
}

/* Starts the fake daemon on script `s` and opens its URI (checked), with a
 * NULL-filter handler recording into `seen` when given; NULL if it does not
 * open. */
static virConnectPtr fake_open(Fake *f, const Script *s, Seen *seen)
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
static const char *fake_close(Fake *f, virConnectPtr conn)
{
    if (conn)
        CHECK_INT(virConnectClose(conn), 0);
    fake_finish(f);
    return trace(f);
}

/* Starts the fake daemon on `s`, opens a connection and closes it; returns
 * the daemon's trace. */
static const char *open_close(Fake *f, const Script *s)
{
    return fake_close(f, fake_open(f, s, NULL));
}

/* Tells the daemon to go on with its script, and delivers until `seen` holds
 * `want` events; checks that it does, with no delivery failing. */
static void go_deliver(Fake *f, virConnectPtr conn, Seen *seen, int want)
{
    fake_go(f);
    CHECK_INT(deliver_until(conn, &seen->count, want, 3000), 0);
    CHECK_INT(seen->count, want);
}

/* Tells the daemon to go on with its script: what it sends makes the
 * descriptor readable, but a delivery makes no handler call (checked). */
static void go_no_event(Fake *f, virConnectPtr conn, const Seen *seen)
{
    int before = seen->count;
    fake_go(f);
    CHECK_INT(readable(virConnectGetEventFD(conn), 2000), 1);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(seen->count, before);
}

/* ---- the open and close sequences ------------------------------------------- */

static void open_close_sequence(void)
{
    case_begin();
    Script s;
    script_init(&s);
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, &s, &seen);
    if (conn) {
        int fd = virConnectGetEventFD(conn);
        CHECK(fd >= 0);
        /* Nothing sent, nothing queued. */
        CHECK_INT(readable(fd, 0), 0);
        CHECK_INT(virDeliverEvents(conn), 0);
        CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
        /* A stream carries the connection-closed of the close itself. */
        int stream = virConnectOpenEventStream(conn, NULL, 0);
        CHECK(stream >= 0);
        CHECK_INT(virConnectClose(conn), 0);
        char text[1024] = "";
        size_t n = 0;
        ssize_t k;
        while (stream >= 0 && readable(stream, 2000) && (k = read(stream, text + n, sizeof text - 1 - n)) > 0)
            n += (size_t)k;
        text[n] = '\0';
        CHECK(is_type(text, "connection-closed"));
        CHECK_CONTAINS(text, "<reason>client</reason>");
        if (stream >= 0)
            close(stream);
    }
    CHECK_STR(fake_close(&f, NULL), OPEN_SEQ " " CLOSE_SEQ);
    CHECK_INT(check_calls(&f), 17);
    check_open_bodies(&f, "test:///default");
    /* Deregistered in the order registered, with the daemon's ids. */
    CHECK_STR(int_args(&f, P_DEREGISTER), ALL_CALLBACKS);
    const WireRec *c = first_call(&f, P_CLOSE);
    CHECK(c && c->bodylen == 0);
    CHECK_INT(seen.count, 0);
    seen_clear(&seen);
    case_end("open and close: the exact call sequence");
}

/* The name sent is the plain driver URI, with the client-only parameters
 * dropped and the others kept; the socket path is percent-decoded. */
static void open_name_of_uri(void)
{
    case_begin();
    Script s;
    script_init(&s);
    Fake f;
    fake_start(&f, &s, "my sock");
    snprintf(f.uri, sizeof f.uri, "test+unix:///default?socket=%s/my%%20sock&mode=direct&foo=bar", f.dir);
    virConnectPtr conn = virConnectOpen(f.uri);
    CHECK(conn != NULL);
    CHECK_STR(fake_close(&f, conn), OPEN_SEQ " " CLOSE_SEQ);
    check_open_bodies(&f, "test:///default?foo=bar");
    case_end("CONNECT_OPEN's name for a URI with parameters");
}

/* Polkit: AUTH_POLKIT then the rest, when the list offers polkit only. */
static void open_with_polkit(void)
{
    case_begin();
    Script s;
    script_init(&s);
    s.auth[0] = 2;
    Fake f;
    CHECK_STR(open_close(&f, &s), "66 70 1 316 316 316 316 316 316 273 212 " CLOSE_SEQ);
    CHECK_INT(check_calls(&f), 18);
    const WireRec *polkit = first_call(&f, P_AUTH_POLKIT);
    CHECK(polkit && polkit->bodylen == 0);
    case_end("open through AUTH_POLKIT");
}

/* Registrations the daemon does not support (code 1) are skipped and never
 * deregistered. */
static void open_skips_unsupported_events(void)
{
    case_begin();
    Script s;
    script_init(&s);
    s.register_error[3] = 1;
    s.register_error[23] = 1;
    Fake f;
    CHECK_STR(open_close(&f, &s), OPEN_SEQ " 317 317 317 317 2 CLOSE");
    CHECK_STR(int_args(&f, P_DEREGISTER), "100 107 114 128");
    check_calls(&f);
    case_end("unsupported event ids are skipped");
}

/* A domain gone between the list and its state (error 42) is skipped; states
 * the daemon reports become the old-state of later events. */
static void open_skips_vanished_domain(void)
{
    case_begin();
    Script s;
    script_init(&s);
    s.ndomains = 3;
    s.domains[1] = DOM_GONE;
    s.domains[2] = DOM_SLEEPY;
    Buf ev = {0};
    ev_lifecycle(&ev, &DOM_GONE, 2, 0);
    ev_lifecycle(&ev, &DOM_SLEEPY, 4, 0);
    ev_lifecycle(&ev, &DOM_TEST, 3, 0);
    step_send(&s, &ev);
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, &s, &seen);
    if (conn) {
        go_deliver(&f, conn, &seen, 3);
        CHECK_CONTAINS(seen.xml[0], "<domain-name>gone</domain-name>");
        CHECK_CONTAINS(seen.xml[0], STATES("nostate", "running") "<reason>started-booted</reason>");
        CHECK_CONTAINS(seen.xml[1], "<domain-name>sleepy</domain-name>");
        CHECK_CONTAINS(seen.xml[1], STATES("pmsuspended", "running") "<reason>resumed-unpaused</reason>");
        CHECK_CONTAINS(seen.xml[2], STATES("running", "paused"));
    }
    CHECK_STR(fake_close(&f, conn), "66 1 316 316 316 316 316 316 273 212 212 212 " CLOSE_SEQ);
    check_calls(&f);
    seen_clear(&seen);
    case_end("GET_STATE error 42 skips the domain");
}

/* Events, stray replies and a PING interleaved between calls and their
 * replies during open: the replies are matched by serial and program, the
 * PING is answered, and the events update the state record (no handler can
 * see them yet: they are emitted before open returns). */
static void open_with_interleaved_packets(void)
{
    case_begin();
    Script s;
    script_init(&s);
    s.domains[0].state = 3; /* paused, as after the event below */
    Buf ping = {0}, stray = {0}, events = {0}, wrong = {0};
    keepalive(&ping, 1);
    /* A reply to a call never made, with an error body. */
    pkt_begin(&stray, PROG_REMOTE, P_OPEN, T_REPLY, 999, 1);
    put_error(&stray, 1, "stray");
    pkt_end(&stray);
    /* "other" starts (it is not listed: only the event records it), and test
     * is paused. */
    ev_lifecycle(&events, &DOM_OTHER, 2, 0);
    ev_lifecycle(&events, &DOM_TEST, 3, 0);
    /* An empty domain list for LIST_ALL_DOMAINS' serial (8), but from the QEMU
     * program, then one from REMOTE for another serial: neither is the reply. */
    empty_list_reply(&wrong, PROG_QEMU, 8);
    empty_list_reply(&wrong, PROG_REMOTE, 9);
    hook(&s, P_AUTH_LIST, H_BEFORE, &ping, 0);
    hook(&s, P_OPEN, H_BEFORE, &stray, 0);
    hook(&s, P_LIST_ALL, H_BEFORE, &events, 0);
    hook(&s, P_LIST_ALL, H_BEFORE, &wrong, 0);
    Buf later = {0};
    ev_lifecycle(&later, &DOM_OTHER, 5, 1);
    ev_lifecycle(&later, &DOM_TEST, 4, 0);
    step_send(&s, &later);
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, &s, &seen);
    if (conn) {
        /* Nothing from open reaches the handler. */
        CHECK_INT(virDeliverEvents(conn), 0);
        CHECK_INT(seen.count, 0);
        go_deliver(&f, conn, &seen, 2);
        CHECK_CONTAINS(seen.xml[0], "<domain-id>7</domain-id><domain-name>other</domain-name>"
                                    "<domain-uuid>aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeee01</domain-uuid>"
                                    STATES("running", "shutoff") "<reason>stopped-destroyed</reason>");
        CHECK_STR(children(seen.xml[1]), TEST_TRANSITION("paused", "running", "resumed-unpaused"));
    }
    /* The PING of AUTH_LIST's wait is answered before the next call. */
    CHECK_STR(fake_close(&f, conn), "66 K2 1 316 316 316 316 316 316 273 212 " CLOSE_SEQ);
    check_calls(&f);
    seen_clear(&seen);
    case_end("packets interleaved with the open sequence");
}

/* An event that arrives in the same read as the last reply of the open
 * sequence: the library reads it into its buffer while it waits for that
 * reply, so the socket is empty afterwards. Open processes it at its end,
 * after recording the listed states, before any handler exists. Checked: the
 * descriptor agrees with virDeliverEvents (API: "readable exactly while
 * virDeliverEvents has handler calls to make"), the event thread leaves
 * nothing behind that a delivery would find, and the event counts in the
 * state record (the next event's old-state). */
typedef struct {
    atomic_int calls;
} Counter;

static void count_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    (void)conn;
    (void)eventXML;
    atomic_fetch_add(&((Counter *)arg)->calls, 1);
}

static void event_with_last_reply(int thread)
{
    case_begin();
    Script s;
    script_init(&s);
    Buf ev = {0}, later = {0};
    ev_lifecycle(&ev, &DOM_TEST, 3, 0);
    hook(&s, P_GET_STATE, H_AFTER, &ev, 0);
    ev_lifecycle(&later, &DOM_TEST, 4, 0);
    step_send(&s, &later);
    Fake f;
    virConnectPtr conn = fake_open(&f, &s, NULL);
    if (conn) {
        Counter counter = {0};
        CHECK(virConnectAddEventHandler(conn, NULL, count_handler, &counter) >= 0);
        int fd = virConnectGetEventFD(conn);
        if (!thread) {
            /* A poll loop: the descriptor is readable if, and only if, the
             * delivery has a call to make. */
            int r = readable(fd, 1000);
            int n = virDeliverEvents(conn);
            CHECK_INT(r, n > 0 ? 1 : 0);
            CHECK(n >= 0);
        } else {
            /* The thread left nothing unread for this delivery to find. */
            CHECK_INT(virConnectStartEventThread(conn), 0);
            sleep_ms(1000);
            CHECK_INT(virConnectStopEventThread(conn), 0);
            CHECK_INT(virDeliverEvents(conn), 0);
        }
        /* The event updated the state record: the next one starts from paused. */
        Seen seen = {0};
        CHECK(virConnectAddEventHandler(conn, NULL, seen_handler, &seen) >= 0);
        go_deliver(&f, conn, &seen, 1);
        CHECK_CONTAINS(seen.xml[0], STATES("paused", "running"));
        CHECK_INT(virConnectClose(conn), 0);
        seen_clear(&seen);
    }
    CHECK_STR(fake_close(&f, NULL), OPEN_SEQ " " CLOSE_SEQ);
    case_end(thread ? "event in the same read as the last open reply (event thread)"
                    : "event in the same read as the last open reply (poll)");
}

/* ---- open failures ------------------------------------------------------------ */

typedef struct {
    const char *what;
    int code, alt_code; /* the error wanted (alt_code: also accepted, or 0) */
    const char *part;   /* in its message */
    const char *trace;  /* what the daemon saw */
} OpenFault;

static void open_fails(const Script *s, const OpenFault *want)
{
    case_begin();
    Fake f;
    fake_start(&f, s, NULL);
    long long t0 = now_ms();
    virConnectPtr conn = virConnectOpen(f.uri);
    long long took = now_ms() - t0;
    CHECK(conn == NULL);
    int code = virGetLastErrorCode();
    if (want->alt_code && code == want->alt_code)
        CHECK_INT(code, want->alt_code);
    else
        CHECK_INT(code, want->code);
    if (want->part)
        CHECK_CONTAINS(virGetLastErrorMessage(), want->part);
    CHECK(took < 3000);
    if (conn)
        virConnectClose(conn);
    fake_finish(&f);
    CHECK_STR(trace(&f), want->trace);
    check_calls(&f);
    case_end(want->what);
}

static void open_failures(void)
{
    Script s;
    Buf bad = {0};

    script_init(&s);
    s.auth[0] = 1;
    open_fails(&s, &(OpenFault){"AUTH_LIST [1]: SASL only", VIR_ERR_AUTH_FAILED, 0, "SASL", "66 EOF"});

    script_init(&s);
    s.auth[0] = 2;
    s.polkit_error = "Unable to get system bus connection";
    open_fails(&s, &(OpenFault){"polkit fails", VIR_ERR_AUTH_FAILED, 0, "Unable to get system bus connection",
                                "66 70 EOF"});

    script_init(&s);
    s.auth[0] = 5;
    open_fails(&s, &(OpenFault){"AUTH_LIST [5]: nothing known", VIR_ERR_AUTH_FAILED, 0, "5", "66 EOF"});

    script_init(&s);
    s.open_error = VIR_ERR_RPC;
    s.open_message = "authentication required";
    open_fails(&s, &(OpenFault){"CONNECT_OPEN: authentication required", VIR_ERR_AUTH_FAILED, 0,
                                "authentication required", "66 1 EOF"});

    script_init(&s);
    s.open_error = VIR_ERR_NO_CONNECT;
    s.open_message = "no connection driver available for test:///default";
    open_fails(&s, &(OpenFault){"CONNECT_OPEN: no driver", VIR_ERR_NO_CONNECT, 0,
                                "no connection driver available for test:///default", "66 1 EOF"});

    /* A daemon error code this library knows passes through; another one
     * becomes VIR_ERR_RPC, naming it. */
    script_init(&s);
    s.open_error = VIR_ERR_XML_ERROR;
    s.open_message = "XML error: bad URI";
    open_fails(&s, &(OpenFault){"CONNECT_OPEN: XML error (27) passes through", VIR_ERR_XML_ERROR, 0,
                                "XML error: bad URI", "66 1 EOF"});
    script_init(&s);
    s.open_error = 1000;
    s.open_message = "a code nobody knows";
    open_fails(&s, &(OpenFault){"CONNECT_OPEN: unknown error code 1000", VIR_ERR_RPC, 0, "1000", "66 1 EOF"});

    script_init(&s);
    s.register_error[0] = 1;
    open_fails(&s, &(OpenFault){"lifecycle registration refused", VIR_ERR_INTERNAL_ERROR, 0,
                                "unsupported event ID 0", "66 1 316 EOF"});

    script_init(&s);
    s.hangup_on_accept = 1;
    open_fails(&s, &(OpenFault){"daemon hangs up at once", VIR_ERR_NO_CONNECT, VIR_ERR_RPC, NULL, "HANGUP"});

    script_init(&s);
    hook(&s, P_OPEN, H_HANGUP, NULL, 0);
    open_fails(&s, &(OpenFault){"daemon hangs up at CONNECT_OPEN", VIR_ERR_NO_CONNECT, VIR_ERR_RPC,
                                NULL, "66 1 HANGUP"});

    /* An error reply whose body is not a remote_error. */
    script_init(&s);
    memset(&bad, 0, sizeof bad);
    hook(&s, P_AUTH_LIST, H_INSTEAD, &bad, 1);
    open_fails(&s, &(OpenFault){"error reply with an empty body", VIR_ERR_RPC, 0, "bad error reply", "66 EOF"});

    /* An AUTH_LIST reply whose array count does not fit. */
    script_init(&s);
    memset(&bad, 0, sizeof bad);
    put_u32(&bad, 0x7fffffff);
    hook(&s, P_AUTH_LIST, H_INSTEAD, &bad, 0);
    open_fails(&s, &(OpenFault){"AUTH_LIST reply that does not decode", VIR_ERR_RPC, 0, "AUTH_LIST", "66 EOF"});

    /* A domain list whose count does not fit. */
    script_init(&s);
    memset(&bad, 0, sizeof bad);
    put_u32(&bad, 5);
    put_dom(&bad, &DOM_TEST);
    hook(&s, P_LIST_ALL, H_INSTEAD, &bad, 0);
    open_fails(&s, &(OpenFault){"domain list that does not decode", VIR_ERR_RPC, 0, "CONNECT_LIST_ALL_DOMAINS",
                                "66 1 316 316 316 316 316 316 273 EOF"});

    /* A truncated lifecycle event while waiting for a reply. */
    script_init(&s);
    memset(&bad, 0, sizeof bad);
    ev_lifecycle_cut(&bad);
    hook(&s, P_LIST_ALL, H_BEFORE, &bad, 0);
    open_fails(&s, &(OpenFault){"bad event body during open", VIR_ERR_RPC, 0, "bad body for event procedure 318",
                                "66 1 316 316 316 316 316 316 273 EOF"});

    /* A bad length word while waiting for a reply. */
    script_init(&s);
    memset(&bad, 0, sizeof bad);
    put_u32(&bad, 3);
    put_u32(&bad, 0);
    hook(&s, P_OPEN, H_BEFORE, &bad, 0);
    open_fails(&s, &(OpenFault){"bad length during open", VIR_ERR_RPC, 0, "bad packet length 3", "66 1 EOF"});
}

/* ---- events ------------------------------------------------------------------- */

static void events_decoded(void)
{
    case_begin();
    Script s;
    script_init(&s);
    static Buf ev;
    memset(&ev, 0, sizeof ev);
    ev_lifecycle(&ev, &DOM_TEST, 3, 0);     /* 0 */
    ev_lifecycle(&ev, &DOM_TEST, 4, 0);     /* 1 */
    ev_lifecycle(&ev, &DOM_TEST, 3, 42);    /* 2 */
    ev_lifecycle(&ev, &DOM_TEST, 99, 1);    /* 3 */
    ev_lifecycle(&ev, &DOM_TEST2, 0, 0);    /* 4 */
    ev_lifecycle(&ev, &DOM_TEST, 2, 0);     /* 5 */
    ev_reboot(&ev, &DOM_TEST);              /* 6 */
    ev_rtc(&ev, &DOM_TEST, -3600);          /* 7 */
    ev_rtc(&ev, &DOM_TEST, INT64_MIN);      /* 8 */
    ev_rtc(&ev, &DOM_TEST, INT64_MAX);      /* 9 */
    for (int a = 0; a <= 6; a++)
        ev_watchdog(&ev, &DOM_TEST, a);     /* 10..16 */
    ev_watchdog(&ev, &DOM_TEST, 77);        /* 17 */
    ev_io_error(&ev, &DOM_TEST, "/var/lib/a&b<c>.img", "virtio-disk0", 0); /* 18 */
    ev_io_error(&ev, &DOM_TEST, "", "vda", 2);                              /* 19 */
    ev_io_error(&ev, &DOM_TEST, "/x", "vdb", 5);                            /* 20 */
    ev_metadata(&ev, &DOM_TEST, 0, NULL);                                   /* 21 */
    ev_metadata(&ev, &DOM_TEST, 1, NULL);                                   /* 22 */
    ev_metadata(&ev, &DOM_TEST, 2, "http://example.org/x");                 /* 23 */
    ev_metadata(&ev, &DOM_TEST, 9, "");                                     /* 24 */
    ev_lifecycle(&ev, &DOM_TEST, -1, -1);                                   /* 25 */
    const int total = 26;
    step_send(&s, &ev);
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, &s, &seen);
    if (conn) {
        go_deliver(&f, conn, &seen, total);
        if (seen.count == total) {
            char *const *x = seen.xml;
            /* The root: type, timestamp, seq, in that order. */
            static const char root[] = "<event type=\"domain-state-transition\" timestamp=\"";
            CHECK(strncmp(x[0], root, strlen(root)) == 0);
            CHECK_CONTAINS(x[0], "\" seq=\"");
            int bad_seq = 0;
            for (int i = 1; i < total; i++)
                if (seq_of(x[i]) != seq_of(x[i - 1]) + 1)
                    bad_seq++;
            CHECK_INT(bad_seq, 0);
            CHECK_STR(children(x[0]), TEST_TRANSITION("running", "paused", "suspended-paused"));
            CHECK_STR(children(x[1]), TEST_TRANSITION("paused", "running", "resumed-unpaused"));
            CHECK_STR(children(x[2]), TEST_TRANSITION("running", "paused", "suspended-unknown-42"));
            CHECK_STR(children(x[3]), TEST_TRANSITION("paused", "nostate", "unknown-99-unknown-1"));
            CHECK_STR(children(x[4]), "<domain-id>-1</domain-id><domain-name>test2</domain-name>"
                                      "<domain-uuid>11111111-2222-3333-4444-555555555555</domain-uuid>"
                                      STATES("nostate", "shutoff") "<reason>defined-added</reason></event>");
            CHECK_STR(children(x[5]), TEST_TRANSITION("nostate", "running", "started-booted"));
            CHECK(is_type(x[6], "domain-reboot"));
            CHECK_STR(children(x[6]), TEST_IDENT "</event>");
            CHECK(is_type(x[7], "domain-rtc-change"));
            CHECK_STR(children(x[7]), TEST_IDENT "<offset>-3600</offset></event>");
            CHECK_CONTAINS(x[8], "<offset>-9223372036854775808</offset>");
            CHECK_CONTAINS(x[9], "<offset>9223372036854775807</offset>");
            static const char *const actions[] = {"none", "pause", "reset", "poweroff", "shutdown", "debug", "inject-nmi"};
            for (int a = 0; a <= 6; a++) {
                char want[256];
                snprintf(want, sizeof want, TEST_IDENT "<action>%s</action></event>", actions[a]);
                CHECK(is_type(x[10 + a], "domain-watchdog"));
                CHECK_STR(children(x[10 + a]), want);
            }
            CHECK_STR(children(x[17]), TEST_IDENT "<action>unknown-77</action></event>");
            CHECK(is_type(x[18], "domain-io-error"));
            CHECK_STR(children(x[18]), TEST_IDENT "<src-path>/var/lib/a&amp;b&lt;c&gt;.img</src-path>"
                                                  "<dev-alias>virtio-disk0</dev-alias><action>none</action></event>");
            CHECK_STR(children(x[19]), TEST_IDENT "<src-path></src-path><dev-alias>vda</dev-alias>"
                                                  "<action>report</action></event>");
            CHECK_CONTAINS(x[20], "<action>unknown-5</action>");
            CHECK(is_type(x[21], "domain-metadata-change"));
            CHECK_STR(children(x[21]), TEST_IDENT "<type>description</type></event>");
            CHECK_STR(children(x[22]), TEST_IDENT "<type>title</type></event>");
            CHECK_STR(children(x[23]), TEST_IDENT "<type>element</type><nsuri>http://example.org/x</nsuri></event>");
            CHECK_STR(children(x[24]), TEST_IDENT "<type>unknown-9</type><nsuri></nsuri></event>");
            CHECK_CONTAINS(x[25], STATES("running", "nostate") "<reason>unknown--1-unknown--1</reason>");
        }
        /* All taken: nothing more. */
        CHECK_INT(virDeliverEvents(conn), 0);
        CHECK_INT(readable(virConnectGetEventFD(conn), 0), 0);
    }
    CHECK_STR(fake_close(&f, conn), OPEN_SEQ " " CLOSE_SEQ);
    seen_clear(&seen);
    case_end("every registered event decoded");
}

/* Type filters and XPath work on remote events like on any other. */
static void events_filtered(void)
{
    case_begin();
    Script s;
    script_init(&s);
    Buf ev = {0};
    ev_lifecycle(&ev, &DOM_TEST, 3, 0);
    ev_watchdog(&ev, &DOM_TEST, 2);
    ev_lifecycle(&ev, &DOM_TEST, 4, 0);
    step_send(&s, &ev);
    Fake f;
    Seen all = {0}, paused = {0}, watchdog = {0};
    virConnectPtr conn = fake_open(&f, &s, &all);
    if (conn) {
        const char *const fpaused[] = {"/event[new-state='paused' and domain-name='test']", NULL};
        const char *const fwatch[] = {"domain-watchdog", NULL};
        CHECK(virConnectAddEventHandler(conn, fpaused, seen_handler, &paused) >= 0);
        CHECK(virConnectAddEventHandler(conn, fwatch, seen_handler, &watchdog) >= 0);
        go_deliver(&f, conn, &all, 3);
        CHECK_INT(paused.count, 1);
        CHECK_INT(watchdog.count, 1);
        CHECK_CONTAINS(watchdog.xml[0], "<action>reset</action>");
    }
    fake_close(&f, conn);
    seen_clear(&all);
    seen_clear(&paused);
    seen_clear(&watchdog);
    case_end("filters on remote events");
}

/* What no handler sees: unknown event procedures, replies nobody waits for,
 * other programs and types; the connection stays up. */
static void events_skipped(void)
{
    case_begin();
    Script s;
    script_init(&s);
    static Buf ev;
    memset(&ev, 0, sizeof ev);
    /* GRAPHICS (323), which is not registered: a body it could not decode. */
    pkt_begin(&ev, PROG_REMOTE, 323, T_MESSAGE, 1, 0);
    put_bytes(&ev, "abc", 3);
    pkt_end(&ev);
    /* Procedure 9999 with a lifecycle body. */
    ev_lifecycle_as(&ev, 9999, &DOM_TEST, 3, 0);
    /* Replies nobody waits for: OK and error, with and without a body. */
    pkt_begin(&ev, PROG_REMOTE, P_LIST_ALL, T_REPLY, 4242, 0);
    put_u32(&ev, 7);
    pkt_end(&ev);
    pkt_begin(&ev, PROG_REMOTE, P_CLOSE, T_REPLY, 77, 1);
    pkt_end(&ev);
    /* A lifecycle event from another program, a STREAM, a CALL to the client. */
    ev_lifecycle(&ev, &DOM_TEST, 3, 0);
    memcpy(ev.data + ev.mark + 4, "\x20\x00\x80\x87", 4); /* PROG_QEMU */
    pkt_begin(&ev, PROG_REMOTE, 318, T_STREAM, 1, 2);
    put_u32(&ev, 0);
    pkt_end(&ev);
    pkt_begin(&ev, PROG_REMOTE, P_CLOSE, T_CALL, 0, 0);
    pkt_end(&ev);
    /* A PONG nobody asked for (the client never pings). */
    keepalive(&ev, 2);
    /* Then a real event. */
    ev_lifecycle(&ev, &DOM_TEST, 3, 0);
    step_send(&s, &ev);
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, &s, &seen);
    if (conn) {
        go_deliver(&f, conn, &seen, 1);
        CHECK_CONTAINS(seen.xml[0], STATES("running", "paused"));
        /* Still up: an emit works and is delivered. */
        CHECK(virConnectEmitEvent(conn, "<event type=\"probe\"/>") > 0);
        CHECK_INT(virDeliverEvents(conn), 1);
        CHECK_INT(seen.count, 2);
        CHECK(is_type(seen.xml[1], "probe"));
        CHECK_INT(virDeliverEvents(conn), 0);
        CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    }
    /* No answer to the daemon's CALL or PONG. */
    CHECK_STR(fake_close(&f, conn), OPEN_SEQ " " CLOSE_SEQ);
    seen_clear(&seen);
    case_end("unknown procedures and stray packets are skipped");
}

/* A PING is answered with a PONG, during delivery, and events around it are
 * delivered. */
static void keepalive_answered(void)
{
    case_begin();
    Script s;
    script_init(&s);
    Buf ping = {0}, mixed = {0};
    keepalive(&ping, 1);
    ev_lifecycle(&mixed, &DOM_TEST, 3, 0);
    keepalive(&mixed, 1);
    ev_lifecycle(&mixed, &DOM_TEST, 4, 0);
    step_send(&s, &ping);
    step_wait(&s);
    step_send(&s, &mixed);
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, &s, &seen);
    if (conn) {
        go_no_event(&f, conn, &seen);
        CHECK_INT(readable(virConnectGetEventFD(conn), 0), 0);
        go_deliver(&f, conn, &seen, 2);
        CHECK_CONTAINS(seen.xml[1], "<reason>resumed-unpaused</reason>");
    }
    CHECK_STR(fake_close(&f, conn), OPEN_SEQ " K2 K2 " CLOSE_SEQ);
    check_calls(&f);
    /* The PONG, byte for byte: 0000001c 6b656570 00000001 00000002 00000002 00000000 00000000. */
    int pongs = 0;
    for (int i = 0; i < f.nrecs; i++) {
        const WireRec *r = &f.recs[i];
        if (r->prog == PROG_KEEPALIVE && r->len == 28 && r->vers == 1 && r->proc == 2 && r->type == T_MESSAGE &&
            r->serial == 0 && r->status == 0)
            pongs++;
    }
    CHECK_INT(pongs, 2);
    seen_clear(&seen);
    case_end("keepalive PING answered with PONG");
}

/* A packet arriving in pieces: nothing until it is whole; the descriptor is
 * readable while bytes wait in the socket, not for a partial packet held. */
static void partial_packets(void)
{
    case_begin();
    Script s;
    script_init(&s);
    Buf a = {0}, b = {0};
    ev_lifecycle(&a, &DOM_TEST, 3, 0); /* 68 bytes */
    ev_lifecycle(&b, &DOM_TEST, 4, 0);
    ev_lifecycle(&b, &DOM_TEST, 3, 0);
    size_t one = a.len;
    CHECK_INT(one, 68);
    /* 2 bytes of the length word; then to the middle of the header; then the
     * rest, a whole packet and 10 bytes of a third; then the rest. */
    step_send_part(&s, &a, 0, 2);
    step_wait(&s);
    step_send_part(&s, &a, 2, 18);
    step_wait(&s);
    step_send_part(&s, &a, 20, one - 20);
    step_send_part(&s, &b, 0, one + 10);
    step_wait(&s);
    step_send_part(&s, &b, one + 10, one - 10);
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, &s, &seen);
    if (conn) {
        for (int piece = 0; piece < 2; piece++) {
            go_no_event(&f, conn, &seen);
            CHECK_INT(readable(virConnectGetEventFD(conn), 0), 0);
        }
        go_deliver(&f, conn, &seen, 2);
        sleep_ms(50);
        CHECK_INT(virDeliverEvents(conn), 0);
        CHECK_INT(seen.count, 2);
        go_deliver(&f, conn, &seen, 3);
        if (seen.count == 3) {
            CHECK_CONTAINS(seen.xml[0], STATES("running", "paused"));
            CHECK_CONTAINS(seen.xml[1], STATES("paused", "running"));
            CHECK_CONTAINS(seen.xml[2], STATES("running", "paused"));
        }
    }
    CHECK_STR(fake_close(&f, conn), OPEN_SEQ " " CLOSE_SEQ);
    seen_clear(&seen);
    case_end("partial packets wait for their rest");
}

/* More than one delivery reads (256 KiB): the descriptor stays readable, and
 * every event arrives, in order. */
typedef struct {
    int count;
    int bad;
} Flood;

static void flood_handler(virConnectPtr conn, const char *eventXML, void *arg)
{
    Flood *fl = arg;
    (void)conn;
    const char *want = fl->count % 2 == 0 ? STATES("running", "paused") "<reason>suspended-paused</reason>"
                                          : STATES("paused", "running") "<reason>resumed-unpaused</reason>";
    if (!strstr(eventXML, want))
        fl->bad++;
    fl->count++;
}

static void flood(void)
{
    case_begin();
    enum { PAIRS = 2100 }; /* 4200 events of 68 bytes: 285600 bytes */
    Script s;
    script_init(&s);
    Buf pair = {0};
    ev_lifecycle(&pair, &DOM_TEST, 3, 0);
    ev_lifecycle(&pair, &DOM_TEST, 4, 0);
    step_send(&s, &pair);
    s.steps[0].repeat = PAIRS;
    Fake f;
    virConnectPtr conn = fake_open(&f, &s, NULL);
    if (conn) {
        Flood fl = {0};
        CHECK(virConnectAddEventHandler(conn, NULL, flood_handler, &fl) >= 0);
        fake_go(&f);
        int wakes = 0, failures = 0;
        int fd = virConnectGetEventFD(conn);
        long long deadline = now_ms() + 8000;
        while (fl.count < 2 * PAIRS && now_ms() < deadline) {
            if (!readable(fd, 1000))
                continue;
            wakes++;
            if (virDeliverEvents(conn) < 0)
                failures++;
        }
        CHECK_INT(failures, 0);
        CHECK_INT(fl.count, 2 * PAIRS);
        CHECK_INT(fl.bad, 0);
        CHECK(wakes >= 2);
    }
    CHECK_STR(fake_close(&f, conn), OPEN_SEQ " " CLOSE_SEQ);
    case_end("a flood of events over several deliveries");
}

/* ---- the connection lost ------------------------------------------------------ */

/* After the loss: the error, and every call that needs the link fails with it;
 * the descriptor polls readable for good; close returns 0. */
static void check_lost(virConnectPtr conn, int code, const char *part)
{
    CHECK_INT(virDeliverEvents(conn), -1);
    CHECK_ERROR(code, part);
    CHECK_INT(virDeliverEvents(conn), -1);
    CHECK_ERROR(code, part);
    CHECK_INT(virConnectEmitEvent(conn, "<event type=\"x\"/>"), -1);
    CHECK_ERROR(code, part);
    Seen other = {0};
    CHECK_INT(virConnectAddEventHandler(conn, NULL, seen_handler, &other), -1);
    CHECK_ERROR(code, part);
    int fd = virConnectGetEventFD(conn);
    CHECK(fd >= 0);
    CHECK_INT(readable(fd, 0), 1);
    CHECK_INT(virConnectClose(conn), 0);
    CHECK_INT(other.count, 0);
}

/* The daemon's script `s` makes the connection lost with `reason` after one
 * event: handlers get that event, then connection-closed, nothing more even
 * given time; every call then fails with `code` naming `part`. Returns the
 * daemon's trace. */
static const char *lost_after_event(const Script *s, const char *reason, int code, const char *part)
{
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, s, &seen);
    if (conn) {
        go_deliver(&f, conn, &seen, 2);
        sleep_ms(30);
        CHECK_INT(seen.count, 2);
        if (seen.count == 2) {
            CHECK(is_type(seen.xml[0], "domain-state-transition"));
            check_closed(seen.xml[1], reason);
            CHECK(seq_of(seen.xml[1]) > seq_of(seen.xml[0]));
        }
        check_lost(conn, code, part);
    }
    seen_clear(&seen);
    return fake_close(&f, NULL);
}

/* `bad` follows a good event in one write, and a good event follows it:
 * handlers get the first event, then connection-closed (error), nothing more:
 * the good event after the bad packet is never decoded. */
static void lost_on(const char *what, const Buf *bad, const char *part)
{
    case_begin();
    Script s;
    script_init(&s);
    static Buf all;
    memset(&all, 0, sizeof all);
    ev_lifecycle(&all, &DOM_TEST, 3, 0);
    put_bytes(&all, bad->data, bad->len);
    ev_lifecycle(&all, &DOM_TEST, 4, 0);
    step_send(&s, &all);
    /* The socket was shut: no goodbye. */
    CHECK_STR(lost_after_event(&s, "error", VIR_ERR_RPC, part), OPEN_SEQ " EOF");
    case_end(what);
}

static void lost_on_bad_packets(void)
{
    static const uint32_t lengths[] = {3, 27, 0x7fffffff, 0x02000005};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        Buf bad = {0};
        put_u32(&bad, lengths[i]);
        for (int k = 0; k < 6; k++)
            put_u32(&bad, 0);
        char part[64], what[64];
        snprintf(part, sizeof part, "bad packet length %" PRIu32, lengths[i]);
        snprintf(what, sizeof what, "length word %" PRIu32, lengths[i]);
        lost_on(what, &bad, part);
    }

    /* A lifecycle body cut before its detail. */
    Buf bad = {0};
    ev_lifecycle_cut(&bad);
    lost_on("lifecycle body without its detail", &bad, "bad body for event procedure 318");

    /* An I/O error whose path says it is longer than the body. */
    memset(&bad, 0, sizeof bad);
    ev_begin(&bad, 322, 4, &DOM_TEST);
    put_u32(&bad, 1000);
    put_bytes(&bad, "/dev/sda", 8);
    pkt_end(&bad);
    lost_on("io-error with a string past the body", &bad, "bad body for event procedure 322");

    /* A metadata change with an optional marker that is neither 0 nor 1. */
    memset(&bad, 0, sizeof bad);
    ev_begin(&bad, 379, 23, &DOM_TEST);
    put_i32(&bad, 2);
    put_u32(&bad, 2);
    pkt_end(&bad);
    lost_on("metadata-change with optional marker 2", &bad, "bad body for event procedure 379");
}

/* The daemon hangs up at a packet boundary, after an event. */
static void lost_on_eof(void)
{
    case_begin();
    Script s;
    script_init(&s);
    Buf ev = {0};
    ev_lifecycle(&ev, &DOM_TEST, 3, 0);
    step_send(&s, &ev);
    step_hangup(&s);
    CHECK_STR(lost_after_event(&s, "eof", VIR_ERR_NO_CONNECT, "end of file"), OPEN_SEQ " HANGUP");
    case_end("end of file after an event");
}

/* Part of a packet, then end of file. The length word is the largest allowed
 * (32 MiB past itself): it waits for its bytes, it is no error. */
static void lost_in_partial(void)
{
    case_begin();
    Script s;
    script_init(&s);
    Buf part = {0};
    pkt_begin(&part, PROG_REMOTE, 318, T_MESSAGE, 1, 0);
    put_u32(&part, 0);
    unsigned char *p = part.data + part.mark;
    p[0] = 0x02, p[1] = 0, p[2] = 0, p[3] = 0x04;
    step_send(&s, &part);
    step_wait(&s);
    step_hangup(&s);
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, &s, &seen);
    if (conn) {
        go_no_event(&f, conn, &seen);
        go_deliver(&f, conn, &seen, 1);
        check_closed(seen.xml[0], "eof");
        check_lost(conn, VIR_ERR_NO_CONNECT, "in the middle of a packet");
    }
    CHECK_STR(fake_close(&f, NULL), OPEN_SEQ " HANGUP");
    seen_clear(&seen);
    case_end("end of file in the middle of a packet");
}

/* ---- closing ---------------------------------------------------------------- */

/* The daemon hangs up instead of replying to CONNECT_CLOSE: close returns 0 at
 * once. */
static void close_without_reply(void)
{
    case_begin();
    Script s;
    script_init(&s);
    hook(&s, P_CLOSE, H_HANGUP, NULL, 0);
    Fake f;
    virConnectPtr conn = fake_open(&f, &s, NULL);
    if (conn) {
        long long t0 = now_ms();
        CHECK_INT(virConnectClose(conn), 0);
        CHECK(now_ms() - t0 < 2000);
    }
    CHECK_STR(fake_close(&f, NULL), OPEN_SEQ " 317 317 317 317 317 317 2 HANGUP");
    case_end("CONNECT_CLOSE answered by a hang-up");
}

/* A partial event is pending at close; the daemon sends its rest before the
 * first DEREGISTER reply. Close goes through; no handler runs. */
static void close_with_partial_pending(void)
{
    case_begin();
    Script s;
    script_init(&s);
    Buf ev = {0}, rest = {0};
    ev_lifecycle(&ev, &DOM_TEST, 3, 0);
    put_bytes(&rest, ev.data + 30, ev.len - 30);
    step_send_part(&s, &ev, 0, 30);
    step_wait(&s);
    hook(&s, P_DEREGISTER, H_BEFORE, &rest, 0);
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, &s, &seen);
    if (conn)
        go_no_event(&f, conn, &seen);
    CHECK_STR(fake_close(&f, conn), OPEN_SEQ " " CLOSE_SEQ);
    CHECK_INT(seen.count, 0);
    seen_clear(&seen);
    case_end("close with a partial event pending");
}

/* The daemon refuses the first DEREGISTER: closing goes on, the other
 * callbacks are still deregistered and CONNECT_CLOSE is still sent. */
static void close_after_deregister_error(void)
{
    case_begin();
    Script s;
    script_init(&s);
    s.deregister_error_first = 1;
    Fake f;
    CHECK_STR(open_close(&f, &s), OPEN_SEQ " " CLOSE_SEQ);
    case_end("close after a refused DEREGISTER");
}

int main(void)
{
    long long t0 = now_ms();
    open_close_sequence();
    open_name_of_uri();
    open_with_polkit();
    open_skips_unsupported_events();
    open_skips_vanished_domain();
    open_with_interleaved_packets();
    event_with_last_reply(0);
    event_with_last_reply(1);
    open_failures();
    events_decoded();
    events_filtered();
    events_skipped();
    keepalive_answered();
    partial_packets();
    flood();
    lost_on_bad_packets();
    lost_on_eof();
    lost_in_partial();
    close_without_reply();
    close_with_partial_pending();
    close_after_deregister_error();
    printf("remote protocol: %lld ms\n", now_ms() - t0);
    return check_done();
}
