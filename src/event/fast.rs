//! The fast path of [`parse`](super::parse): one pass over event XML of the
//! common, plain shape, which is already in canonical form. It costs a
//! fraction of the full parser and takes most emitted events: printable ASCII
//! only (no line breaks, no references), a root `<event>` with `type` and
//! optionally `timestamp` as its only attributes, child elements without
//! attributes or prefixes, text without `&` or `>`, and nothing after the root.
//!
//! It never fails: anything else, malformed input included, returns `None`,
//! and the full parser takes it and gives the error, so both paths accept the
//! same documents and make the same canonical text of them (a differential
//! test and a fuzz target hold them to that).

use super::{is_decimal, is_type_name, push_now, Draft};

/// How deep the fast path follows elements; deeper documents take the full path.
const MAX_DEPTH: usize = 32;

/// The draft of `xml` when it has the plain shape, else `None`.
pub(super) fn parse(xml: &[u8]) -> Option<Draft> {
    if !xml.iter().fold(true, |plain, &b| plain & (b' '..=b'~').contains(&b)) {
        return None;
    }
    let (root, body) = root_tag(xml)?;
    let rest = if root.empty { body } else { skip_children(body)? };
    if !rest.is_empty() {
        return None;
    }
    let mut text = String::with_capacity(xml.len() + 64);
    text.push_str("<event type=\"");
    let kind = (text.len(), text.len() + root.kind.len());
    text.push_str(root.kind);
    text.push_str("\" timestamp=\"");
    match root.timestamp {
        Some(timestamp) => text.push_str(timestamp),
        None => push_now(&mut text),
    }
    text.push('"');
    let seq_at = text.len();
    text.push_str(if root.empty { "/>" } else { ">" });
    // SAFETY: printable ASCII, checked above, is UTF-8. The body is already
    // in canonical form.
    text.push_str(unsafe { std::str::from_utf8_unchecked(&xml[xml.len() - body.len()..]) });
    Some(Draft { text, seq_at, kind })
}

/// The root's start tag, read.
struct Root<'a> {
    kind: &'a str,
    timestamp: Option<&'a str>,
    /// `<event .../>`.
    empty: bool,
}

/// Reads `<event type="T" timestamp="S">` (attributes in either order, the
/// timestamp optional, one space before each); returns it and what follows.
fn root_tag(xml: &[u8]) -> Option<(Root<'_>, &[u8])> {
    let mut rest = xml.strip_prefix(b"<event")?;
    let (mut kind, mut timestamp) = (None, None);
    loop {
        match rest {
            [b'>', after @ ..] => return Some((Root { kind: kind?, timestamp, empty: false }, after)),
            [b'/', b'>', after @ ..] => return Some((Root { kind: kind?, timestamp, empty: true }, after)),
            [b' ', after @ ..] => {
                let equals = after.iter().position(|&b| b == b'=')?;
                let (name, value) = (&after[..equals], after[equals + 1..].strip_prefix(b"\"")?);
                let end = value.iter().position(|&b| b == b'"')?;
                // Printable ASCII, so UTF-8.
                let text = std::str::from_utf8(&value[..end]).ok()?;
                let slot = match name {
                    b"type" if is_type_name(text) => &mut kind,
                    b"timestamp" if is_decimal(text) => &mut timestamp,
                    _ => return None,
                };
                if slot.replace(text).is_some() {
                    return None;
                }
                rest = &value[end + 1..];
            }
            _ => return None,
        }
    }
}

/// Walks the root's content up to and including `</event>`: elements without
/// attributes, each closed by its own name, and text without `&` or `>`.
/// Returns what follows the root.
fn skip_children(xml: &[u8]) -> Option<&[u8]> {
    // Where the names of the open elements start, and how long they are.
    let mut open = [(0usize, 0usize); MAX_DEPTH];
    let mut depth = 0;
    let mut at = 0;
    loop {
        match *xml.get(at)? {
            b'&' | b'>' => return None,
            b'<' if xml.get(at + 1) == Some(&b'/') => {
                let start = at + 2;
                if depth == 0 {
                    let after = xml[start..].strip_prefix(b"event>")?;
                    return Some(after);
                }
                depth -= 1;
                let (name_at, len) = open[depth];
                let end = start + len;
                if xml.get(end) != Some(&b'>') || !same(&xml[start..end], &xml[name_at..name_at + len]) {
                    return None;
                }
                at = end + 1;
            }
            b'<' => {
                let start = at + 1;
                let len = name_length(&xml[start..]);
                at = start + len;
                match &xml[at..] {
                    [b'>', ..] if depth < MAX_DEPTH && len > 0 => {
                        open[depth] = (start, len);
                        depth += 1;
                        at += 1;
                    }
                    [b'/', b'>', ..] if len > 0 => at += 2,
                    _ => return None,
                }
            }
            _ => at += 1,
        }
    }
}

