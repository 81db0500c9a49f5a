/* Emitting events (docs/api.md section 5): the seqs handed out, the canonical
 * one-line form handlers receive, and every kind of bad input, which must fail
 * with its code and a message naming the culprit, queue nothing and consume no
 * seq. */
#include <ctype.h>
#include <time.h>

#include "check.h"

static virConnectPtr conn;
static Seen seen;
static int next_seq = 1;

/* The delivered string is one line: no raw line break anywhere. */
static void check_one_line(const char *xml)
{
    CHECK(xml && strchr(xml, '\n') == NULL);
    CHECK(xml && strchr(xml, '\r') == NULL);
}

/* Delivers and returns the one event delivered (owned by `seen`, freed at the
 * next call or by seen_clear). */
static const char *deliver_one(void)
{
    seen_clear(&seen);
    CHECK_INT(virDeliverEvents(conn), 1);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_INT(seen.count, 1);
    if (seen.count < 1)
        return NULL;
    check_one_line(seen.xml[0]);
    return seen.xml[0];
}

/* Emits valid XML: it gets the next seq. Returns what was delivered. */
static const char *emit_ok(const char *xml)
{
    CHECK_INT(virConnectEmitEvent(conn, xml), next_seq);
    CHECK_INT(virGetLastErrorCode(), VIR_ERR_OK);
    CHECK_STR(virGetLastErrorMessage(), "no error");
    next_seq++;
    return deliver_one();
}

/* Emits XML carrying timestamp="1" and checks the whole delivered string:
 * `head` is what comes before ` seq="N"`, `tail` what comes after it. */
static void emits_as(const char *xml, const char *head, const char *tail)
{
    case_begin();
    char want[4096];
    snprintf(want, sizeof want, "%s seq=\"%d\"%s", head, next_seq, tail);
    const char *got = emit_ok(xml);
    CHECK_STR(got, want);
    case_end(xml);
}

/* The valid event emitted after each failure, to show the failure consumed no seq. */
static void next_valid_emit(void)
{
    char want[128];
    snprintf(want, sizeof want, "<event type=\"after-failure\" timestamp=\"7\" seq=\"%d\"/>", next_seq);
    CHECK_STR(emit_ok("<event type=\"after-failure\" timestamp=\"7\"/>"), want);
    seen_clear(&seen);
}

/* Emitting `xml` fails with `code` and a message containing `part` (and, unless
 * NULL, `part2`, case-insensitively); nothing is queued, and the next valid
 * emit gets the next seq. */
static void refused2(const char *what, const char *xml, int code, const char *part, const char *part2)
{
    case_begin();
    seen_clear(&seen);
    CHECK_INT(virConnectEmitEvent(conn, xml), -1);
    CHECK_ERROR(code, part);
    if (part2)
        CHECK(strcasestr(virGetLastErrorMessage(), part2) != NULL);
    CHECK_INT(virDeliverEvents(conn), 0);
    CHECK_INT(seen.count, 0);
    next_valid_emit();
    case_end(what);
}

static void refused(const char *what, const char *xml, int code, const char *part)
{
    refused2(what, xml, code, part, NULL);
}

/* Checks that `ts` (ending at the next '"') is decimal seconds with exactly 6
 * decimals, within a few seconds of now; returns what follows the closing quote. */
static const char *check_stamp(const char *ts)
{
    const char *p = ts;
    while (isdigit((unsigned char)*p))
        p++;
    CHECK(p > ts);
    CHECK(*p == '.');
    if (*p != '.')
        return p;
    const char *frac = ++p;
    while (isdigit((unsigned char)*p))
        p++;
    CHECK_INT(p - frac, 6);
    CHECK(*p == '"');
    double stamp = strtod(ts, NULL);
    double now = (double)time(NULL);
    CHECK(stamp > now - 5 && stamp < now + 5);
    return *p == '"' ? p + 1 : p;
}

/* Emits `xml`, which has no timestamp, and checks that it is delivered as
 * `prefix` (up to timestamp=" included), a stamp of now, its seq, then `tail`. */
