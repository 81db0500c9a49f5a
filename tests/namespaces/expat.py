#!/usr/bin/env python3
"""Namespace well-formedness of emitted events: virevent against expat.

Python's xml.etree.ElementTree parses with expat, namespace processing on: an
event that virConnectEmitEvent accepts must be one that ElementTree can parse,
as emitted and as delivered, and one that it refuses for its namespaces must
be refused. A few hundred documents (hand-written, then generated from a fixed
seed) are given to both; they must agree on accepting or refusing each one,
and every delivered event must parse.

    VIREVENT_LIB=target/debug/deps/libvirevent.so python3 tests/namespaces/expat.py [-v]

tests/namespaces_expat.rs runs it under `cargo test`. Standard library only.

The documents differ from each other only in namespaces and names: each is an
`<event type="t">` with elements and attributes whose names may have
prefixes, declared or not, and `xmlns` attributes, reserved or not. Two
things are left out on purpose, as the library and expat differ there by
design: processing instructions (expat takes them; the library refuses them
because they have no one-line form) and URIs holding '}' (ElementTree's own
separator between namespace and local name: expat refuses those because of
how ElementTree calls it, not because the document is not namespace-well-formed).
"""

import argparse
import os
import random
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, os.pardir, "bindings", "python"))
import virevent  # noqa: E402

XML_NS = "http://www.w3.org/XML/1998/namespace"
XMLNS_NS = "http://www.w3.org/2000/xmlns/"

FIXED = [
    '<event type="t"><p:a/></event>',
    '<event type="t"><a p:x="1"/></event>',
    '<event type="t" p:x="1"/>',
    '<event type="t" xmlns:p=""/>',
    '<event type="t" xmlns=""/>',
    '<event type="t" xmlns="urn:a"><a xmlns=""/></event>',
    '<event type="t" xmlns:p="urn:a"><p:a p:x="1"/></event>',
    '<event type="t"><p:a p:x="1" xmlns:p="urn:a"/></event>',
    '<event type="t" xmlns:p="urn:a" xmlns:q="urn:a"><a p:x="1" q:x="2"/></event>',
    '<event type="t" xmlns:p="urn:a" xmlns:q="urn:b"><a p:x="1" q:x="2" x="3"/></event>',
    '<event type="t" xmlns:p="urn:a"><a xmlns:p="urn:b" p:x="1"><p:b/></a><p:c/></event>',
    '<event type="t"><a xmlns:p="urn:a"/><p:b/></event>',
    '<event type="t"><a xml:lang="en"/><xml:b/></event>',
    f'<event type="t" xmlns:xml="{XML_NS}"/>',
    '<event type="t" xmlns:xml="urn:x"/>',
    f'<event type="t" xmlns:p="{XML_NS}"/>',
    f'<event type="t" xmlns="{XML_NS}"/>',
    f'<event type="t" xmlns:xmlns="{XMLNS_NS}"/>',
    f'<event type="t" xmlns:p="{XMLNS_NS}"/>',
    f'<event type="t" xmlns="{XMLNS_NS}"/>',
    '<event type="t" xmlns:p="http://www.w3.org/XML/1998/namespac&#101;"/>',
    '<event type="t"><xmlns:a/></event>',
    '<event type="t" xmlns:a="urn:a"><a:b:c/></event>',
    '<event type="t"><:a/></event>',
    '<event type="t" xmlns:a="urn:a"><a:/></event>',
    '<event type="t" xmlns:p="urn:a"><a p:1="x"/></event>',
    '<event type="t" xmlns:="urn:a"/>',
    '<event type="t" xmlns:p:q="urn:a"/>',
]

URIS = ["urn:a", "urn:b", "", XML_NS, XMLNS_NS, XML_NS + "/", XMLNS_NS[:-1],
        "http://www.w3.org/XML/1998/namespac&#101;", "urn:a&amp;b", "urn:x y"]
PREFIXES = ["p", "q", "r", "xml", "xmlns", "xmlfoo", "Xml", "p1", "_p", "\u00e9"]
LOCALS = ["a", "x", "lang", "xmlns", "b-c", "_", "1a", "-a", ""]
BAD_NAMES = [":a", "a:", "p:a:b", "p::a", "p:a:", ":", "p:1", "p:.a"]


