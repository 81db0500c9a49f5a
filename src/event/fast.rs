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
//!
//! Every byte is looked at once, sixteen at a time where it can be: text and
//! names are classified a 16-byte chunk at a time for the first byte outside
//! their class (with SSE2, which every x86-64 processor has; elsewhere eight
//! bytes at a time in a `u64`), the chunk that holds a start tag's name also
//! gives the end of the text after it, an end tag is compared in one go with
//! the start tag it closes (whose bytes were already checked; a leaf's end
//! tag, right after its text, with the start tag's bytes still in a register,
//! so that the leaf never goes on the stack), and a root already in canonical
//! order is copied as it is, with the rest, in one copy.

use super::{push_now, Draft};

/// How deep the fast path follows elements; deeper documents take the full path.
const MAX_DEPTH: usize = 32;

/// Start tags whose name is longer take the full path (the name's length
/// is packed with its offset in one `u32`).
const MAX_NAME: usize = (1 << NAME_BITS) - 2;
const NAME_BITS: u32 = 11;

/// The draft of `xml` when it has the plain shape, else `None`.
pub(super) fn parse(xml: &[u8]) -> Option<Draft> {
    // The input limit is checked before; offsets then fit the packed stack.
    // Valid events are longer than 16 bytes: every 16-byte load stays inside.
    if xml.len() > super::MAX_EVENT_BYTES || xml.len() < 16 {
        return None;
    }
    let root = root_tag(xml)?;
    let body = root.end + if root.empty { 2 } else { 1 };
    if !root.empty && !children_then_end(xml, body) || root.empty && body != xml.len() {
        return None;
    }
    // SAFETY: every byte of `xml` was checked to be printable ASCII (by the
    // root's literal parts and the classes of its values, the word scans of
    // text and names, and comparisons of end tags and `</event>` with checked
    // bytes), and ASCII is UTF-8.
    let xml = unsafe { std::str::from_utf8_unchecked(xml) };
    // Room for the seq and NUL that sealing adds, or for a stamped timestamp.
    let mut text = super::text_buffer(xml.len() + 64);
    const HEAD: usize = "<event type=\"".len();
    let kind = (HEAD, HEAD + root.kind.len());
    let canonical = root.timestamp.as_ref().is_some_and(|timestamp| {
        // `<event type="T" timestamp="S"`, one space each.
        root.kind.start == HEAD && timestamp.start == root.kind.end + 13 && timestamp.end + 1 == root.end
    });
    if canonical {
        text.push_str(xml);
        return Some(Draft { text, seq_at: root.end, kind, lined: false });
    }
    text.push_str("<event type=\"");
    text.push_str(&xml[root.kind]);
    text.push_str("\" timestamp=\"");
    match root.timestamp {
        Some(timestamp) => text.push_str(&xml[timestamp]),
        None => push_now(&mut text),
    }
    text.push('"');
    let seq_at = text.len();
    text.push_str(&xml[root.end..]);
    Some(Draft { text, seq_at, kind, lined: false })
}

/// The root's start tag, read: where its values are.
struct Root {
    kind: std::ops::Range<usize>,
    timestamp: Option<std::ops::Range<usize>>,
    /// Where its `>` (or the `/` of `/>`) is.
    end: usize,
    /// `<event .../>`.
    empty: bool,
}

/// Reads `<event type="T" timestamp="S">` (attributes in either order, the
/// timestamp optional, one space before each).
fn root_tag(xml: &[u8]) -> Option<Root> {
    canonical_root(xml).or_else(|| any_root(xml))
}

/// [`root_tag`] for the usual order, type then timestamp, read straight on.
#[inline(always)]
fn canonical_root(xml: &[u8]) -> Option<Root> {
    const TYPE_AT: usize = "<event type=\"".len();
    if !xml.starts_with(b"<event type=\"") {
        return None;
    }
    let kind_end = scan::<TYPE>(xml, TYPE_AT);
    let timestamp_at = kind_end + "\" timestamp=\"".len();
    if kind_end == TYPE_AT || xml.get(kind_end..timestamp_at)? != b"\" timestamp=\"" {
        return None;
    }
    let timestamp_end = decimal_end(xml, timestamp_at)?;
    let end = timestamp_end + 1;
    let empty = match xml.get(timestamp_end..timestamp_end + 3)? {
        [b'"', b'>', _] => false,
        [b'"', b'/', b'>'] => true,
        _ => return None,
    };
    if timestamp_end == timestamp_at {
        return None;
    }
    Some(Root { kind: TYPE_AT..kind_end, timestamp: Some(timestamp_at..timestamp_end), end, empty })
}

