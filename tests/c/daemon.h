/* A private libvirt daemon for virevent's C tests (docs/protocol.md section 12):
 * libvirtd with the test driver on a socket in its own temporary folder, and
 * virsh to drive its domains. Needs Debian's libvirt-daemon and libvirt-clients
 * (.ci/run installs them) and root, as CI has. */
#ifndef VIREVENT_DAEMON_H
#define VIREVENT_DAEMON_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

typedef struct {
    char dir[128];  /* the daemon's folder: config, sockets, log */
    char sock[192]; /* its read-write socket */
    char uri[256];  /* test+unix:///default?socket=SOCK */
    int tcp_port;   /* where it also listens on 127.0.0.1 for TCP (auth none), or 0 */
    int tls_port;   /* where it also listens on 127.0.0.1 for TLS, or 0 */
    pid_t pid;      /* 0 once it has ended */
    int listens;    /* whether it was started with --listen (TCP or TLS) */
} Daemon;

/* A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick). */
static inline int free_tcp_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Whether a connection to the Unix socket at `path` goes through. */
static inline int socket_accepts(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof addr.sun_path)
        return 0;
    memcpy(addr.sun_path, path, len + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Whether a TCP connection to 127.0.0.1 at `port` goes through. */
static inline int tcp_accepts(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Whether `command` is an executable file in a folder of PATH (the tests
 * look tools up on PATH only, as cargo test's tools.rs does). */
static inline int on_path(const char *command)
{
    const char *path = getenv("PATH");
    char dir[4096], file[4352];
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(dir, sizeof dir, "%.*s", (int)n, path);
        snprintf(file, sizeof file, "%s/%s", n ? dir : ".", command);
        if (access(file, X_OK) == 0)
            return 1;
        path += n + (path[n] == ':');
    }
    return 0;
}

/* Ends the test at once when `command` is not on PATH. */
static inline void need_command(const char *command, const char *package)
{
    if (!on_path(command)) {
        fprintf(stderr, "%s not found (apt-get install %s)\n", command, package);
        exit(2);
    }
}

/* Removes the daemon's folder and what is in it. */
static inline void daemon_remove_dir(Daemon *d)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", d->dir);
}

/* Shows the daemon's log on stderr. */
static inline void daemon_show_log(const Daemon *d)
{
    char path[256], line[512];
    snprintf(path, sizeof path, "%s/log", d->dir);
    FILE *log = fopen(path, "r");
    while (log && fgets(line, sizeof line, log))
        fprintf(stderr, "  libvirtd: %s", line);
    if (log)
        fclose(log);
}

/* Runs libvirtd with the folder's configuration and waits (up to 10 s) until
 * its sockets accept; exits the test when it cannot, saying why, with the
 * folder removed. daemon_start_full calls it first, daemon_restart again. */
static inline void daemon_spawn(Daemon *d)
{
    char path[256];
    snprintf(path, sizeof path, "%s/libvirtd.conf", d->dir);
    d->pid = fork();
    if (d->pid == 0) {
        char drivers[256], log[256], pidfile[256];
        snprintf(drivers, sizeof drivers, "%s/drivers", d->dir);
        snprintf(log, sizeof log, "%s/log", d->dir);
        snprintf(pidfile, sizeof pidfile, "%s/pid", d->dir);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        /* An empty driver folder keeps the QEMU driver from loading; the test
         * driver is built in. */
        setenv("LIBVIRT_DRIVER_DIR", drivers, 1);
        if (d->listens)
            execlp("libvirtd", "libvirtd", "--listen", "--config", path, "--pid-file", pidfile, (char *)NULL);
        else
            execlp("libvirtd", "libvirtd", "--config", path, "--pid-file", pidfile, (char *)NULL);
        _exit(127);
    }
    /* The socket file appears when it is bound, a moment before it listens:
     * wait until a connection goes through. */
    for (int i = 0; i < 1000; i++) {
        if (socket_accepts(d->sock) && (!d->tcp_port || tcp_accepts(d->tcp_port))
            && (!d->tls_port || tcp_accepts(d->tls_port)))
            return;
        int status;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            if (WIFEXITED(status))
                fprintf(stderr, "libvirtd ended at start with exit code %d%s; its log:\n", WEXITSTATUS(status),
                        WEXITSTATUS(status) == 127 ? " (it could not be run)" : "");
            else
                fprintf(stderr, "libvirtd was ended at start by signal %d; its log:\n", WTERMSIG(status));
            daemon_show_log(d);
            daemon_remove_dir(d);
            exit(2);
        }
        sleep_ms(10);
    }
    fprintf(stderr, "libvirtd made no socket at %s within 10 s; its log:\n", d->sock);
    daemon_show_log(d);
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    daemon_remove_dir(d);
    exit(2);
}