/// The length of the ASCII XML name without a `:` that `xml` starts with (0
/// for none): a letter or `_`, then letters, digits, `-`, `.`, `_`. A name
/// with a prefix takes the full parser, which checks that it is declared.
fn name_length(xml: &[u8]) -> usize {
    match xml.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
            1 + xml[1..].iter().take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')).count()
        }
        _ => 0,
    }
}

/// Byte-wise equality of two short names, without a call to memcmp.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).fold(true, |same, (x, y)| same & (x == y))
}

#[cfg(test)]
mod tests {
    use super::super::full_parse;
    use super::*;

    /// A small, seedable generator (xorshift64*), so that a failure replays.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// One of `usual`, or, when `odd_too`, one of `odd` once in a while.
        fn pick<'a>(&mut self, odd_too: bool, usual: &[&'a str], odd: &[&'a str]) -> &'a str {
            if odd_too && self.below(8) == 0 {
                odd[self.below(odd.len())]
            } else {
                usual[self.below(usual.len())]
            }
        }
    }

    const NAMES: &[&str] = &["a", "domain-name", "x-y", "_u", "b.c", "z9", "event", "A"];
    /// Odd names, among them prefixed ones: declared when the root declares
    /// `p` and `x`, and never taken by the fast path.
    const ODD_NAMES: &[&str] =
        &["1a", "-a", "é", "a b", "", "a\t", "a/", "x:y", "p:a", "xml:a", ":a", "a:", "p:a:b", "xmlns:a", "q:a"];
    /// Namespace declarations and prefixed attributes, for the root or a child.
    const ODD_ATTRS: &[&str] = &[
        " xmlns:p=\"urn:p\"",
        " xmlns=\"urn:d\"",
        " xmlns=\"\"",
        " xmlns:x=\"urn:p\"",
        " xmlns:p=\"\"",
        " p:a=\"1\"",
        " x:a=\"2\"",
        " xml:lang=\"en\"",
        " xmlns:xml=\"urn:x\"",
    ];
    const TEXTS: &[&str] = &["vm1", "", " ", "run ning", "\"q'", "a=b/c", "]]", "?!", "-1"];
    const ODD_TEXTS: &[&str] = &["x>y", "&amp;", "&#10;", "&#0;", "a\nb", "\r\n", "\tt", "ü", "<", "]]>", "\u{1}", "&x;"];
    const TYPES: &[&str] = &[" type=\"domain-state-transition\"", " type=\"t\""];
    const TIMESTAMPS: &[&str] = &[" timestamp=\"1221756307.123456\"", " timestamp=\"0.5\"", ""];
    const ODD_ROOT_ATTRS: &[&str] = &[
        " type=\"\"",
        " type=\"a b\"",
        " timestamp=\"12\"",
        " timestamp=\"1.\"",
        " timestamp=\"x\"",
        " seq=\"3\"",
        " other=\"v\"",
        "  type=\"t\"",
        " type='t'",
        " type=\"t\" ",
    ];
    const BYTES: &[u8] = b"<>/&;\"'= \n\t!?-[]:_.evntxa1";

    /// Prefixed names, declared in a `prefixed` document.
    const PREFIXED: &[&str] = &["p:a", "x:y", "p:domain-name", "xml:a", "x:event"];

    /// A document of the plain shape, or (when `odd_too`) near it; when
    /// `prefixed`, its root declares `p` and `x` and its names use them.
    fn document(rng: &mut Rng, odd_too: bool, prefixed: bool) -> String {
        let names = if prefixed { PREFIXED } else { NAMES };
        let mut doc = String::from("<event");
        let mut attributes = [rng.pick(odd_too, TYPES, ODD_ROOT_ATTRS), rng.pick(odd_too, TIMESTAMPS, ODD_ROOT_ATTRS)];
        if rng.below(2) == 0 {
            attributes.reverse();
        }
        doc.push_str(&attributes.concat());
        if prefixed {
            doc.push_str(" xmlns:p=\"urn:p\" xmlns:x=\"urn:x\"");
        }
        if odd_too && rng.below(4) == 0 {
            doc.push_str(ODD_ATTRS[rng.below(ODD_ATTRS.len())]);
        }
        if rng.below(8) == 0 {
            doc.push_str("/>");
            return doc;
        }
        doc.push('>');
        let mut open = Vec::new();
        for _ in 0..rng.below(40) {
            match rng.below(4) {
                0 => doc.push_str(rng.pick(odd_too, TEXTS, ODD_TEXTS)),
                1 if !open.is_empty() => doc.push_str(&format!("</{}>", open.pop().unwrap_or(""))),
                2 => doc.push_str(&format!("<{}/>", rng.pick(odd_too, names, ODD_NAMES))),
                _ => {
                    let name = rng.pick(odd_too, names, ODD_NAMES);
                    let attributes_too = odd_too && rng.below(2) == 0;
                    let attribute = rng.pick(attributes_too, &[""], ODD_ATTRS);
                    doc.push_str(&format!("<{name}{attribute}>"));
                    open.push(name);
                }
            }
        }
        while let Some(name) = open.pop() {
            doc.push_str(&format!("</{name}>"));
        }
        doc.push_str("</event>");
        doc
    }

    /// A byte inserted, removed or replaced, a few times.
    fn mutate(rng: &mut Rng, doc: String) -> Vec<u8> {
        let mut bytes = doc.into_bytes();
        for _ in 0..rng.below(3) {
            let at = rng.below(bytes.len() + 1);
            let byte = BYTES[rng.below(BYTES.len())];
            match rng.below(3) {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => drop(bytes.remove(at)),
                _ if at < bytes.len() => bytes[at] = byte,
                _ => {}
            }
        }
        bytes
    }

    /// The text and positions of a draft with its timestamp's value taken
    /// out: a stamped one differs from one run to the next.
    fn unstamped(draft: &Draft) -> (String, usize, (usize, usize)) {
        let value = draft.text.find(" timestamp=\"").map(|at| at + 12).unwrap_or(0);
        let len = draft.text[value..].find('"').unwrap_or(0);
        let mut text = draft.text.clone();
        text.replace_range(value..value + len, "");
        (text, draft.seq_at - len, draft.kind)
    }

    /// Whatever the fast path takes, the full parser takes too, and makes the
    /// same draft of it.
    #[test]
    fn the_fast_path_agrees_with_the_full_parser() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let (mut fast_taken, mut full_ok) = (0, 0);
        // Documents with prefixes or declarations that the full parser took, and refused.
        let (mut namespaced_ok, mut namespaced_refused) = (0, 0);
        for case in 0..60_000 {
            let doc = document(&mut rng, case % 4 != 0, matches!(case % 16, 1 | 2 | 4));
            let bytes = if case % 4 < 2 { doc.into_bytes() } else { mutate(&mut rng, doc) };
            let full = std::str::from_utf8(&bytes).map_err(drop).and_then(|text| full_parse(text).map_err(drop));
            full_ok += usize::from(full.is_ok());
            let namespaced = bytes.windows(5).any(|w| w == b"xmlns") || bytes.contains(&b':');
            match full {
                Ok(_) if namespaced => namespaced_ok += 1,
                Err(()) if namespaced => namespaced_refused += 1,
                _ => {}
            }
            let Some(fast) = parse(&bytes) else { continue };
            fast_taken += 1;
            let shown = String::from_utf8_lossy(&bytes);
            let full = full.unwrap_or_else(|()| panic!("the fast path took what the full parser refuses: {shown}"));
            assert_eq!(unstamped(&fast), unstamped(&full), "{shown}");
            if bytes.windows(11).any(|w| w == b"timestamp=\"") {
                assert_eq!(fast.text, full.text, "{shown}");
            }
        }
        // Both paths see plenty: the comparison is not vacuous.
        assert!(fast_taken > 12_000 && full_ok > fast_taken + 2_000, "fast {fast_taken}, valid {full_ok}");
        assert!(namespaced_ok > 5_000 && namespaced_refused > 5_000, "namespaced: {namespaced_ok} valid, {namespaced_refused} not");
    }

    #[test]
    fn the_fast_path_takes_the_common_shapes() {
        let common = [
            "<event type=\"domain-state-transition\" timestamp=\"1221756307.123456\"><domain-id>3</domain-id>\
             <domain-name>vm1</domain-name><old-state>running</old-state><new-state>paused</new-state>\
             <reason>suspended-paused</reason></event>",
            "<event timestamp=\"1.5\" type=\"t\"/>",
            "<event type=\"t\"><a><b/><c>x y \"z\"</c></a></event>",
        ];
        for xml in common {
            let fast = parse(xml.as_bytes()).expect(xml);
            assert_eq!(unstamped(&fast), unstamped(&full_parse(xml).expect(xml)), "{xml}");
        }
        let others = [
            "<event type=\"t\">a\nb</event>",
            "<event type=\"t\">&amp;</event>",
            "<event type=\"t\"><a x=\"1\"/></event>",
            "<?xml version=\"1.0\"?><event type=\"t\"/>",
            "<event type=\"t\"/> ",
            "<event type=\"t\"><!-- c --></event>",
            "<event type=\"t\" seq=\"1\"/>",
            "<event type=\"t\"><a></b></event>",
        ];
        for xml in others {
            assert!(parse(xml.as_bytes()).is_none(), "{xml}");
        }
    }
}