/// [`root_tag`] for any order and an optional timestamp.
#[inline(never)]
fn any_root(xml: &[u8]) -> Option<Root> {
    if !xml.starts_with(b"<event ") {
        return None;
    }
    let (mut kind, mut timestamp) = (None, None);
    let mut at = 6;
    loop {
        match xml.get(at..at + 2)? {
            [b'>', _] => return Some(Root { kind: kind?, timestamp, end: at, empty: false }),
            [b'/', b'>'] => return Some(Root { kind: kind?, timestamp, end: at, empty: true }),
            [b' ', b't'] => {
                let rest = &xml[at + 1..];
                let (slot, value, end) = if rest.starts_with(b"type=\"") {
                    let start = at + 7;
                    (&mut kind, start, scan::<TYPE>(xml, start))
                } else if rest.starts_with(b"timestamp=\"") {
                    let start = at + 12;
                    (&mut timestamp, start, decimal_end(xml, start)?)
                } else {
                    return None;
                };
                if end == value || xml.get(end) != Some(&b'"') || slot.replace(value..end).is_some() {
                    return None;
                }
                at = end + 1;
            }
            _ => return None,
        }
    }
}

/// Where the decimal number (digits, optionally a point and more digits) at
/// `at` ends; `None` for a point without digits on either side.
#[inline(always)]
fn decimal_end(xml: &[u8], at: usize) -> Option<usize> {
    let whole = scan::<DIGITS>(xml, at);
    if xml.get(whole) != Some(&b'.') {
        return Some(whole);
    }
    let fraction = scan::<DIGITS>(xml, whole + 1);
    (whole > at && fraction > whole + 1).then_some(fraction)
}

/// Walks the root's content from `at` to its `</event>`, which must end
/// `xml`: elements without attributes, each closed by its own name, and text
/// of printable ASCII without `&` or `>`.
#[inline(never)]
fn children_then_end(xml: &[u8], mut at: usize) -> bool {
    // The open elements: where each name starts, and its length with the `>`
    // after it, packed (a zeroed array this small costs a few stores).
    let mut open = [0u32; MAX_DEPTH];
    let mut depth = 0;
    // Most of the content, far from the end, takes the quicker loop.
    #[cfg(target_arch = "x86_64")]
    match sse2::children(xml, at, &mut open, &mut depth) {
        Some(sse2::COMPLETE) => return true,
        Some(stopped) => at = stopped,
        None => return false,
    }
    loop {
        if xml.get(at) != Some(&b'<') {
            at = scan::<TEXT>(xml, at);
            if xml.get(at) != Some(&b'<') {
                return false;
            }
        }
        let Some(&next) = xml.get(at + 1) else { return false };
        if next == b'/' {
            if depth == 0 {
                return xml.len() == at + 8 && xml[at..] == *b"</event>";
            }
            depth -= 1;
            let (name, len) = ((open[depth] >> NAME_BITS) as usize, (open[depth] & ((1 << NAME_BITS) - 1)) as usize);
            if !chunk::same(xml, name, at + 2, len) {
                return false;
            }
            at += 2 + len;
        } else if starts_name(next) {
            let name = at + 1;
            // One look at the bytes after `<` finds the end of the name
            // and, when a `>` follows, of the text after it.
            let (len, text) = chunk::name_then_text(xml, name);
            let end = name + len;
            match xml.get(end..end + 2) {
                Some([b'>', _]) if depth < MAX_DEPTH && len <= MAX_NAME => {
                    open[depth] = ((name as u32) << NAME_BITS) | (len as u32 + 1);
                    depth += 1;
                    at = if text < chunk::LEN { name + text } else { end + 1 };
                }
                Some([b'/', b'>']) => at = end + 2,
                _ => return false,
            }
        } else {
            return false;
        }
    }
}

