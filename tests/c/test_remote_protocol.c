/* The libvirt remote-protocol client against the scripted fake daemon of
 * fake_daemon.h: the exact call sequences of open and close, every open
 * failure, every event layout, and what a real daemon never sends (bad
 * lengths, truncated bodies, unknown procedures, partial packets, replies
 * nobody asked for). */
#include "backlog.h"
#include "fake_daemon.h"

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
    /* AUTH_LIST, CONNECT_OPEN, SUPPORTS_FEATURE(keepalive), 37 registrations,
     * the listing, one state; 37 deregistrations and CONNECT_CLOSE. */
    CHECK_INT(check_calls(&f), 80);
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
    CHECK_STR(open_close(&f, &s), "66 70 1 60 " REGISTER_SEQ " 273 212 " CLOSE_SEQ);
    CHECK_INT(check_calls(&f), 81);
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
    CHECK_STR(open_close(&f, &s), OPEN_SEQ " 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 317 314 314 369 369 375 375 381 381 361 2 CLOSE");
    CHECK_STR(int_args(&f, P_DEREGISTER), "100 107 114 128 135 142 149 156 163 170 177 184 191 198 205 212 219 226 233 240 247 254 268 275 282 289");
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
    CHECK_STR(fake_close(&f, conn), "66 1 60 " REGISTER_SEQ " 273 212 212 212 " CLOSE_SEQ);
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
    CHECK_STR(fake_close(&f, conn), "66 K2 1 60 " REGISTER_SEQ " 273 212 " CLOSE_SEQ);
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

    /* SASL over a Unix socket: any mechanism will do, and it asks for a name
     * that neither a callback (there is none) nor an auth.conf gives. A
     * library built without SASL says so, before calling anything more. */
    script_init(&s);
    s.auth[0] = 1;
    Buf mechs = {0};
    put_str(&mechs, "SCRAM-SHA-256,PLAIN");
    hook(&s, P_AUTH_SASL_INIT, H_INSTEAD, &mechs, 0);
    setenv("XDG_CONFIG_HOME", "/nonexistent", 1);
    if (strcmp(getenv("VIREVENT_BUILT_WITH_SASL") ? getenv("VIREVENT_BUILT_WITH_SASL") : "1", "0") == 0)
        open_fails(&s, &(OpenFault){"AUTH_LIST [1]: SASL, in a build without it", VIR_ERR_NO_SUPPORT, 0,
                                    "this build of virevent was made without SASL", "66 EOF"});
    else
        open_fails(&s, &(OpenFault){"AUTH_LIST [1]: SASL, and no credentials", VIR_ERR_AUTH_FAILED, 0,
                                    "authentication to 'localhost' needs VIR_CRED_AUTHNAME", "66 67 EOF"});

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
                                "unsupported event ID 0", "66 1 60 316 EOF"});

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
                                "66 1 60 " REGISTER_SEQ " 273 EOF"});

    /* A truncated lifecycle event while waiting for a reply. */
    script_init(&s);
    memset(&bad, 0, sizeof bad);
    ev_lifecycle_cut(&bad);
    hook(&s, P_LIST_ALL, H_BEFORE, &bad, 0);
    open_fails(&s, &(OpenFault){"bad event body during open", VIR_ERR_RPC, 0, "bad body for event procedure 318",
                                "66 1 60 " REGISTER_SEQ " 273 EOF"});

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
    /* 454 (VCPU_REMOVED of libvirt 12.4), which this library does not know: a
     * body it could not decode. */
    pkt_begin(&ev, PROG_REMOTE, 454, T_MESSAGE, 1, 0);
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

/* An event MESSAGE of `proc` with callback id `callback`, up to its body. */
static void msg_begin(Buf *b, int proc, int callback)
{
    pkt_begin(b, PROG_REMOTE, proc, T_MESSAGE, 1, 0);
    put_i32(b, callback);
}

/* Networks, pools, node devices and secrets, whose callback ids repeat the
 * domains': each event is taken by its procedure and id together, and one
 * with an id this connection was not given is skipped. */
