/* SASL to a real private libvirtd (daemon.h) that wants it on TCP, with the
 * private SASL configuration the harness made in $VIREVENT_TEST_SASL
 * (tests/common/sasl.rs: user alice, password "s3cret pass", DIGEST-MD5 the
 * one mechanism with a security layer). virConnectOpenAuth takes the
 * credentials from a libvirt-style callback and from an auth.conf; events
 * flow through the security layer with no thread added and nothing leaked;
 * each failure has its code and cause, and no password in its message. */
#include <stdlib.h>

#include "remote.h"

static const char *sasl_dir;

/* What the callback answers, and how it was called. */
typedef struct {
    const char *authname;
    const char *password;
    int fail;
    int calls;
    int asked[16];
    int nasked;
} Answers;

static char *copy(const char *s)
{
    char *out = malloc(strlen(s) + 1);
    strcpy(out, s);
    return out;
}

static int answer(virConnectCredentialPtr cred, unsigned int ncred, void *cbdata)
{
    Answers *a = cbdata;
    a->calls++;
    if (a->fail)
        return -1;
    for (unsigned int i = 0; i < ncred; i++) {
        if (a->nasked < 16)
            a->asked[a->nasked++] = cred[i].type;
        CHECK(cred[i].prompt != NULL);
        const char *value = cred[i].type == VIR_CRED_AUTHNAME ? a->authname
                            : cred[i].type == VIR_CRED_PASSPHRASE ? a->password
                                                                  : NULL;
        if (value) {
            cred[i].result = copy(value);
            cred[i].resultlen = strlen(value);
        }
    }
    return 0;
}

static int types[] = {VIR_CRED_AUTHNAME, VIR_CRED_PASSPHRASE};

static void sasl_daemon(Daemon *d)
{
    setenv("SASL_CONF_PATH", sasl_dir, 1);
    daemon_start_full(d, 1, NULL, "auth_tcp = \"sasl\"\n");
}

static void tcp_uri(char *out, size_t size, const Daemon *d, const char *more)
{
    snprintf(out, size, "test+tcp://127.0.0.1:%d/default%s", d->tcp_port, more);
}

static void events_after_the_callback(void)
{
    case_begin();
    Daemon d;
    sasl_daemon(&d);
    char uri[512];
    tcp_uri(uri, sizeof uri, &d, "");
    int threads = count_threads(), fds = count_fds();
    Answers a = {.authname = "alice", .password = "s3cret pass"};
    virConnectAuth auth = {types, 2, answer, &a};
    virConnectPtr conn = virConnectOpenAuth(uri, &auth, VIR_CONNECT_RO);
    CHECK(conn != NULL);
    if (conn) {
        /* One call for both credentials, DIGEST-MD5's. */
        CHECK_INT(a.calls, 1);
        CHECK_INT(a.nasked, 2);
        CHECK_INT(a.asked[0], VIR_CRED_AUTHNAME);
        CHECK_INT(a.asked[1], VIR_CRED_PASSPHRASE);
        CHECK_INT(count_threads(), threads);
        Seen seen = {0};
        int id = virConnectAddEventHandler(conn, NULL, seen_handler, &seen);
        step(&d, conn, &seen, "suspend test");
        step(&d, conn, &seen, "resume test");
        if (seen.count == 2) {
            EXPECT_TRANSITION(seen.xml[0], 1, 1, "test", TEST_UUID, "running", "paused", "suspended-paused");
            EXPECT_TRANSITION(seen.xml[1], 2, 1, "test", TEST_UUID, "paused", "running", "resumed-unpaused");
        }
        CHECK_INT(virConnectRemoveEventHandler(conn, id), 0);
        seen_clear(&seen);
        CHECK_INT(virConnectClose(conn), 0);
    } else {
        fprintf(stderr, "  cannot open %s: %d %s\n", uri, virGetLastErrorCode(), virGetLastErrorMessage());
    }
    CHECK_INT(count_fds(), fds);
    CHECK_INT(count_threads(), threads);
    case_close(&d, "sasl: DIGEST-MD5 over TCP with the callback's credentials, events through the security layer");
}