/// Whether `b` can start a name on the fast path: an ASCII letter or `_`.
#[inline(always)]
fn starts_name(b: u8) -> bool {
    // Setting 0x20 makes upper case lower case, and nothing else lower case.
    (b | 0x20).wrapping_sub(b'a') < 26 || b == b'_'
}

/// The byte classes that [`scan`] skips over.
/// Text: printable ASCII other than `<`, `>`, `&`.
const TEXT: u8 = 0;
/// Name characters: ASCII letters, digits, `-`, `.`, `_`.
const NAME: u8 = 1;
/// Event types: name characters and `:`.
const TYPE: u8 = 2;
/// ASCII digits.
const DIGITS: u8 = 3;

/// Where the first byte at or after `at` outside `CLASS` is (`xml.len()`, or
/// beyond it, when there is none: the end of the input is outside every class).
#[inline(always)]
fn scan<const CLASS: u8>(xml: &[u8], mut at: usize) -> usize {
    loop {
        let first = chunk::first_outside::<CLASS>(xml, at);
        if first < chunk::LEN {
            return at + first;
        }
        at += chunk::LEN;
    }
}

#[cfg(target_arch = "x86_64")]
use sse2 as chunk;
#[cfg(not(target_arch = "x86_64"))]
use swar as chunk;