static void emits_stamped(const char *what, const char *xml, const char *prefix, const char *tail)
{
    case_begin();
    const char *got = emit_ok(xml);
    CHECK(got && strncmp(got, prefix, strlen(prefix)) == 0);
    if (got && strncmp(got, prefix, strlen(prefix)) == 0) {
        const char *rest = check_stamp(got + strlen(prefix));
        char want[128];
        snprintf(want, sizeof want, " seq=\"%d\"%s", next_seq - 1, tail);
        CHECK_STR(rest, want);
    }
    case_end(what);
}

static void seqs_and_stamps(void)
{
    /* seq 1, 2, 3... and a stamp of the current time when none is given. */
    for (int i = 0; i < 3; i++)
        emits_stamped("stamped event", "<event type=\"x\"/>", "<event type=\"x\" timestamp=\"", "/>");
    CHECK_INT(next_seq, 4);

    /* A stamp on an event with content and other attributes. */
    emits_stamped("stamped event with content", "<event a=\"1\" type=\"y\"><c>text</c></event>",
                  "<event type=\"y\" timestamp=\"", " a=\"1\"><c>text</c></event>");

    /* A given timestamp is kept exactly, and type, timestamp, seq come first. */
    emits_as("<event type=\"t\" timestamp=\"1221756307.123456\"/>",
             "<event type=\"t\" timestamp=\"1221756307.123456\"", "/>");
    emits_as("<event a=\"1\" timestamp=\"1221756307\" b=\"2\" type=\"t.y-z_:9\"><x>hi</x></event>",
             "<event type=\"t.y-z_:9\" timestamp=\"1221756307\"", " a=\"1\" b=\"2\"><x>hi</x></event>");
    emits_as("<event type=\"t\" timestamp=\"0001221756307.1000000000\"></event>",
             "<event type=\"t\" timestamp=\"0001221756307.1000000000\"", "></event>");
    emits_as("<event type='domain-state-transition' timestamp='1.5'><old-state>running</old-state></event>",
             "<event type=\"domain-state-transition\" timestamp=\"1.5\"",
             "><old-state>running</old-state></event>");
}

