/* The ssh transport from C, against a real private libvirtd (daemon.h)
 * behind a private sshd that the test harness runs (tests/common/sshd.rs;
 * $VIREVENT_TEST_SSHD is its folder: client_key, stranger_key, known_hosts;
 * $VIREVENT_TEST_SSHD_PORT its port). Events arrive with no thread added, the
 * ssh child is this process's only child while open and is reaped at close,
 * no descriptor is left; a refused key is VIR_ERR_NO_CONNECT with ssh's
 * words; +libssh2 is VIR_ERR_NO_SUPPORT naming +ssh. */
#include "remote.h"

static const char *sshd;
static const char *port;

static void ssh_uri(char *out, size_t size, const Daemon *d, const char *key)
{
    snprintf(out, size,
             "test+ssh://root@127.0.0.1:%s/default?socket=%s&keyfile=%s/%s&known_hosts=%s/known_hosts&no_tty=1", port,
             d->sock, sshd, key, sshd);
}

/* How many children this process has (/proc's list of the main thread's). */
static int count_children(void)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0;
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = '\0';
    for (char *p = strtok(buf, " \n"); p; p = strtok(NULL, " \n"))
        n++;
    return n;
}

static void events_over_ssh(void)
{
    case_begin();
    Daemon d;
    daemon_start(&d);
    int threads = count_threads(), fds = count_fds(), children = count_children();
    char uri[1024];
    ssh_uri(uri, sizeof uri, &d, "client_key");
    virConnectPtr conn = suspend_resume_over(&d, uri, threads);
    if (conn) {
        CHECK_INT(count_children(), children + 1);
        CHECK_INT(virConnectClose(conn), 0);
    }
    CHECK_INT(count_children(), children);
    CHECK_INT(count_fds(), fds);
    case_close(&d, "ssh: the same events, no thread, the ssh child reaped at close, nothing leaked");
}

static void refusals(void)
{
    case_begin();
    Daemon d;
    daemon_start(&d);
    int fds = count_fds(), children = count_children();
    char uri[1024];
    ssh_uri(uri, sizeof uri, &d, "stranger_key");
    CHECK(virConnectOpen(uri) == NULL);
    CHECK_ERROR(VIR_ERR_NO_CONNECT, "ssh said: ");
    CHECK_ERROR(VIR_ERR_NO_CONNECT, "Permission denied (publickey)");
    CHECK_INT(count_children(), children);
    CHECK_INT(count_fds(), fds);
    CHECK(virConnectOpen("test+libssh2://127.0.0.1/default") == NULL);
    CHECK_ERROR(VIR_ERR_NO_SUPPORT, "use '+ssh', the system's ssh");
    case_close(&d, "ssh: a refused key says what ssh said, nothing left behind; +libssh2 points at +ssh");
}

int main(void)
{
    sshd = getenv("VIREVENT_TEST_SSHD");
    port = getenv("VIREVENT_TEST_SSHD_PORT");
    if (!sshd || !port) {
        fprintf(stderr, "VIREVENT_TEST_SSHD(_PORT) not set: run this test with cargo test --test c_programs\n");
        return 2;
    }
    RUN(events_over_ssh());
    RUN(refusals());
    return check_done();
}