/// Sixteen bytes at a time with SSE2, which every x86-64 processor has.
///
/// The intrinsics that only compute are `unsafe` to call before Rust 1.87
/// (the crate supports 1.82), so they are called from `unsafe fn`s here,
/// whose callers' SAFETY notes say why they may be: SSE2 is part of the
/// x86_64 target, and those functions touch no memory. The only memory
/// access is the load of sixteen bytes of a slice.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// How many bytes [`first_outside`] looks at.
    pub(super) const LEN: usize = 16;

    /// The 16 bytes at `at` of `xml` (at least 16 bytes long), and how many
    /// of their classification bits to drop. Near the end of the input, the
    /// last 16 bytes are loaded instead, and the bits of bytes before `at`
    /// dropped: every load stays inside `xml`, and no call to copy a partial
    /// chunk costs the loop its registers.
    #[inline(always)]
    fn load(xml: &[u8], at: usize) -> (__m128i, u32) {
        let start = at.min(xml.len() - 16);
        (load16(xml, start), (at - start).min(16) as u32)
    }

    #[inline(always)]
    fn load16(xml: &[u8], at: usize) -> __m128i {
        load_slice(&xml[at..at + 16])
    }

    /// The first 16 bytes of `bytes` (16 long or more).
    #[inline(always)]
    fn load_slice(bytes: &[u8]) -> __m128i {
        let bytes = &bytes[..16];
        // SAFETY: `bytes` is 16 readable bytes, and the load needs no alignment.
        unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
    }

    /// Classification bits (one per byte, the first lowest) without the
    /// `skip` first ones; the bytes past the end of the input, shifted in,
    /// are outside every class.
    #[inline(always)]
    fn from(bits: u32, skip: u32) -> u32 {
        (bits >> skip) | (u32::MAX << (16 - skip))
    }

    #[inline(always)]
    unsafe fn splat(b: u8) -> __m128i {
        _mm_set1_epi8(b as i8)
    }

    /// The bytes in `[lo, hi]`, both below 0x7f.
    #[inline(always)]
    unsafe fn in_range(x: __m128i, lo: u8, hi: u8) -> __m128i {
        // Signed: bytes from 0x80 up, negative, are never in it.
        _mm_and_si128(_mm_cmpgt_epi8(x, splat(lo - 1)), _mm_cmplt_epi8(x, splat(hi + 1)))
    }

    /// One bit for each byte (the first lowest) that is not text: a control
    /// character, DEL, a byte from 0x80 up, `<`, `>` or `&`.
    #[inline(always)]
    unsafe fn outside_text(x: __m128i) -> u32 {
        // Signed, bytes from 0x80 up are below 0x20 too.
        let control_or_high = _mm_cmplt_epi8(x, splat(0x20));
        let del = _mm_cmpeq_epi8(x, splat(0x7f));
        let angle = _mm_cmpeq_epi8(_mm_or_si128(x, splat(0x02)), splat(b'>')); // '<' or '>'
        let amp = _mm_cmpeq_epi8(x, splat(b'&'));
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(control_or_high, del), _mm_or_si128(angle, amp))) as u32
    }

    /// One bit for each byte that is no name character (with `COLON`, nor `:`).
    #[inline(always)]
    unsafe fn outside_name<const COLON: bool>(x: __m128i) -> u32 {
        // Setting 0x20 makes upper case lower case, and nothing else lower case.
        let letters = in_range(_mm_or_si128(x, splat(0x20)), b'a', b'z');
        let digits = in_range(x, b'0', if COLON { b':' } else { b'9' });
        let dash_dot = in_range(x, b'-', b'.');
        let underscore = _mm_cmpeq_epi8(x, splat(b'_'));
        !_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letters, digits), _mm_or_si128(dash_dot, underscore))) as u32 & 0xffff
    }

    #[inline(always)]
    unsafe fn outside_digits(x: __m128i) -> u32 {
        !_mm_movemask_epi8(in_range(x, b'0', b'9')) as u32 & 0xffff
    }

    /// The offset of the first of the 16 bytes at `at` outside `CLASS`, or 16.
    #[inline(always)]
    pub(super) fn first_outside<const CLASS: u8>(xml: &[u8], at: usize) -> usize {
        let (x, skip) = match xml.get(at..at + 16) {
            Some(bytes) => (load_slice(bytes), 0),
            None => load(xml, at),
        };
        // SAFETY: SSE2 arithmetic on a register (see the module's note).
        let outside = unsafe {
            match CLASS {
                super::TEXT => outside_text(x),
                super::DIGITS => outside_digits(x),
                super::TYPE => outside_name::<true>(x),
                _ => outside_name::<false>(x),
            }
        };
        from(outside, skip).trailing_zeros() as usize
    }

    /// For a name at `at`: the offset of its first byte that is no name
    /// character, and of the first byte after that one that is not text
    /// (16 when not in these 16 bytes; the name then goes on, scanned further).
    #[inline(always)]
    pub(super) fn name_then_text(xml: &[u8], at: usize) -> (usize, usize) {
        // Far from the end (the usual case) no bits are dropped.
        let (x, skip) = match xml.get(at..at + 16) {
            Some(bytes) => (load_slice(bytes), 0),
            None => load(xml, at),
        };
        // SAFETY: SSE2 arithmetic on a register (see the module's note).
        let (name, text) = unsafe { (outside_name::<false>(x), outside_text(x)) };
        let len = from(name, skip).trailing_zeros() as usize;
        if len == 16 {
            return (super::scan::<{ super::NAME }>(xml, at + 16) - at, 16);
        }
        // The text starts after the byte that ended the name.
        let text = (from(text, skip) >> (len + 1)).trailing_zeros() as usize + len + 1;
        (len, text.min(16))
    }

    /// Whether the `len` bytes at `a` and at `b` of `xml` are the same (`a`
    /// before `b`): sixteen at a time, the last ones loaded with the 16 bytes
    /// up to the end of the input when they are near it.
    #[inline(always)]
    pub(super) fn same(xml: &[u8], a: usize, b: usize, len: usize) -> bool {
        if a >= b {
            return false;
        }
        if let (Some(x), Some(y), true) = (xml.get(a..a + 16), xml.get(b..b + 16), len <= 16) {
            // The usual case: one compare.
            // SAFETY: SSE2 arithmetic on registers (see the module's note).
            let equal = unsafe { equal_bytes(load_slice(x), load_slice(y)) };
            let wanted = (1u32 << len) - 1;
            return equal & wanted == wanted;
        }
        if b + len > xml.len() {
            return false;
        }
        let mut i = 0;
        while i < len {
            let start = (b + i).min(xml.len() - 16);
            let skip = b + i - start;
            // The root's start tag comes before `a`, so this never fails in practice.
            let Some(other) = (a + i).checked_sub(skip) else { return xml[a + i..a + len] == xml[b + i..b + len] };
            // SAFETY: SSE2 arithmetic on registers (see the module's note).
            let equal = unsafe { equal_bytes(load16(xml, other), load16(xml, start)) } >> skip;
            let n = (len - i).min(16 - skip);
            let wanted = (1u32 << n) - 1;
            if equal & wanted != wanted {
                return false;
            }
            i += n;
        }
        true
    }

    /// [`children_then_end`](super::children_then_end) while it can load
    /// what it looks at without checking for the end of the input: returns
    /// where it stopped (at a `<` or at text, as it was given), or `None` for
    /// content not of the plain shape.
    #[inline(always)]
    pub(super) fn children(
        xml: &[u8],
        mut at: usize,
        open: &mut [u32; super::MAX_DEPTH],
        depth: &mut usize,
    ) -> Option<usize> {
        use super::{MAX_DEPTH, NAME_BITS};
        // Text and start tags look at the 18 bytes from `at`.
        while let Some(window) = xml.get(at..at + 18) {
            let window: &[u8; 18] = window.try_into().ok()?;
            if window[0] != b'<' {
                // SAFETY: SSE2 arithmetic on a register (see the module's note).
                let text = unsafe { outside_text(load_slice(&window[..16])) };
                let len = (text | 1 << 16).trailing_zeros() as usize;
                at = if len < 16 { at + len } else { super::scan::<{ super::TEXT }>(xml, at + 16) };
                if xml.get(at) != Some(&b'<') {
                    return None;
                }
                continue;
            }
            if window[1] == b'/' {
                if *depth == 0 {
                    break;
                }
                let packed = open[(*depth - 1) % MAX_DEPTH];
                let (name, len) = ((packed >> NAME_BITS) as usize, (packed & ((1 << NAME_BITS) - 1)) as usize);
                // The name and `>`, compared with the start tag's (before `at`).
                let (Some(earlier), true) = (xml.get(name..name + 16), len <= 16) else { break };
                // SAFETY: SSE2 arithmetic on registers (see the module's note).
                let equal = unsafe { equal_bytes(load_slice(earlier), load_slice(&window[2..18])) };
                let wanted = (1u32 << len) - 1;
                if equal & wanted != wanted {
                    return None;
                }
                *depth -= 1;
                at += 2 + len;
                continue;
            }
            let x = load_slice(&window[1..17]);
            // SAFETY: SSE2 arithmetic on a register (see the module's note).
            let (outside, text) = unsafe { (outside_name::<false>(x), outside_text(x)) };
            let len = (outside | 1 << 16).trailing_zeros() as usize;
            if len >= 16 || !super::starts_name(window[1]) {
                // A long name, or no name: the careful loop decides.
                break;
            }
            match window[1 + len] {
                b'>' if *depth < MAX_DEPTH => {
                    let packed = (((at + 1) as u32) << NAME_BITS) | (len as u32 + 1);
                    // The text after the `>`: where it ends, when in these 16
                    // bytes, or else in the 16 that follow them.
                    let text = ((text | 1 << 16) >> (len + 1)).trailing_zeros() as usize;
                    at += 1 + len + 1 + text;
                    if len + 1 + text == 16 {
                        if let Some(more) = xml.get(at..at + 16) {
                            // SAFETY: SSE2 arithmetic on a register (see the module's note).
                            let text = unsafe { outside_text(load_slice(more)) };
                            at += (text | 1 << 16).trailing_zeros() as usize;
                        }
                    }
                    // A leaf, closed right after its text, is closed here: its
                    // name is still in `x`, and it never goes on the stack.
                    if xml.get(at..at + 2) == Some(b"</") {
                        match closes(xml, at, packed, x) {
                            Some(true) => {
                                at += 2 + len + 1;
                                continue;
                            }
                            Some(false) => {}
                            None => return None,
                        }
                    }
                    open[*depth] = packed;
                    *depth += 1;
                }
                b'/' if window[2 + len] == b'>' => at += len + 3,
                b'>' => break,
                _ => return None,
            }
        }
        // End tags go on to the end of the input.
        while xml.get(at..at + 2) == Some(b"</") && *depth > 0 && end_tag(xml, at, open[(*depth - 1) % MAX_DEPTH])? {
            *depth -= 1;
            at += 2 + (open[*depth % MAX_DEPTH] & ((1 << NAME_BITS) - 1)) as usize;
        }
        if *depth == 0 && xml.len() == at + 8 && xml[at..] == *b"</event>" {
            return Some(COMPLETE);
        }
        Some(at)
    }

    /// Whether the end tag at `at` closes the element `packed`, whose name
    /// and `>` are the first bytes of `name`: [`end_tag`]'s answers. The
    /// bytes after `</` are compared with `name` when 16 of them are there,
    /// else as [`end_tag`] compares them.
    #[inline(always)]
    fn closes(xml: &[u8], at: usize, packed: u32, name: __m128i) -> Option<bool> {
        let len = (packed & ((1 << super::NAME_BITS) - 1)) as usize;
        let Some(here) = xml.get(at + 2..at + 18) else { return end_tag(xml, at, packed) };
        // SAFETY: SSE2 arithmetic on registers (see the module's note).
        let equal = unsafe { equal_bytes(name, load_slice(here)) };
        let wanted = (1u32 << len) - 1;
        (equal & wanted == wanted).then_some(true)
    }

    /// What [`children`] returns for content that ends with the root's end tag.
    pub(super) const COMPLETE: usize = usize::MAX;

    /// Whether the end tag at `at` closes the element `packed` in the open
    /// stack: `Some(false)` when the careful loop must decide, `None` when it
    /// does not close it. The name and `>` are compared with the 16 bytes
    /// that end with them in each tag: they never go past the end of the
    /// input, and never before its start (the root's start tag comes first).
    #[inline(always)]
    fn end_tag(xml: &[u8], at: usize, packed: u32) -> Option<bool> {
        use super::NAME_BITS;
        let (name, len) = ((packed >> NAME_BITS) as usize, (packed & ((1 << NAME_BITS) - 1)) as usize);
        let end = at + 2 + len;
        let (Some(earlier), Some(here), true) =
            (xml.get((name + len).wrapping_sub(16)..name + len), xml.get(end.wrapping_sub(16)..end), len <= 16)
        else {
            return Some(false);
        };
        // SAFETY: SSE2 arithmetic on registers (see the module's note).
        let equal = unsafe { equal_bytes(load_slice(earlier), load_slice(here)) };
        let wanted = 0xffff_u32 << (16 - len) & 0xffff;
        (equal & wanted == wanted).then_some(true)
    }

    /// One bit for each byte that `x` and `y` have in common.
    #[inline(always)]
    unsafe fn equal_bytes(x: __m128i, y: __m128i) -> u32 {
        _mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) as u32
    }
}