static void canonical_form(void)
{
    /* Line breaks in text, LF, CRLF and CR, are all one line feed, written &#10;. */
    emits_as("<event type=\"x\" timestamp=\"1\"><a>l1\nl2\r\nl3\rl4</a></event>",
             "<event type=\"x\" timestamp=\"1\"", "><a>l1&#10;l2&#10;l3&#10;l4</a></event>");
    emits_as("<event type=\"x\" timestamp=\"1\">\n  <a>1</a>\r\n  <b>2</b>\r</event>\n",
             "<event type=\"x\" timestamp=\"1\"",
             ">&#10;  <a>1</a>&#10;  <b>2</b>&#10;</event>");
    /* Line breaks inside tags are just whitespace; in attribute values they
     * read as spaces (XML's attribute-value normalization), while a reference
     * to one keeps it, still on one line. */
    emits_as("<event\ntype=\"x\"\r\ntimestamp=\"1\"\rk=\"v\"\n/>",
             "<event type=\"x\" timestamp=\"1\"", " k=\"v\"/>");
    emits_as("<event type=\"x\" timestamp=\"1\"><a k=\"1&#10;2\" j=\"3\n4\"/></event>",
             "<event type=\"x\" timestamp=\"1\"", "><a k=\"1&#10;2\" j=\"3 4\"/></event>");

    /* CDATA becomes escaped text, with its line breaks as references too. */
    emits_as("<event type=\"x\" timestamp=\"1\"><a><![CDATA[<b> & \"c\"\nd]]></a></event>",
             "<event type=\"x\" timestamp=\"1\"", "><a>&lt;b&gt; &amp; \"c\"&#10;d</a></event>");
    emits_as("<event type=\"x\" timestamp=\"1\"><a>p<![CDATA[]]>q<![CDATA[r]]></a></event>",
             "<event type=\"x\" timestamp=\"1\"", "><a>pqr</a></event>");

    /* The XML declaration and comments are dropped, as is whitespace outside
     * the root (processing instructions are refused: see namespaces_and_pis). */
    emits_as("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- before -->\n"
             "<event type=\"x\" timestamp=\"1\"><!-- in\nside --><a>t<!-- x -->u</a></event>\n"
             "<!-- after -->\n",
             "<event type=\"x\" timestamp=\"1\"", "><a>tu</a></event>");
    emits_as("<?xml version=\"1.0\"?><event type=\"x\" timestamp=\"1\"/>",
             "<event type=\"x\" timestamp=\"1\"", "/>");

    /* Character references mean their character; the predefined entities stay
     * escaped where they must. */
    emits_as("<event type=\"x\" timestamp=\"1\"><a>&#65;&#x42;&#67;</a></event>",
             "<event type=\"x\" timestamp=\"1\"", "><a>ABC</a></event>");
    emits_as("<event type=\"x\" timestamp=\"1\"><a>&lt;b&gt; &amp; &#60;&#38;&#62;</a></event>",
             "<event type=\"x\" timestamp=\"1\"", "><a>&lt;b&gt; &amp; &lt;&amp;&gt;</a></event>");
    emits_as("<event type=\"x\" timestamp=\"1\"><a>&#233;t\xc3\xa9 &#x1F600;</a></event>",
             "<event type=\"x\" timestamp=\"1\"", "><a>\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80</a></event>");
    emits_as("<event type=\"x\" timestamp=\"1\"><a>1&#10;2&#xA;3</a></event>",
             "<event type=\"x\" timestamp=\"1\"", "><a>1&#10;2&#10;3</a></event>");
    /* A carriage return given by reference is a real CR: it must stay one, as a
     * reference (a raw CR would be read back as a line feed). */
    emits_as("<event type=\"x\" timestamp=\"1\"><a>1&#13;2</a></event>",
             "<event type=\"x\" timestamp=\"1\"", "><a>1&#13;2</a></event>");

    /* &quot; and &apos; may be written either way: they mean the character. */
    case_begin();
    const char *got = emit_ok("<event type=\"x\" timestamp=\"1\"><a>&quot;&apos;</a></event>");
    char want_refs[128], want_chars[128];
    snprintf(want_refs, sizeof want_refs,
             "<event type=\"x\" timestamp=\"1\" seq=\"%d\"><a>&quot;&apos;</a></event>", next_seq - 1);
    snprintf(want_chars, sizeof want_chars,
             "<event type=\"x\" timestamp=\"1\" seq=\"%d\"><a>\"'</a></event>", next_seq - 1);
    CHECK(got && (strcmp(got, want_refs) == 0 || strcmp(got, want_chars) == 0));
    if (got && strcmp(got, want_refs) != 0 && strcmp(got, want_chars) != 0)
        fprintf(stderr, "  got \"%s\"\n", got);
    case_end("&quot; and &apos;");

    /* Attribute values are written in double quotes, escaped as needed. */
    emits_as("<event type=\"x\" timestamp=\"1\"><a k='say \"hi\"' j=\"&lt;&#65;&amp;\"/></event>",
             "<event type=\"x\" timestamp=\"1\"",
             "><a k=\"say &quot;hi&quot;\" j=\"&lt;A&amp;\"/></event>");
    emits_as("<event type=\"x\" timestamp=\"1\" note='it&apos;s'/>",
             "<event type=\"x\" timestamp=\"1\"", " note=\"it's\"/>");

    /* Nested elements, empty elements and text are kept as written. */
    emits_as("<event type=\"x\" timestamp=\"1\"><a><b>1</b><c/><d></d>tail</a></event>",
             "<event type=\"x\" timestamp=\"1\"", "><a><b>1</b><c/><d></d>tail</a></event>");
}

/* Builds `<event type="big" timestamp="1"><p>aaa...</p></event>` of exactly `size` bytes. */
static char *big_event(size_t size)
{
    const char *head = "<event type=\"big\" timestamp=\"1\"><p>", *tail = "</p></event>";
    size_t fixed = strlen(head) + strlen(tail);
    char *xml = malloc(size + 1);
    if (!xml)
        abort();
    memcpy(xml, head, strlen(head));
    memset(xml + strlen(head), 'a', size - fixed);
    memcpy(xml + size - strlen(tail), tail, strlen(tail) + 1);
    return xml;
}