/* Starts a daemon in a new folder and waits (up to 10 s) for its socket; exits
 * the test when it cannot, saying why, with its folder removed. With `tcp`, it
 * also listens for TCP on 127.0.0.1 at a free port (d->tcp_port); with `pki`
 * (a folder of tests/common/pki.rs: ca/cacert.pem, daemon.pem,
 * daemon-key.pem), for TLS at another (d->tls_port); `extra` (or NULL) is
 * more of its libvirtd.conf. */
static inline void daemon_start_full(Daemon *d, int tcp, const char *pki, const char *extra)
{
    need_command("libvirtd", "libvirt-daemon");
    need_command("virsh", "libvirt-clients");
    snprintf(d->dir, sizeof d->dir, "/tmp/virevent-daemon-XXXXXX");
    if (!mkdtemp(d->dir)) {
        perror("mkdtemp");
        exit(2);
    }
    char path[256];
    snprintf(path, sizeof path, "%s/drivers", d->dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/libvirtd.conf", d->dir);
    FILE *conf = fopen(path, "w");
    if (!conf) {
        perror(path);
        exit(2);
    }
    fprintf(conf, "unix_sock_dir = \"%s\"\nunix_sock_rw_perms = \"0770\"\n"
                  "auth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n", d->dir);
    if (extra)
        fputs(extra, conf);
    tcp = tcp || pki;
    d->tcp_port = tcp ? free_tcp_port() : 0;
    d->tls_port = 0;
    if (pki) {
        do
            d->tls_port = free_tcp_port();
        while (d->tls_port == d->tcp_port);
        fprintf(conf, "tls_port = \"%d\"\nkey_file = \"%s/daemon-key.pem\"\ncert_file = \"%s/daemon.pem\"\n"
                      "ca_file = \"%s/ca/cacert.pem\"\n", d->tls_port, pki, pki, pki);
    }
    if (d->tcp_port)
        fprintf(conf, "listen_tls = %d\nlisten_tcp = 1\nlisten_addr = \"127.0.0.1\"\ntcp_port = \"%d\"\n%s",
                pki != NULL, d->tcp_port, extra && strstr(extra, "auth_tcp") ? "" : "auth_tcp = \"none\"\n");
    fclose(conf);
    snprintf(d->sock, sizeof d->sock, "%s/libvirt-sock", d->dir);
    snprintf(d->uri, sizeof d->uri, "test+unix:///default?socket=%s", d->sock);

    d->listens = tcp;
    daemon_spawn(d);
}

/* daemon_start_full without TLS. */
static inline void daemon_start_with(Daemon *d, int tcp, const char *extra)
{
    daemon_start_full(d, tcp, NULL, extra);
}

/* Starts a daemon on its Unix socket only (daemon_start_with). */
static inline void daemon_start(Daemon *d)
{
    daemon_start_with(d, 0, NULL);
}

/* Sends `sig` to the daemon and reaps it. */
static inline void daemon_kill(Daemon *d, int sig)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, sig);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
}

/* Starts the daemon again in its folder, with its configuration and
 * sockets, once it has ended (daemon_kill). */
static inline void daemon_restart(Daemon *d)
{
    if (d->pid == 0)
        daemon_spawn(d);
}

/* Stops the daemon if it runs and removes its folder. */
static inline void daemon_stop(Daemon *d)
{
    daemon_kill(d, SIGTERM);
    daemon_remove_dir(d);
}

/* Runs `virsh -c URI ARGS...` (ARGS as printf makes them, passed to the shell),
 * its output discarded; returns its exit status (0 on success). */
static inline int virsh(const Daemon *d, const char *fmt, ...)
{
    char args[1024], cmd[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "virsh -q -c '%s' %s >/dev/null 2>&1", d->uri, args);
    int status = system(cmd);
    /* The shell's "command not found": every later step would wait in vain. */
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        fprintf(stderr, "virsh not found (apt-get install libvirt-clients)\n");
        exit(2);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Waits up to `ms` for `fd` to be readable; returns whether it is. */
static inline int readable_within(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) > 0;
}

#endif