/// Eight bytes at a time in a `u64` (SWAR): for processors without SSE2,
/// and for comparisons near the end of the input.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
mod swar {
    /// How many bytes [`first_outside`] looks at.
    pub(super) const LEN: usize = 8;

    /// The offset of the first of the 8 bytes at `at` outside `CLASS`, or 8.
    #[inline(always)]
    pub(super) fn first_outside<const CLASS: u8>(xml: &[u8], at: usize) -> usize {
        let w = word(xml, at);
        let marks = match CLASS {
            super::TEXT => outside_text(w),
            super::DIGITS => outside_digits(w),
            super::TYPE => outside_name::<true>(w),
            _ => outside_name::<false>(w),
        };
        (marks.trailing_zeros() / 8) as usize
    }

    /// For a name at `at`: its length, and [`LEN`] (the text after it is
    /// scanned on its own).
    #[inline(always)]
    pub(super) fn name_then_text(xml: &[u8], at: usize) -> (usize, usize) {
        (super::scan::<{ super::NAME }>(xml, at) - at, LEN)
    }

    /// Whether the `len` bytes at `a` and at `b` are the same (`len` at
    /// least 2): a few overlapping word compares, no call to memcmp.
    pub(super) fn same(xml: &[u8], a: usize, b: usize, len: usize) -> bool {
        let (Some(x), Some(y)) = (xml.get(a..a + len), xml.get(b..b + len)) else { return false };
        if len >= 8 {
            let mut i = 0;
            while i + 8 < len {
                if load8(x, i) != load8(y, i) {
                    return false;
                }
                i += 8;
            }
            load8(x, len - 8) == load8(y, len - 8)
        } else if len >= 4 {
            load4(x, 0) == load4(y, 0) && load4(x, len - 4) == load4(y, len - 4)
        } else {
            x.first() == y.first() && x.get(1) == y.get(1) && x.get(len - 1) == y.get(len - 1)
        }
    }