static void other_objects_routed(void)
{
    case_begin();
    Script s;
    script_init(&s);
    static Buf ev;
    memset(&ev, 0, sizeof ev);
    static const unsigned char uuid[16] = {0x66, 0x95, 0xeb, 0x01, 0xf6, 0xa4, 0x83, 0x04,
                                           0x79, 0xaa, 0x97, 0xf2, 0x50, 0x2e, 0x19, 0x3f};
    msg_begin(&ev, 315, callback_of(0)); /* network lifecycle: STARTED */
    put_str(&ev, "default");
    put_bytes(&ev, uuid, 16);
    put_i32(&ev, 2);
    put_i32(&ev, 0);
    pkt_end(&ev);
    msg_begin(&ev, 373, callback_of(0)); /* pool refresh, with the lifecycle's id: skipped */
    put_str(&ev, "p");
    put_bytes(&ev, uuid, 16);
    pkt_end(&ev);
    msg_begin(&ev, 373, callback_of(1)); /* pool refresh */
    put_str(&ev, "p");
    put_bytes(&ev, uuid, 16);
    pkt_end(&ev);
    msg_begin(&ev, 377, callback_of(1)); /* node device update */
    put_str(&ev, "net_lo");
    pkt_end(&ev);
    msg_begin(&ev, 382, callback_of(0)); /* secret lifecycle: DEFINED, usage ceph */
    put_bytes(&ev, uuid, 16);
    put_i32(&ev, 2);
    put_str(&ev, "client.admin");
    put_i32(&ev, 0);
    put_i32(&ev, 0);
    pkt_end(&ev);
    ev_begin(&ev, 346, 17, &DOM_TEST); /* tunable: one ullong */
    put_u32(&ev, 1);
    put_str(&ev, "cputune.cpu_shares");
    put_i32(&ev, 4);
    put_u32(&ev, 0);
    put_u32(&ev, 512);
    pkt_end(&ev);
    ev_begin(&ev, 328, 10, &DOM_TEST); /* tray-change: closed */
    put_str(&ev, "sata0-0-0");
    put_i32(&ev, 1);
    pkt_end(&ev);
    step_send(&s, &ev);
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, &s, &seen);
    if (conn) {
        go_deliver(&f, conn, &seen, 6);
        CHECK_INT(seen.count, 6);
        CHECK(is_type(seen.xml[0], "network-lifecycle"));
        CHECK_CONTAINS(seen.xml[0], "><network-name>default</network-name><network-uuid>6695eb01-f6a4-8304-79aa-97f2502e193f"
                                    "</network-uuid><lifecycle>started</lifecycle><detail>0</detail></event>");
        CHECK(is_type(seen.xml[1], "storage-pool-refresh"));
        CHECK_CONTAINS(seen.xml[1], "><pool-name>p</pool-name><pool-uuid>");
        CHECK(is_type(seen.xml[2], "node-device-update"));
        CHECK_CONTAINS(seen.xml[2], "><node-device-name>net_lo</node-device-name></event>");
        CHECK(is_type(seen.xml[3], "secret-lifecycle"));
        CHECK_CONTAINS(seen.xml[3], "<secret-usage-type>ceph</secret-usage-type><secret-usage-id>client.admin"
                                    "</secret-usage-id><lifecycle>defined</lifecycle>");
        CHECK(is_type(seen.xml[4], "domain-tunable"));
        CHECK_CONTAINS(seen.xml[4], TEST_IDENT "<param name=\"cputune.cpu_shares\" type=\"ullong\">512</param></event>");
        CHECK(is_type(seen.xml[5], "domain-tray-change"));
        CHECK_CONTAINS(seen.xml[5], TEST_IDENT "<dev-alias>sata0-0-0</dev-alias><reason>close</reason></event>");
        /* The XPath filters see the new kinds like any other. */
        CHECK_INT(virDeliverEvents(conn), 0);
        CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    }
    CHECK_STR(fake_close(&f, conn), OPEN_SEQ " " CLOSE_SEQ);
    seen_clear(&seen);
    case_end("other objects' events routed by procedure and callback id");
}

/* A daemon older than the other objects' events and the close callback: the
 * open goes on without them, and closing deregisters only what was made. */
static void older_daemon(void)
{
    case_begin();
    Script s;
    script_init(&s);
    s.objects_error = 39;
    s.close_callback_error = 39;
    s.register_error[27] = 1;
    Fake f;
    char dereg[512] = "";
    for (int i = 0; i < 27; i++)
        strcat(dereg, "317 ");
    char want[1024];
    snprintf(want, sizeof want, "66 1 60 " REGISTER_SEQ " 273 212 %s2 CLOSE", dereg);
    virConnectPtr conn = fake_open(&f, &s, NULL);
    if (conn) {
        /* The refused types, in registration order, for the program to see. */
        char **types = NULL;
        int n = virConnectListRefusedEventTypes(conn, &types, 0);
        CHECK_INT(n, 9);
        char joined[1024] = "";
        for (int i = 0; types && types[i]; i++) {
            strcat(joined, i ? " " : "");
            strcat(joined, types[i]);
            free(types[i]);
        }
        CHECK(types && types[n < 0 ? 0 : n] == NULL);
        free(types);
        CHECK_STR(joined, "domain-nic-mac-change network-lifecycle network-metadata-change "
                          "storage-pool-lifecycle storage-pool-refresh node-device-lifecycle "
                          "node-device-update secret-lifecycle secret-value-changed");
        /* Counting only; and the flags no version knows. */
        CHECK_INT(virConnectListRefusedEventTypes(conn, NULL, 0), 9);
        CHECK_INT(virConnectListRefusedEventTypes(conn, &types, 1), -1);
        CHECK_INT(virGetLastErrorCode(), VIR_ERR_INVALID_ARG);
        CHECK_CONTAINS(virGetLastErrorMessage(), "flags");
    }
    CHECK_STR(fake_close(&f, conn), want);
    check_calls(&f);
    case_end("an older daemon's refusals are not fatal, and are listed");
}