static void sizes(void)
{
    const size_t mib = 1 << 20;

    /* One MiB minus one byte, and exactly one MiB ("at most 1 MiB"), are accepted. */
    for (size_t size = mib - 1; size <= mib; size++) {
        case_begin();
        char *xml = big_event(size);
        CHECK_INT(strlen(xml), size);
        const char *got = emit_ok(xml);
        char seq[32];
        int seq_len = snprintf(seq, sizeof seq, " seq=\"%d\"", next_seq - 1);
        CHECK(got != NULL);
        if (got) {
            CHECK_INT(strlen(got), size + seq_len);
            size_t prefix = strlen("<event type=\"big\" timestamp=\"1\"");
            CHECK(strncmp(got, xml, prefix) == 0);
            CHECK(strncmp(got + prefix, seq, seq_len) == 0);
            CHECK(strcmp(got + prefix + seq_len, xml + prefix) == 0);
        }
        seen_clear(&seen);
        free(xml);
        case_end(size == mib ? "exactly 1 MiB" : "1 MiB - 1");
    }

    /* One byte more is refused. */
    char *xml = big_event(mib + 1);
    refused("1 MiB + 1", xml, VIR_ERR_XML_ERROR, "1 MiB");
    free(xml);
    xml = big_event(3 * mib);
    refused("3 MiB", xml, VIR_ERR_XML_ERROR, "1 MiB");
    free(xml);
}