/* auth.conf answers the name; the callback only what is left, the password. */
static void auth_conf_first(void)
{
    case_begin();
    Daemon d;
    sasl_daemon(&d);
    char path[512], uri[1024];
    snprintf(path, sizeof path, "%s/name-only.conf", sasl_dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "[credentials-x]\nauthname=alice\n[auth-libvirt-127.0.0.1]\ncredentials=x\n");
    fclose(f);
    char more[600];
    snprintf(more, sizeof more, "?authfile=%s", path);
    tcp_uri(uri, sizeof uri, &d, more);
    Answers a = {.authname = "mallory", .password = "s3cret pass"};
    virConnectAuth auth = {types, 2, answer, &a};
    virConnectPtr conn = virConnectOpenAuth(uri, &auth, 0);
    CHECK(conn != NULL);
    CHECK_INT(a.nasked, 1);
    CHECK_INT(a.asked[0], VIR_CRED_PASSPHRASE);
    if (conn)
        CHECK_INT(virConnectClose(conn), 0);
    /* Without a callback, the missing password is named with the host. */
    CHECK(virConnectOpenAuth(uri, NULL, 0) == NULL);
    CHECK_ERROR(VIR_ERR_AUTH_FAILED, "authentication to '127.0.0.1' needs VIR_CRED_PASSPHRASE");
    CHECK_CONTAINS(virGetLastErrorMessage(), path);
    case_close(&d, "sasl: auth.conf answers first, the callback the rest");
}

static void failures(void)
{
    case_begin();
    Daemon d;
    sasl_daemon(&d);
    char uri[512];
    tcp_uri(uri, sizeof uri, &d, "");
    int fds = count_fds();
    Answers wrong = {.authname = "alice", .password = "not it"};
    virConnectAuth auth = {types, 2, answer, &wrong};
    CHECK(virConnectOpenAuth(uri, &auth, 0) == NULL);
    CHECK_ERROR(VIR_ERR_AUTH_FAILED, "refused the connection: authentication failed");
    CHECK(strstr(virGetLastErrorMessage(), "not it") == NULL);
    Answers failing = {.fail = 1};
    auth.cbdata = &failing;
    CHECK(virConnectOpenAuth(uri, &auth, 0) == NULL);
    CHECK_ERROR(VIR_ERR_AUTH_FAILED, "the authentication callback failed to collect the credentials for '127.0.0.1'");
    /* A callback that takes no password, and no auth.conf. */
    Answers nameonly = {.authname = "alice"};
    int name_only[] = {VIR_CRED_AUTHNAME};
    virConnectAuth partial = {name_only, 1, answer, &nameonly};
    setenv("LIBVIRT_AUTH_FILE", "/nonexistent/auth.conf", 1);
    CHECK(virConnectOpenAuth(uri, &partial, 0) == NULL);
    CHECK_ERROR(VIR_ERR_AUTH_FAILED, "cannot read the credentials file '/nonexistent/auth.conf'");
    unsetenv("LIBVIRT_AUTH_FILE");
    CHECK(virConnectOpenAuth(uri, &auth, 4) == NULL);
    CHECK_ERROR(VIR_ERR_INVALID_ARG, "unsupported flags 0x4");
    char plain[600];
    tcp_uri(plain, sizeof plain, &d, "?auth=sasl.PLAIN");
    CHECK(virConnectOpenAuth(plain, &auth, 0) == NULL);
    CHECK_ERROR(VIR_ERR_AUTH_FAILED, "SASL mechanism 'PLAIN' is not offered");
    /* virConnectOpen has no callback: auth.conf or nothing. */
    CHECK(virConnectOpen(uri) == NULL);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_AUTH_FAILED);
    CHECK_INT(count_fds(), fds);
    case_close(&d, "sasl: a wrong password, a failing callback, a missing credential, bad flags, a refused mechanism");
}

/* libvirt's default callback asks on the controlling terminal: a process
 * that has none (a new session) gets a clear failure, not a hang. */
static void default_callback_without_a_terminal(void)
{
    case_begin();
    Daemon d;
    sasl_daemon(&d);
    char uri[512];
    tcp_uri(uri, sizeof uri, &d, "");
    Forked f;
    if (fork_child(&f) == 0) {
        setsid();
        virConnectPtr conn = virConnectOpenAuth(uri, virConnectAuthPtrDefault, 0);
        int ok = conn == NULL && virGetLastErrorCode() == VIR_ERR_AUTH_FAILED
                 && strstr(virGetLastErrorMessage(), "the authentication callback failed") != NULL;
        if (!ok)
            fprintf(stderr, "  without a terminal: %p %d %s\n", (void *)conn, virGetLastErrorCode(), virGetLastErrorMessage());
        child_exit(&f, ok ? 0 : 1);
    }
    CHECK_INT(child_result(&f, 30000), 0);
    case_close(&d, "sasl: virConnectAuthPtrDefault with no terminal fails the open with AUTH_FAILED");
}

int main(void)
{
    sasl_dir = getenv("VIREVENT_TEST_SASL");
    if (!sasl_dir) {
        fprintf(stderr, "VIREVENT_TEST_SASL is not set: run this test with cargo test --test c_programs\n");
        return 2;
    }
    /* No auth.conf of the machine's may answer. */
    setenv("XDG_CONFIG_HOME", sasl_dir, 1);
    RUN(events_after_the_callback());
    RUN(auth_conf_first());
    RUN(failures());
    RUN(default_callback_without_a_terminal());
    return check_done();
}