/* The daemon's connection-close callback ends the link with its reason; the
 * same message is skipped where the callback was not registered. */
static void daemon_closes_its_hypervisor_connection(int registered)
{
    case_begin();
    Script s;
    script_init(&s);
    s.close_callback_error = registered ? 0 : 39;
    static Buf ev;
    memset(&ev, 0, sizeof ev);
    pkt_begin(&ev, PROG_REMOTE, P_CONNECTION_CLOSED, T_MESSAGE, 1, 0);
    put_i32(&ev, 2); /* KEEPALIVE */
    pkt_end(&ev);
    ev_lifecycle(&ev, &DOM_TEST, 3, 0);
    step_send(&s, &ev);
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, &s, &seen);
    if (conn) {
        go_deliver(&f, conn, &seen, 1);
        if (registered) {
            CHECK(is_type(seen.xml[0], "connection-closed"));
            CHECK_CONTAINS(seen.xml[0], "<reason>keepalive</reason>");
            CHECK_INT(virDeliverEvents(conn), -1);
            CHECK_INT(virGetLastErrorCode(), VIR_ERR_NO_CONNECT);
            CHECK_CONTAINS(virGetLastErrorMessage(), "closed its connection to the hypervisor (keepalive)");
            CHECK_INT(seen.count, 1);
        } else {
            CHECK_CONTAINS(seen.xml[0], STATES("running", "paused"));
        }
    }
    const char *sequence = fake_close(&f, conn);
    if (!registered)
        CHECK_CONTAINS(sequence, "381 381 2 CLOSE");
    seen_clear(&seen);
    case_end(registered ? "the daemon's connection-closed ends the link" : "connection-closed skipped when not registered");
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
    CHECK_STR(fake_close(&f, NULL), OPEN_SEQ " " DEREGISTER_SEQ " 2 HANGUP");
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

/* ---- the event descriptor and fork ------------------------------------------ */

/* The event descriptor of a remote connection watches stream backlogs too. */
static void backlog_on_remote(void)
{
    Script s;
    script_init(&s);
    s.alarm_s = 300;
    s.idle_s = 290;
    step_wait(&s);
    Fake f;
    virConnectPtr conn = fake_open(&f, &s, NULL);
    if (conn)
        backlog_drains_through_event_fd(conn, "remote: a stalled stream drained through the event fd");
    CHECK_STR(fake_close(&f, conn), OPEN_SEQ " " CLOSE_SEQ);
}

/* A forked child closing an inherited connection says nothing to the daemon
 * (no deregistration, no CONNECT_CLOSE, no shutdown of the shared socket);
 * the parent goes on receiving. */
static void fork_leaves_the_daemon_alone(void)
{
    case_begin();
    Script s;
    script_init(&s);
    Buf ev = {0};
    ev_lifecycle(&ev, &DOM_TEST, 3, 0);
    step_send(&s, &ev);
    Fake f;
    Seen seen = {0};
    virConnectPtr conn = fake_open(&f, &s, &seen);
    if (conn) {
        pid_t parent = getpid();
        Forked child;
        if (fork_child(&child) == 0) {
            alarm(10);
            char want[96];
            snprintf(want, sizeof want, "connection opened by process %d, used in process %d", (int)parent,
                     (int)getpid());
            int bad = virDeliverEvents(conn) != -1;
            bad |= (virGetLastErrorCode() != VIR_ERR_OPERATION_INVALID) << 1;
            bad |= (strstr(virGetLastErrorMessage(), want) == NULL) << 2;
            bad |= (virConnectClose(conn) != 0) << 3;
            child_exit(&child, bad);
        }
        CHECK_INT(child_result(&child, 15000), 0);
        go_deliver(&f, conn, &seen, 1);
        CHECK_CONTAINS(seen.xml[0], TEST_TRANSITION("running", "paused", "suspended-paused"));
    }
    /* One goodbye: the parent's. */
    CHECK_STR(fake_close(&f, conn), OPEN_SEQ " " CLOSE_SEQ);
    seen_clear(&seen);
    case_end("fork: the child's close leaves the daemon link alone");
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
    other_objects_routed();
    older_daemon();
    daemon_closes_its_hypervisor_connection(1);
    daemon_closes_its_hypervisor_connection(0);
    keepalive_answered();
    partial_packets();
    flood();
    lost_on_bad_packets();
    lost_on_eof();
    lost_in_partial();
    close_without_reply();
    close_with_partial_pending();
    close_after_deregister_error();
    backlog_on_remote();
    fork_leaves_the_daemon_alone();
    printf("remote protocol: %lld ms\n", now_ms() - t0);
    return check_done();
}