static void bad_input(void)
{
    /* NULL */
    refused("NULL eventXML", NULL, VIR_ERR_INVALID_ARG, "eventXML");

    /* Malformed XML. */
    /* An element left open at the end: the message names it (not "no root
     * element": there is one, unclosed). */
    refused("unclosed root", "<event type=\"x\">", VIR_ERR_XML_ERROR, "event>");
    refused("unclosed root with text", "<event type=\"x\">text", VIR_ERR_XML_ERROR, "event>");
    refused("unclosed child at the end", "<event type=\"x\"><a>", VIR_ERR_XML_ERROR, "a>");
    refused("unclosed child", "<event type=\"x\"><a></event>", VIR_ERR_XML_ERROR, "</a>");
    refused("mismatched end tag", "<event type=\"x\"><a></b></event>", VIR_ERR_XML_ERROR, "</b>");
    refused("mismatched root end tag", "<event type=\"x\"></evnt>", VIR_ERR_XML_ERROR, "</evnt>");
    refused("end tag without start", "<event type=\"x\"/></event>", VIR_ERR_XML_ERROR, "</event>");
    refused("garbage", "this is not XML", VIR_ERR_XML_ERROR, "text outside the root");
    refused("garbage tags", "<<>>", VIR_ERR_XML_ERROR, "root element");
    refused("empty string", "", VIR_ERR_XML_ERROR, "no root element");
    refused("only whitespace", " \n\t ", VIR_ERR_XML_ERROR, "no root element");
    refused("only a comment", "<!-- nothing -->", VIR_ERR_XML_ERROR, "no root element");
    refused("two roots", "<event type=\"x\"/><event type=\"y\"/>", VIR_ERR_XML_ERROR, "second root");
    refused("two roots, second not event", "<event type=\"x\"></event><other/>", VIR_ERR_XML_ERROR,
            "second root element <other>");
    refused("text after root", "<event type=\"x\"/>junk", VIR_ERR_XML_ERROR, "text outside the root");
    refused("text before root", "junk<event type=\"x\"/>", VIR_ERR_XML_ERROR, "text outside the root");
    refused("reference after root", "<event type=\"x\"/>&#65;", VIR_ERR_XML_ERROR, "outside the root");
    refused("unquoted attribute", "<event type=x/>", VIR_ERR_XML_ERROR, "attribute");
    refused("duplicate attribute", "<event type=\"x\" type=\"y\"/>", VIR_ERR_XML_ERROR, "duplicate");
    refused("'<' in attribute", "<event type=\"x\" a=\"<\"/>", VIR_ERR_XML_ERROR, "attribute a");
    refused("bad element name", "<event type=\"x\"><1a/></event>", VIR_ERR_XML_ERROR, "<1a>");
    refused("]]> in text", "<event type=\"x\">a]]>b</event>", VIR_ERR_XML_ERROR, "]]>");
    refused("unclosed comment", "<event type=\"x\"><!-- </event>", VIR_ERR_XML_ERROR, "comment");
    refused("unclosed CDATA", "<event type=\"x\"><![CDATA[ </event>", VIR_ERR_XML_ERROR, "CDATA");

    /* A wrong root element: the message names it. */
    refused("wrong root", "<evnt type=\"x\"/>", VIR_ERR_XML_ERROR, "<evnt>");
    refused("wrong root with content", "<domain type=\"x\"><event type=\"y\"/></domain>",
            VIR_ERR_XML_ERROR, "<domain>");
    refused("root in upper case", "<EVENT type=\"x\"/>", VIR_ERR_XML_ERROR, "<EVENT>");

    /* No DTD, no entity declarations. */
    refused("DOCTYPE", "<!DOCTYPE event><event type=\"x\"/>", VIR_ERR_XML_ERROR, "DOCTYPE");
    refused("entity declaration",
            "<!DOCTYPE event [<!ENTITY e \"boom\">]><event type=\"x\">&e;</event>",
            VIR_ERR_XML_ERROR, "DOCTYPE");
    refused("external entity",
            "<!DOCTYPE event [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><event type=\"x\">&e;</event>",
            VIR_ERR_XML_ERROR, "DOCTYPE");

    /* Undefined entities and references to characters XML does not allow. */
    refused("undefined entity", "<event type=\"x\"><a>&foo;</a></event>", VIR_ERR_XML_ERROR, "&foo;");
    refused("undefined entity in attribute", "<event type=\"x\"><a k=\"&foo;\"/></event>",
            VIR_ERR_XML_ERROR, "foo");
    refused("undefined entity in type", "<event type=\"&foo;\"/>", VIR_ERR_XML_ERROR, "foo");
    refused("reference to U+0000", "<event type=\"x\"><a>&#0;</a></event>", VIR_ERR_XML_ERROR, "&#0;");
    refused("reference to U+0001", "<event type=\"x\"><a>&#x1;</a></event>", VIR_ERR_XML_ERROR, "&#x1;");
    refused("reference to a surrogate", "<event type=\"x\"><a>&#xD800;</a></event>",
            VIR_ERR_XML_ERROR, "&#xD800;");
    refused("reference out of range", "<event type=\"x\"><a>&#x110000;</a></event>",
            VIR_ERR_XML_ERROR, "&#x110000;");
    refused("unterminated reference", "<event type=\"x\"><a>&amp</a></event>", VIR_ERR_XML_ERROR, "reference");

    /* Not UTF-8, control characters, other encodings. */
    refused("invalid UTF-8 byte", "<event type=\"x\"><a>\xff</a></event>", VIR_ERR_XML_ERROR, "UTF-8");
    refused("truncated UTF-8 sequence", "<event type=\"x\"><a>\xc3</a></event>", VIR_ERR_XML_ERROR, "UTF-8");
    refused("Latin-1 byte", "<event type=\"x\"><a>caf\xe9</a></event>", VIR_ERR_XML_ERROR, "UTF-8");
    refused("overlong encoding", "<event type=\"x\"><a>\xc0\xbc</a></event>", VIR_ERR_XML_ERROR, "UTF-8");
    refused("encoded surrogate", "<event type=\"x\"><a>\xed\xa0\x80</a></event>", VIR_ERR_XML_ERROR, "UTF-8");
    refused("control character", "<event type=\"x\"><a>\x01</a></event>", VIR_ERR_XML_ERROR, "U+0001");
    refused("escape character", "<event type=\"x\"><a>\x1b[0m</a></event>", VIR_ERR_XML_ERROR, "U+001B");
    refused("control character in attribute", "<event type=\"x\" a=\"\x07\"/>", VIR_ERR_XML_ERROR, "U+0007");
    refused("U+FFFF", "<event type=\"x\"><a>\xef\xbf\xbf</a></event>", VIR_ERR_XML_ERROR, "U+FFFF");
    refused2("ISO-8859-1 declaration",
             "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><event type=\"x\"/>",
             VIR_ERR_XML_ERROR, "encoding", "ISO-8859-1");
    refused2("UTF-16 declaration", "<?xml version=\"1.0\" encoding=\"UTF-16\"?><event type=\"x\"/>",
             VIR_ERR_XML_ERROR, "encoding", "UTF-16");
    refused("XML 1.1", "<?xml version=\"1.1\"?><event type=\"x\"/>", VIR_ERR_XML_ERROR, "1.1");

    /* The type: missing, empty, or not a run of name characters. */
    refused("missing type", "<event/>", VIR_ERR_INVALID_ARG, "type");
    refused("missing type, other attributes", "<event timestamp=\"1\" kind=\"x\"><a/></event>",
            VIR_ERR_INVALID_ARG, "type");
    refused("empty type", "<event type=\"\"/>", VIR_ERR_INVALID_ARG, "type");
    refused("type with a space", "<event type=\"a b\"/>", VIR_ERR_INVALID_ARG, "\"a b\"");
    refused("type with a star", "<event type=\"domain-*\"/>", VIR_ERR_INVALID_ARG, "domain-*");
    refused("type with a slash", "<event type=\"a/b\"/>", VIR_ERR_INVALID_ARG, "a/b");
    refused("type with a line break", "<event type=\"a&#10;b\"/>", VIR_ERR_INVALID_ARG, "type");
    refused("type with a tab", "<event type=\"a\tb\"/>", VIR_ERR_INVALID_ARG, "type");

    /* Bad timestamps: the message names the value. */
    refused("timestamp abc", "<event type=\"x\" timestamp=\"abc\"/>", VIR_ERR_INVALID_ARG, "\"abc\"");
    refused("timestamp -1", "<event type=\"x\" timestamp=\"-1\"/>", VIR_ERR_INVALID_ARG, "\"-1\"");
    refused("timestamp 1.", "<event type=\"x\" timestamp=\"1.\"/>", VIR_ERR_INVALID_ARG, "\"1.\"");
    refused("timestamp .5", "<event type=\"x\" timestamp=\".5\"/>", VIR_ERR_INVALID_ARG, "\".5\"");
    refused("timestamp 1e9", "<event type=\"x\" timestamp=\"1e9\"/>", VIR_ERR_INVALID_ARG, "\"1e9\"");
    refused("timestamp empty", "<event type=\"x\" timestamp=\"\"/>", VIR_ERR_INVALID_ARG, "timestamp");
    refused("timestamp +1", "<event type=\"x\" timestamp=\"+1\"/>", VIR_ERR_INVALID_ARG, "\"+1\"");
    refused("timestamp 1.2.3", "<event type=\"x\" timestamp=\"1.2.3\"/>", VIR_ERR_INVALID_ARG, "\"1.2.3\"");
    refused("timestamp with spaces", "<event type=\"x\" timestamp=\" 1\"/>", VIR_ERR_INVALID_ARG, "timestamp");
    refused("timestamp 0x10", "<event type=\"x\" timestamp=\"0x10\"/>", VIR_ERR_INVALID_ARG, "\"0x10\"");

    /* A seq given by the caller. */
    refused("seq given", "<event type=\"x\" seq=\"5\"/>", VIR_ERR_INVALID_ARG, "seq");
    refused("seq given first", "<event seq=\"1\" type=\"x\" timestamp=\"1\"/>", VIR_ERR_INVALID_ARG, "seq");
    refused("empty seq given", "<event type=\"x\" seq=\"\"/>", VIR_ERR_INVALID_ARG, "seq");
}

