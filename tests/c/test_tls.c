/* TLS to a real private libvirtd (daemon.h) with certificates made by the
 * test harness (tests/common/pki.rs, in the folder $VIREVENT_TEST_PKI:
 * ca/cacert.pem and the daemon's daemon.pem and daemon-key.pem for libvirtd;
 * pkipath= folders good/ (the CA, a client certificate and key), anonymous/
 * (the CA alone) and wrong-ca/ (another CA)). Events arrive as over a Unix
 * socket, with no thread and nothing leaked; each failure has its code and
 * cause; a server that never answers the handshake is given up at the open
 * deadline. */
#include "remote.h"

static const char *pki;

/* The URI of the daemon's TLS port with pkipath=PKI/folder. */
static void tls_uri(char *out, size_t size, const char *host, int port, const char *folder)
{
    snprintf(out, size, "test+tls://%s:%d/default?pkipath=%s/%s", host, port, pki, folder);
}

static void events_over_tls(void)
{
    case_begin();
    Daemon d;
    daemon_start_full(&d, 0, pki, NULL);
    int threads = count_threads(), fds = count_fds();
    const char *hosts[] = {"127.0.0.1", "localhost"};
    for (int h = 0; h < 2; h++) {
        char uri[512];
        tls_uri(uri, sizeof uri, hosts[h], d.tls_port, "good");
        virConnectPtr conn = suspend_resume_over(&d, uri, threads);
        if (!conn)
            continue;
        CHECK_INT(virConnectClose(conn), 0);
        CHECK_INT(count_fds(), fds);
    }
    case_close(&d, "tls: by address and by name, the same events, no thread, nothing leaked");
}

/* Opening `folder`'s URI fails with `code` and `part`, leaving no descriptor. */
static void refused(const Daemon *d, const char *folder, int code, const char *part)
{
    char uri[512];
    tls_uri(uri, sizeof uri, "127.0.0.1", d->tls_port, folder);
    int threads = count_threads(), fds = count_fds();
    CHECK(virConnectOpen(uri) == NULL);
    CHECK_ERROR(code, part);
    CHECK_INT(count_fds(), fds);
    CHECK_INT(count_threads(), threads);
}

static void failures(void)
{
    case_begin();
    Daemon d;
    daemon_start_full(&d, 0, pki, NULL);
    char want[512];
    snprintf(want, sizeof want, "cannot connect to the libvirt daemon at '127.0.0.1:%d': TLS: the daemon refused our certificate",
             d.tls_port);
    refused(&d, "anonymous", VIR_ERR_AUTH_FAILED, want);
    snprintf(want, sizeof want, "is not signed by the CA in '%s/wrong-ca/cacert.pem' (unknown CA)", pki);
    refused(&d, "wrong-ca", VIR_ERR_NO_CONNECT, want);
    snprintf(want, sizeof want, "cannot read the CA certificate '%s/nowhere/cacert.pem': No such file or directory", pki);
    refused(&d, "nowhere", VIR_ERR_NO_CONNECT, want);
    case_close(&d, "tls: a refused certificate is AUTH_FAILED, an unknown CA or a missing file NO_CONNECT");
}

/* A listener that never accepts: the TCP connect completes in its backlog,
 * and the handshake gets no answer until the open's deadline. */
static void handshake_timeout(void)
{
    case_begin();
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    CHECK_INT(bind(listener, (struct sockaddr *)&addr, len), 0);
    CHECK_INT(listen(listener, 4), 0);
    CHECK_INT(getsockname(listener, (struct sockaddr *)&addr, &len), 0);
    char uri[512];
    tls_uri(uri, sizeof uri, "127.0.0.1", ntohs(addr.sin_port), "good");
    int fds = count_fds();
    long long start = now_ms();
    CHECK(virConnectOpen(uri) == NULL);
    long long took = now_ms() - start;
    CHECK_ERROR(VIR_ERR_NO_CONNECT, "TLS: the handshake timed out");
    CHECK(took >= 29000 && took < 45000);
    CHECK_INT(count_fds(), fds);
    printf("a silent server: the handshake given up after %lld ms\n", took);
    close(listener);
    case_end("tls: a server that never answers the handshake is given up at the open deadline");
}

int main(void)
{
    pki = getenv("VIREVENT_TEST_PKI");
    if (!pki) {
        fprintf(stderr, "VIREVENT_TEST_PKI is not set: run this test with cargo test --test c_programs\n");
        return 2;
    }
    RUN(events_over_tls());
    RUN(failures());
    RUN(handshake_timeout());
    return check_done();
}