class Generator:
    """Documents near the namespace rules; `noise` is how often a part is odd."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.noise = 0.0

    def odd(self):
        return self.rng.random() < self.noise

    def pick(self, usual, odd):
        return self.rng.choice(odd if self.odd() else usual)

    def declaration(self):
        r = self.rng.random()
        if r < 0.2:
            return f'xmlns="{self.pick(URIS[:2], URIS)}"'
        if r < 0.25 and self.odd():
            return self.rng.choice(['xmlns:="urn:a"', 'xmlns:p:q="urn:a"', 'xmlns:1p="u"', 'xmlnsx="u"'])
        return f'xmlns:{self.pick(PREFIXES[:3], PREFIXES)}="{self.pick(URIS[:2], URIS)}"'

    def name(self):
        r = self.rng.random()
        if r < 0.35:
            return self.rng.choice(["a", "b", "c-d", "x"])
        if r < 0.85 or not self.odd():
            return f"{self.pick(PREFIXES[:4], PREFIXES)}:{self.pick(LOCALS[:3], LOCALS)}"
        return self.rng.choice(BAD_NAMES)

    def attributes(self, count):
        parts = [self.declaration() if self.rng.random() < 0.45 else f'{self.name()}="{self.rng.randrange(10)}"'
                 for _ in range(count)]
        return "".join(" " + part for part in parts)

    def element(self, depth):
        name = self.name()
        head = f"<{name}{self.attributes(self.rng.randrange(4))}"
        if depth > 2 or self.rng.random() < 0.4:
            return head + "/>"
        body = "".join(self.element(depth + 1) for _ in range(self.rng.randrange(3)))
        return f"{head}>{body}</{name}>"

    def document(self):
        self.noise = self.rng.choice([0.0, 0.02, 0.1, 0.3])
        root = self.attributes(self.rng.randrange(3))
        if self.noise < 0.05 and self.rng.random() < 0.7:
            root += self.rng.choice([' xmlns:p="urn:a" xmlns:q="urn:b"', ' xmlns:p="urn:a" xmlns:q="urn:a" xmlns:r="urn:b"'])
        children = "".join(self.element(1) for _ in range(self.rng.randrange(1, 3)))
        return f'<event type="t" timestamp="1"{root}>{children}</event>'


def expat_accepts(xml):
    try:
        ET.fromstring(xml)
        return True
    except ET.ParseError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--count", type=int, default=600, help="generated documents")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    generator = Generator(args.seed)
    documents = FIXED + [generator.document() for _ in range(args.count)]
    delivered = []
    conn = virevent.Connection()
    conn.add_handler(None, delivered.append)
    agree, accepted, failures = 0, 0, []
    for xml in documents:
        try:
            conn.emit(xml)
            ours, why = True, ""
        except virevent.VireventError as e:
            ours, why = False, str(e)
            if e.code != virevent.VIR_ERR_XML_ERROR:
                failures.append(f"refused with {e}, not an XML error: {xml}")
        theirs = expat_accepts(xml)
        accepted += theirs
        if ours == theirs:
            agree += 1
        else:
            failures.append(f"virevent {'accepts' if ours else 'refuses'}, expat {'accepts' if theirs else 'refuses'}: "
                            f"{xml}\n    {why}")
        if args.verbose:
            print(f"{'accept' if ours else 'refuse'} {xml}{'' if ours else '  # ' + why}")
    conn.deliver()
    for xml in delivered:
        if not expat_accepts(xml):
            failures.append(f"a delivered event that expat cannot parse: {xml}")
    conn.close()
    print(f"{agree} of {len(documents)} documents: virevent and expat agree "
          f"({accepted} accepted, {len(documents) - accepted} refused; {len(delivered)} delivered events parsed)")
    # Both sides see plenty of each: the comparison is not vacuous.
    if accepted < 100 or len(documents) - accepted < 100 or len(delivered) != accepted:
        failures.append(f"too few of one kind: {accepted} accepted, {len(delivered)} delivered")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