/* Namespaces in XML 1.0, as expat-based consumers (Python's) require them, and
 * processing instructions, which have no one-line form. */
static void namespaces_and_pis(void)
{
    /* Bound prefixes and default namespaces are kept as written. */
    emits_as("<event type=\"x\" timestamp=\"1\" xmlns:p=\"urn:p\"><p:a p:k=\"1\"><p:b/></p:a></event>",
             "<event type=\"x\" timestamp=\"1\"", " xmlns:p=\"urn:p\"><p:a p:k=\"1\"><p:b/></p:a></event>");
    emits_as("<event xmlns=\"urn:d\" type=\"x\" timestamp=\"1\"><a xmlns=\"\"><b xmlns:q=\"urn:q\" q:k=\"v\"/></a></event>",
             "<event type=\"x\" timestamp=\"1\"",
             " xmlns=\"urn:d\"><a xmlns=\"\"><b xmlns:q=\"urn:q\" q:k=\"v\"/></a></event>");
    emits_as("<event type=\"x\" timestamp=\"1\"><a xml:lang=\"en\"/></event>",
             "<event type=\"x\" timestamp=\"1\"", "><a xml:lang=\"en\"/></event>");
    emits_as("<event type=\"x\" timestamp=\"1\" xmlns:p=\"urn:1\"><a xmlns:p=\"urn:2\"><p:b/></a><p:c/></event>",
             "<event type=\"x\" timestamp=\"1\"", " xmlns:p=\"urn:1\"><a xmlns:p=\"urn:2\"><p:b/></a><p:c/></event>");
    emits_as("<event type=\"x\" timestamp=\"1\" xmlns:p=\"urn:1\" xmlns:q=\"urn:2\"><a p:k=\"1\" q:k=\"2\" k=\"3\"/></event>",
             "<event type=\"x\" timestamp=\"1\"",
             " xmlns:p=\"urn:1\" xmlns:q=\"urn:2\"><a p:k=\"1\" q:k=\"2\" k=\"3\"/></event>");

    /* Undeclared prefixes, named with where their tag starts. */
    refused2("unbound element prefix", "<event type=\"x\"><p:a/></event>", VIR_ERR_XML_ERROR,
             "namespace prefix 'p' of <p:a> at byte 16 is not declared", NULL);
    refused2("unbound attribute prefix", "<event type=\"x\"><a p:k=\"1\"/></event>", VIR_ERR_XML_ERROR, "'p'", "p:k");
    refused2("unbound prefix of a root attribute", "<event type=\"x\" q:k=\"1\"/>", VIR_ERR_XML_ERROR, "'q'", "byte 0");
    refused2("prefix declared on a sibling", "<event type=\"x\"><a xmlns:p=\"urn:p\"/><p:b/></event>",
             VIR_ERR_XML_ERROR, "'p'", "<p:b>");
    refused2("prefix declared on a child", "<event type=\"x\"><p:a><b xmlns:p=\"urn:p\"/></p:a></event>",
             VIR_ERR_XML_ERROR, "'p'", "<p:a>");
    refused("prefix bound only as a default namespace", "<event type=\"x\" xmlns=\"urn:p\"><p:a/></event>",
            VIR_ERR_XML_ERROR, "'p'");
    refused("xmlns as an element prefix", "<event type=\"x\"><xmlns:a/></event>", VIR_ERR_XML_ERROR, "'xmlns'");

    /* Undeclaring a prefix is XML 1.1's; xml and xmlns are reserved. */
    refused2("xmlns:p=\"\"", "<event type=\"x\" xmlns:p=\"\"/>", VIR_ERR_XML_ERROR, "'p'", "xmlns:p=\"\"");
    refused2("xml bound elsewhere", "<event type=\"x\"><a xmlns:xml=\"urn:x\"/></event>", VIR_ERR_XML_ERROR,
             "'xml'", "byte 16");
    refused("another prefix bound to the xml namespace",
            "<event type=\"x\" xmlns:p=\"http://www.w3.org/XML/1998/namespace\"/>", VIR_ERR_XML_ERROR, "'p'");
    refused("the default namespace bound to the xml namespace",
            "<event type=\"x\" xmlns=\"http://www.w3.org/XML/1998/namespace\"/>", VIR_ERR_XML_ERROR,
            "default namespace");
    refused("xmlns declared", "<event type=\"x\" xmlns:xmlns=\"http://www.w3.org/2000/xmlns/\"/>",
            VIR_ERR_XML_ERROR, "'xmlns'");
    refused("a prefix bound to the xmlns namespace", "<event type=\"x\" xmlns:p=\"http://www.w3.org/2000/xmlns/\"/>",
            VIR_ERR_XML_ERROR, "'p'");

    /* Names are QNames: one colon at most, with a name on either side. */
    refused2("two colons", "<event type=\"x\" xmlns:a=\"urn:a\"><a:b:c/></event>", VIR_ERR_XML_ERROR,
             "<a:b:c>", "qualified name");
    refused("leading colon", "<event type=\"x\"><:a/></event>", VIR_ERR_XML_ERROR, "<:a>");
    refused("trailing colon", "<event type=\"x\" xmlns:a=\"urn:a\"><a:/></event>", VIR_ERR_XML_ERROR, "<a:>");
    refused("attribute name with two colons", "<event type=\"x\" xmlns:p=\"urn:p\"><a p:k:l=\"1\"/></event>",
            VIR_ERR_XML_ERROR, "p:k:l");
    refused("xmlns: with no prefix", "<event type=\"x\" xmlns:=\"urn:p\"/>", VIR_ERR_XML_ERROR, "xmlns:");

    /* Two attributes with one expanded name. */
    refused2("same expanded name", "<event type=\"x\" xmlns:p=\"urn:u\" xmlns:q=\"urn:u\"><a p:k=\"1\" q:k=\"2\"/></event>",
             VIR_ERR_XML_ERROR, "p:k", "q:k");

    /* The root is <event>, without a prefix, even a declared one. */
    refused("prefixed root", "<e:event type=\"x\" xmlns:e=\"urn:e\"/>", VIR_ERR_XML_ERROR, "<e:event>");

    /* Processing instructions, anywhere, are refused by target (a PI's data
     * may hold line breaks, which it cannot write as references). */
    refused2("PI inside the root", "<event type=\"x\"><?pi data?></event>", VIR_ERR_XML_ERROR, "<?pi ", "byte 16");
    refused2("PI before the root", "<?pi data?><event type=\"x\"/>", VIR_ERR_XML_ERROR, "<?pi ", "byte 0");
    refused2("PI after the root", "<event type=\"x\"/><?pi data?>", VIR_ERR_XML_ERROR, "<?pi ", "byte 17");
    refused("PI with a line break", "<event type=\"x\"><a>t<?pi l1\nl2?>u</a></event>", VIR_ERR_XML_ERROR, "<?pi ");
    refused("stylesheet PI", "<?xml version=\"1.0\"?><?xml-stylesheet href=\"s.css\"?><event type=\"x\"/>",
            VIR_ERR_XML_ERROR, "<?xml-stylesheet ");
    refused("XML declaration inside the root", "<event type=\"x\"><?xml version=\"1.0\"?></event>",
            VIR_ERR_XML_ERROR, "XML declaration");
    /* The XML declaration is no PI. */
    emits_as("<?xml version=\"1.0\"?>\n<event type=\"x\" timestamp=\"1\"/>", "<event type=\"x\" timestamp=\"1\"", "/>");
}

