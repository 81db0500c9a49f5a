#!/usr/bin/env python3
"""Differential test of XPath filter entries: virevent against libxml2.

Every filter of tests/xpath/generate.py (hand-written, combined, generated) runs
against every event there, through the library (a handler with that filter: was
it called for the event?) and through libxml2 by way of lxml (the boolean value
of the expression on the event as delivered), and both must give the same
boolean. Also: the hand-written expectations must hold in lxml (a check of this
harness), and the entries of generate.REFUSED must be refused at registration
with VIR_ERR_INVALID_ARG.

Where libxml2 departs from XPath 1.0 (KNOWN_BUGS, each with the clause that
says who is right, found in the running libxml2 by a probe), a mismatch the
departure explains is checked against the specification instead, and
virevent must give the specification's answer there.

    VIREVENT_LIB=target/debug/deps/libvirevent.so python3 tests/xpath/differential.py [-v]

tests/xpath_differential.rs runs it under `cargo test`. Needs lxml (Debian's
python3-lxml, or lxml from PyPI in a virtual environment; .ci/run installs it).

How the library side runs: one connection per batch of filters. Per batch, a
handler with a NULL filter records the events as delivered (the canonical form,
with seq and timestamp), one handler per filter records which events reach it;
then each event of generate.EVENTS is emitted once and virDeliverEvents runs the
handlers. Odd batches first emit and deliver 100 events with no handler
registered, so that their seqs are above 100.

How the lxml side runs: the delivered string is parsed, and the expression is
evaluated as boolean((/)[boolean(EXPR)]) on it. docs/api.md makes the document node the
context of a filter; lxml's own evaluation on a tree takes the root element as
context instead (name(.) is 'event' there, `event[...]` finds nothing), so the
expression goes into a predicate on the document node, where the context is that
node, and position() and last() are 1, as at the top of a filter.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402

# The library, through bindings/python/virevent.py.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, os.pardir, "bindings", "python"))
import virevent  # noqa: E402

try:
    from lxml import etree
except ImportError:
    sys.exit("differential.py: lxml is not installed: the reference side of this test is "
             "libxml2 through lxml; install Debian's python3-lxml, or lxml in a virtual "
             "environment (.ci/run does)")

class KnownBug:
    """A departure of some libxml2 versions from XPath 1.0."""

    def __init__(self, name, seen, clause, probe, spec, literal, stand_in):
        self.name = name
        self.seen = seen          # where it was seen, and where not
        self.clause = clause      # what the specification says
        self.probe = probe        # an expression whose value shows the bug
        self.spec = spec          # the probe's value by the specification
        self.literal = literal    # what, in an expression, the bug is about
        self.stand_in = stand_in  # a literal the specification treats alike


KNOWN_BUGS = [
    KnownBug(
        name="number('-') is -0, not NaN",
        seen="libxml2 2.9.14 (Debian 12's python3-lxml); not 2.14 (lxml from PyPI)",
        clause="XPath 1.0 section 4.4, number(): a string that is not optional whitespace, an "
               "optional minus sign, a Number and optional whitespace converts to NaN",
        probe="number('-') = number('-')",
        spec=False,
        literal="'-'",
        stand_in="'x'",
    ),
]

MIN_PAIRS = 300
BATCH = 250                # filters per connection
SEQ_OFFSET = 100           # seqs of odd batches start above this


def short(text, limit=300):
    text = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class Fatal(Exception):
    """The harness cannot go on (emit or delivery failed)."""


class Library:
    def run_batch(self, filters, events, seq_offset):
        """Registers `filters` (tuples of entries) on a new connection, emits
        `events`. Returns (delivered XML per event, set of event indexes per filter
        or None when refused, {filter index: (code, message)} of refusals)."""
        try:
            conn = virevent.Connection()
        except virevent.VireventError as e:
            raise Fatal(f"virConnectOpen(NULL) failed: {e}")
        with conn:
            try:
                for i in range(seq_offset):
                    conn.emit(f'<event type="filler" n="{i}"/>')
                if conn.deliver() != 0:
                    raise Fatal("virDeliverEvents with no handler made calls")
            except virevent.VireventError as e:
                raise Fatal(f"emit or delivery of a filler event failed: {e}")

            delivered = []
            hits = [set() for _ in filters]
            try:
                conn.add_handler(None, delivered.append)
            except virevent.VireventError as e:
                raise Fatal(f"adding the NULL-filter handler failed: {e}")
            refused = {}
            for i, entries in enumerate(filters):
                try:
                    conn.add_handler(list(entries), hits[i].add)
                except virevent.VireventError as e:
                    refused[i] = (e.code, e.message)
            seqs = []
            for name, xml in events:
                try:
                    seqs.append(conn.emit(xml))
                except virevent.VireventError as e:
                    raise Fatal(f"emit of event {name!r} failed: {e}: {xml!r}")
            try:
                calls = conn.deliver()
            except virevent.VireventError as e:
                raise Fatal(f"virDeliverEvents failed: {e}")
            if len(delivered) != len(events):
                raise Fatal(f"the NULL-filter handler got {len(delivered)} events, "
                            f"{len(events)} were emitted")
            index = {xml: j for j, xml in enumerate(delivered)}
            if len(index) != len(delivered):
                raise Fatal("two delivered events are the same string")
            matched = []
            for i, got in enumerate(hits):
                if i in refused:
                    matched.append(None)
                    continue
                unknown = [xml for xml in got if xml not in index]
                if unknown:
                    raise Fatal(f"filter {filters[i]!r} received an event the NULL filter did "
                                f"not: {short(unknown[0])}")
                matched.append({index[xml] for xml in got})
            expected_calls = len(delivered) + sum(len(m) for m in matched if m is not None)
            if calls != expected_calls:
                raise Fatal(f"virDeliverEvents returned {calls}, the handlers saw "
                            f"{expected_calls} calls")
            return delivered, matched, refused

    def refusal(self, entry):
        """None if `entry` is refused as it must be, else what happened."""
        with virevent.Connection() as conn:
            try:
                hid = conn.add_handler([entry], lambda xml: None)
            except virevent.VireventError as e:
                code, message = e.code, e.message
            else:
                return f"accepted (handler id {hid})", virevent.last_error()[1]
        if code != virevent.VIR_ERR_INVALID_ARG:
            return (f"refused with error code {code}, not VIR_ERR_INVALID_ARG "
                    f"({virevent.VIR_ERR_INVALID_ARG})", message)
        if not message:
            return "refused without a message", message
        return None, message


class Reference:
    """libxml2 through lxml."""

    def __init__(self):
        self.compiled = {}

    def compile(self, expr):
        """The compiled wrapper, or raises etree.XPathError."""
        if expr not in self.compiled:
            self.compiled[expr] = etree.XPath(f"boolean((/)[boolean({expr})])")
        return self.compiled[expr]

    def entry(self, entry, tree):
        if generate.is_type_pattern(entry):
            return generate.type_pattern_matches(entry, tree.getroot().get("type"))
        result = self.compile(entry)(tree)
        if not isinstance(result, bool):
            raise TypeError(f"lxml gave {result!r} for a boolean")
        return result

    def filter(self, entries, tree):
        return any(self.entry(e, tree) for e in entries)


def triage(exprs):
    """Both answers for each of exprs on each event."""
    ref, lib = Reference(), Library()
    try:
        delivered, matched, refused = lib.run_batch([(e,) for e in exprs], generate.EVENTS, 0)
    except Fatal as e:
        print(f"differential.py: {e}")
        return 2
    status = 0
    for i, expr in enumerate(exprs):
        print(f"{expr!r}:")
        if i in refused:
            print(f"  refused by virevent: {refused[i]}")
            status = 1
        for j, xml in enumerate(delivered):
            tree = etree.fromstring(xml).getroottree()
            try:
                want = ref.entry(expr, tree)
            except (etree.XPathError, TypeError) as e:
                want = f"error: {e}"
            got = None if i in refused else j in matched[i]
            mark = "" if got == want else "   <-- differs"
            status = status if got == want else 1
            print(f"  {generate.EVENT_NAMES[j]:10} virevent {got!s:5} lxml {want}{mark}")
    return status


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="more detail")
    parser.add_argument("--max-report", type=int, default=400,
                        help="mismatches printed in full (all are counted)")
    parser.add_argument("--expr", action="append", metavar="EXPR",
                        help="run only this expression against every event, and print both "
                             "answers per event (repeatable; for triage)")
    args = parser.parse_args(argv)
    if args.expr:
        return triage(args.expr)
    started = time.monotonic()

    ref = Reference()
    events = generate.EVENTS
    names = generate.EVENT_NAMES
    problems = []   # harness and refusal failures: each fails the run

    # The filters: (entries, origin). Hand-written ones first: they must all be
    # valid in lxml; generated ones lxml rejects are skipped.
    filters = []
    for expr in generate.hand_expressions():
        try:
            ref.compile(expr)
        except etree.XPathError as e:
            problems.append(f"hand-written expression rejected by lxml: {expr!r}: {e}")
            continue
        filters.append(((expr,), "hand"))
    for entries, _, _ in generate.COMBINED:
        if (tuple(entries), "combined") not in filters:
            filters.append((tuple(entries), "combined"))
    skipped = []
    generated = generate.generate()
    probe = etree.fromstring(events[0][1].encode()).getroottree()
    for expr in generated:
        try:
            ref.entry(expr, probe)
        except (etree.XPathError, TypeError) as e:
            skipped.append((expr, str(e)))
            continue
        filters.append(((expr,), "generated"))

    # Both sides, batch by batch.
    lib = Library()
    passed = failed = 0
    mismatches = []          # (entries, origin, event index, virevent, lxml, delivered xml)
    refused = []             # (entries, origin, code, message)
    hand_results = {}        # (expr, event index) -> lxml's boolean, in batches without offset
    per_filter_true = {}     # entries -> set of event names lxml says true (for -v)
    def chunks(items):
        return [items[i:i + BATCH] for i in range(0, len(items), BATCH)]

    # Hand-written and combined filters run twice: seqs from 1, and above 100.
    # Generated ones once, in batches of either kind in turn.
    hand_only = [f for f in filters if f[1] != "generated"]
    plan = [(chunk, 0) for chunk in chunks(hand_only)]
    plan += [(chunk, SEQ_OFFSET) for chunk in chunks(hand_only)]
    plan += [(chunk, SEQ_OFFSET * (k % 2)) for k, chunk in
             enumerate(chunks([f for f in filters if f[1] == "generated"]))]
    try:
        for batch, offset in plan:
            delivered, matched, refusals = lib.run_batch([e for e, _ in batch], events, offset)
            trees = []
            for xml in delivered:
                try:
                    trees.append(etree.fromstring(xml).getroottree())
                except etree.XMLSyntaxError as e:
                    raise Fatal(f"lxml cannot parse a delivered event: {e}: {short(xml)}")
            for i, (entries, origin) in enumerate(batch):
                if i in refusals:
                    code, message = refusals[i]
                    if not any(r[0] == entries for r in refused):
                        refused.append((entries, origin, code, message))
                    failed += len(events)
                    continue
                for j, tree in enumerate(trees):
                    want = ref.filter(entries, tree)
                    got = j in matched[i]
                    if offset == 0 and origin == "hand":
                        hand_results[(entries[0], j)] = want
                    if offset == 0 and origin == "combined":
                        hand_results[(entries, j)] = want
                    if want:
                        per_filter_true.setdefault(entries, set()).add(names[j])
                    if got == want:
                        passed += 1
                    else:
                        failed += 1
                        mismatches.append((entries, origin, j, got, want, delivered[j]))
    except Fatal as e:
        print(f"differential.py: {e}")
        return 2

    # The hand-written expectations hold in the reference (else this harness, or
    # the expectation, is wrong).
    for expr, event, expected in generate.HAND:
        got = hand_results.get((expr, names.index(event)))
        if got is not None and got != expected:
            problems.append(f"hand-written expectation wrong in lxml: {expr!r} on {event}: "
                            f"expected {expected}, lxml says {got}")
    for entries, event, expected in generate.COMBINED:
        got = hand_results.get((tuple(entries), names.index(event)))
        if got is not None and got != expected:
            problems.append(f"combined filter expectation wrong in lxml: {entries!r} on "
                            f"{event}: expected {expected}, lxml says {got}")

    # Mismatches a known bug of the running libxml2 explains: the expression
    # again, the bug's literal replaced by one the specification converts
    # alike, on both sides. Explained when virevent's answer does not change,
    # libxml2's does, and libxml2 then agrees with virevent.
    explained = []
    for bug in KNOWN_BUGS:
        # virevent's answer to the probe is the specification's, whatever
        # libxml2 this is.
        _, probe_matched, _ = lib.run_batch([(bug.probe,)], events, 0)
        if len(probe_matched[0]) != (len(events) if bug.spec else 0):
            problems.append(f"virevent does not give the specification's answer {bug.spec} to "
                            f"{bug.probe!r} ({bug.clause})")
        probe_tree = etree.fromstring(events[0][1].encode()).getroottree()
        if ref.entry(bug.probe, probe_tree) == bug.spec:
            continue
        print(f"libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))} has a known departure from "
              f"XPath 1.0: {bug.name} (seen in {bug.seen}); {bug.clause}")
        suspects = [m for m in mismatches if any(bug.literal in e for e in m[0])]
        if not suspects:
            continue
        standing = sorted({tuple(e.replace(bug.literal, bug.stand_in) for e in m[0]) for m in suspects})
        delivered, matched, _ = lib.run_batch(list(standing), events, 0)
        trees = [etree.fromstring(xml).getroottree() for xml in delivered]
        for m in suspects:
            entries, origin, j, got, want, xml = m
            alt = tuple(e.replace(bug.literal, bug.stand_in) for e in entries)
            k = standing.index(alt)
            if (j in matched[k]) == got and ref.filter(alt, trees[j]) == got and got != want:
                explained.append((bug, m))
    for bug, m in explained:
        mismatches.remove(m)
        failed -= 1
        passed += 1
    if explained:
        print(f"--- {len(explained)} pairs where libxml2's known departures differ from virevent, "
              f"and virevent gives the specification's answer:")
        for bug, (entries, origin, j, got, want, xml) in explained[:20]:
            print(f"  [{bug.name}] {short(entries[0], 200)!r} on {names[j]}: virevent {got}, "
                  f"libxml2 {want}")

    # Entries that must be refused.
    refusal_failures = []
    for entry in generate.REFUSED:
        what, message = lib.refusal(entry)
        if what is not None:
            refusal_failures.append((entry, what, message))
        elif args.verbose:
            print(f"refused as it must be: {short(entry, 80)!r}: {short(message, 200)}")

    # Report.
    event_lines = {}
    if mismatches:
        print(f"--- {len(mismatches)} mismatches (virevent's boolean against libxml2's):")
        for entries, origin, j, got, want, xml in mismatches[:args.max_report]:
            label = entries[0] if len(entries) == 1 else " | ".join(entries)
            print(f"MISMATCH [{origin}] {label!r} on {names[j]}: "
                  f"virevent {got}, lxml {want}")
            event_lines.setdefault(names[j], xml)
        if len(mismatches) > args.max_report:
            print(f"... and {len(mismatches) - args.max_report} more")
        print("--- the events as delivered:")
        for name, xml in event_lines.items():
            print(f"  {name}: {short(xml, 1000)}")
    if refused:
        print(f"--- {len(refused)} filters refused at registration that lxml evaluates "
              f"(each counts as {len(events)} failed pairs):")
        for entries, origin, code, message in refused:
            label = entries[0] if len(entries) == 1 else " | ".join(entries)
            print(f"REFUSED [{origin}] {short(label)!r}: error {code}: {short(message, 300)}")
    if refusal_failures:
        print(f"--- {len(refusal_failures)} entries that must be refused (VIR_ERR_INVALID_ARG) "
              f"were not:")
        for entry, what, message in refusal_failures:
            print(f"NOT REFUSED {short(entry, 120)!r}: {what}; message: {short(message, 200)}")
    for problem in problems:
        print(f"HARNESS {problem}")

    generated_ran = sum(1 for _, origin in filters if origin == "generated")
    constant = sum(1 for entries, origin in filters if origin == "generated"
                   and len(per_filter_true.get(entries, ())) in (0, len(events)))
    print(f"filters: {len(generate.hand_expressions())} hand-written, {len(generate.COMBINED)} "
          f"combined checks, {generated_ran} generated ({len(skipped)} more skipped: lxml rejects "
          f"them); {len(events)} events; {len(plan)} connections; "
          f"{time.monotonic() - started:.1f} s")
    if args.verbose:
        print(f"generated filters whose lxml result is the same on every event: {constant} "
              f"of {generated_ran}")
        for expr, error in skipped:
            print(f"skipped (lxml: {error}): {expr!r}")
    total = passed + failed
    print(f"{passed} passed, {failed} failed ({total} expression/event pairs; "
          f"{len(mismatches)} mismatches in {len({m[0] for m in mismatches})} filters, "
          f"{len(refused)} filters refused, "
          f"{len(refusal_failures)} of {len(generate.REFUSED)} invalid entries accepted or "
          f"misreported, {len(problems)} harness problems)")
    if total < MIN_PAIRS:
        print(f"FAIL: only {total} pairs ran, at least {MIN_PAIRS} are required")
        return 1
    if failed or refusal_failures or problems:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