    fn load8(bytes: &[u8], at: usize) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    }

    fn load4(bytes: &[u8], at: usize) -> u32 {
        let mut word = [0u8; 4];
        word.copy_from_slice(&bytes[at..at + 4]);
        u32::from_le_bytes(word)
    }

    /// The eight bytes of `xml` at `at`, little-endian (the first byte
    /// lowest); past the end, zero bytes, which are in no class.
    #[inline(always)]
    fn word(xml: &[u8], at: usize) -> u64 {
        match xml.get(at..at + 8) {
            Some(bytes) => load8(bytes, 0),
            None => tail_word(xml, at),
        }
    }

    #[cold]
    fn tail_word(xml: &[u8], at: usize) -> u64 {
        let mut word = [0u8; 8];
        let rest = xml.get(at..).unwrap_or_default();
        word[..rest.len()].copy_from_slice(rest);
        u64::from_le_bytes(word)
    }

    /// `b` in every byte.
    const fn splat(b: u8) -> u64 {
        0x0101_0101_0101_0101 * b as u64
    }

    const HIGH: u64 = splat(0x80);

    /// For words of 7-bit bytes: the bytes that are at least `c` (1 to 128),
    /// marked by their high bit. Exact in every byte: no sum crosses a byte.
    #[inline(always)]
    fn at_least(low: u64, c: u8) -> u64 {
        low + splat(0x80 - c)
    }

    /// The bytes outside the text class, marked by their high bit (the first
    /// mark is exact; those after it may not be, as borrows and carries
    /// spread from it).
    #[inline(always)]
    fn outside_text(w: u64) -> u64 {
        let control = w.wrapping_sub(splat(0x20)) & !w;
        let high_or_del = w.wrapping_add(splat(0x01)) | w;
        let angle = (w | splat(0x02)) ^ splat(b'>'); // zero for '<' and '>'
        let amp = w ^ splat(b'&');
        let zero = |t: u64| t.wrapping_sub(splat(0x01)) & !t;
        (control | high_or_del | zero(angle) | zero(amp)) & HIGH
    }

    /// The bytes outside the name characters (with `COLON`, and `:`), marked
    /// by their high bit, exactly.
    #[inline(always)]
    fn outside_name<const COLON: bool>(w: u64) -> u64 {
        let low = w & !HIGH;
        // Lower case folds letters together; it also folds controls onto
        // `-`, `.` and digits, which `control` refuses again.
        let folded = low | splat(0x20);
        let punctuation = at_least(folded, b'-') ^ at_least(folded, b'/'); // - .
        let digits = at_least(folded, b'0') ^ at_least(folded, if COLON { b';' } else { b':' });
        let letters = at_least(folded, b'a') ^ at_least(folded, b'{');
        let underscore = !((low ^ splat(b'_')) + splat(0x7f));
        let control = !at_least(low, 0x20);
        !(punctuation | digits | letters | underscore) & HIGH | (w | control) & HIGH
    }

    #[inline(always)]
    fn outside_digits(w: u64) -> u64 {
        let low = w & !HIGH;
        !(at_least(low, b'0') ^ at_least(low, b':')) & HIGH | w & HIGH
    }
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
        let namespaced = (namespaced_ok, namespaced_refused);
        assert!(namespaced.0 > 5_000 && namespaced.1 > 5_000, "namespaced (valid, not): {namespaced:?}");
    }

    /// Shapes near the edges of the quicker loops: names and text across
    /// 16-byte chunks, near the end of the input, at the depth limit.
    #[test]
    fn the_fast_path_takes_long_names_and_texts_and_deep_documents() {
        let names = |len: usize| ["n", "N", "_", ".", "-", "9"].iter().cycle().take(len).copied().collect::<String>();
        let mut taken = Vec::new();
        for len in 1..=40 {
            let (name, text) = (names(len), "t ".repeat(len));
            taken.push(format!("<event type=\"t\"><{name}>{text}</{name}><{name}/><{name}></{name}></event>"));
            taken.push(format!("<event type=\"t\" timestamp=\"1\"><a><{name}>{text}</{name}></a></event>"));
            let (timestamp, kind) = ("1".repeat(len), "k:".repeat(len));
            taken.push(format!("<event timestamp=\"{timestamp}.5\" type=\"{kind}\"><{name}/></event>"));
        }
        taken.push(format!("<event type=\"t\">{}x{}</event>", "<ab>".repeat(32), "</ab>".repeat(32)));
        for xml in &taken {
            let fast = parse(xml.as_bytes()).unwrap_or_else(|| panic!("not taken: {xml}"));
            assert_eq!(unstamped(&fast), unstamped(&full_parse(xml).expect(xml)), "{xml}");
        }
        let refused = [
            format!("<event type=\"t\">{}{}</event>", "<a>".repeat(33), "</a>".repeat(33)),
            "<event type=\"t\"><abcdefghijklmnopq>x</abcdefghijklmnopr></event>".to_string(),
            "<event type=\"t\"><abcdefghijklmnop>x</abcdefghijklmnopq></event>".to_string(),
            "<event type=\"t\"><a>x</a><b></event>".to_string(),
            "<event type=\"t\"><a>x</a></b></event>".to_string(),
            "<event type=\"t\"><1a></1a></event>".to_string(),
        ];
        for xml in &refused {
            assert!(parse(xml.as_bytes()).is_none(), "{xml}");
        }
    }

    /// The SWAR scans, which other processors use, find the same bytes as
    /// the SSE2 ones (and `same` agrees with slice equality).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn swar_and_sse2_scans_agree() {
        const INTERESTING: &[u8] = b"\x00\x01\x1f \t\n!\"&'-./09:;<=>?@AZ[\\]^_`az{|}~\x7f\x80\xbf\xc3\xef\xff";
        let mut rng = Rng(0x5eed_5a1d_0000_0002);
        for _ in 0..200_000 {
            let len = 1 + rng.below(48);
            let bytes: Vec<u8> = (0..len)
                .map(|_| if rng.below(4) == 0 { rng.next() as u8 } else { INTERESTING[rng.below(INTERESTING.len())] })
                .collect();
            let at = rng.below(len + 1);
            // The SSE2 loads need 16 bytes of input (shorter events never take the fast path).
            if len < 16 {
                continue;
            }
            let check = |sse2: usize, swar: usize, class: &str| {
                assert_eq!(sse2.min(super::swar::LEN), swar, "{class} at {at} of {bytes:?}");
            };
            use super::{sse2, swar};
            check(sse2::first_outside::<TEXT>(&bytes, at), swar::first_outside::<TEXT>(&bytes, at), "text");
            check(sse2::first_outside::<NAME>(&bytes, at), swar::first_outside::<NAME>(&bytes, at), "name");
            check(sse2::first_outside::<TYPE>(&bytes, at), swar::first_outside::<TYPE>(&bytes, at), "type");
            check(sse2::first_outside::<DIGITS>(&bytes, at), swar::first_outside::<DIGITS>(&bytes, at), "digits");
            let (a, b) = (rng.below(len), rng.below(len));
            let n = 1 + rng.below(20);
            let (a, b) = (a.min(b), a.max(b));
            if a < b && b + n <= len {
                let want = bytes[a..a + n] == bytes[b..b + n];
                assert_eq!(super::sse2::same(&bytes, a, b, n), want, "{a} {b} {n} {bytes:?}");
                if n >= 2 {
                    assert_eq!(super::swar::same(&bytes, a, b, n), want, "{a} {b} {n} {bytes:?}");
                }
            }
        }
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