int main(void)
{
    conn = virConnectOpen("test:///empty");
    CHECK(conn != NULL);
    CHECK(virConnectAddEventHandler(conn, NULL, seen_handler, &seen) >= 0);

    seqs_and_stamps();
    canonical_form();
    sizes();
    bad_input();
    namespaces_and_pis();

    /* A child element named like the attributes is fine: only the root's
     * attributes are special. */
    emits_as("<event type=\"x\" timestamp=\"1\"><a seq=\"9\" type=\"t\" timestamp=\"z\"/></event>",
             "<event type=\"x\" timestamp=\"1\"", "><a seq=\"9\" type=\"t\" timestamp=\"z\"/></event>");

    /* Seqs are per connection: a second one starts again from 1. */
    virConnectPtr other = virConnectOpen(NULL);
    CHECK_INT(virConnectEmitEvent(other, "<event type=\"x\"/>"), 1);
    CHECK_INT(virConnectEmitEvent(other, "<event type=\"x\"/>"), 2);
    CHECK_INT(virConnectEmitEvent(conn, "<event type=\"x\"/>"), next_seq);
    next_seq++;
    CHECK_INT(virConnectEmitEvent(other, "<event type=\"x\"/>"), 3);
    CHECK_INT(virConnectClose(other), 0);
    CHECK_INT(virDeliverEvents(conn), 1);

    CHECK_INT(virConnectClose(conn), 0);
    seen_clear(&seen);
    return check_done();
}
