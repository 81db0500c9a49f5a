//! Events: validation of emitted XML, its canonical one-line form, and the shared,
//! immutable [`Event`] that every consumer receives.
//!
//! An event is parsed once, when it is emitted. The canonical text is stored once,
//! NUL-terminated so that C handlers get it without a copy, behind an `Arc` shared by
//! every handler and stream that receives it.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use quick_xml::events::attributes::{Attribute, Attributes};
use quick_xml::events::{BytesRef, BytesStart, Event as XmlEvent};
use quick_xml::Reader;

use crate::error::{Error, ErrorCode, Result};
use crate::xpath::Tree;

mod fast;

/// The largest event XML accepted by [`parse`], in bytes.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// An event as consumers receive it: its `seq`, its type and its canonical XML.
/// Cloning shares the same bytes.
#[derive(Clone)]
pub struct Event(Arc<Stored>);

struct Stored {
    seq: u64,
    /// Where the `type` value sits in `text` (types are name characters, never escaped).
    kind: (u32, u32),
    /// The canonical XML followed by one NUL byte.
    text: String,
    /// The tree XPath filters evaluate, built by the first that needs it.
    tree: OnceLock<Box<Tree>>,
}

impl Event {
    /// The connection-assigned sequence number (0 for `events-lost`, which is no
    /// emitted event).
    pub fn seq(&self) -> u64 {
        self.0.seq
    }

    /// The value of the `type` attribute.
    pub fn kind(&self) -> &str {
        let (start, end) = self.0.kind;
        &self.xml()[start as usize..end as usize]
    }

    /// The canonical one-line XML.
    pub fn xml(&self) -> &str {
        &self.0.text[..self.0.text.len() - 1]
    }

    /// The event's tree for XPath filters, built on first use and then shared
    /// by every handler and stream that looks at the event.
    pub fn tree(&self) -> &Tree {
        self.0.tree.get_or_init(|| Box::new(Tree::build(self.xml())))
    }

    /// The canonical XML as a C string, borrowed from the event.
    pub fn as_c_str(&self) -> &CStr {
        // SAFETY: `Draft::seal` appends the only NUL; XML text holds no NUL byte
        // (`parse` refuses control characters, and char references to U+0000).
        unsafe { CStr::from_bytes_with_nul_unchecked(self.0.text.as_bytes()) }
    }

    /// The `events-lost` notice for `count` events dropped for one consumer, the
    /// first and last of them with seqs `first` and `last`.
    pub fn lost(count: u64, first: u64, last: u64) -> Event {
        let mut text = String::with_capacity(128);
        text.push_str("<event type=\"events-lost\" timestamp=\"");
        text.push_str(&now_timestamp());
        let seq_at = text.len() + 1;
        text.push_str(&format!("\" count=\"{count}\" first-seq=\"{first}\" last-seq=\"{last}\"/>"));
        let kind = (13, 13 + "events-lost".len());
        Draft { text, seq_at, kind, lined: false }.seal(0)
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Event").field(&self.xml()).finish()
    }
}

/// A validated event waiting for its `seq`: the canonical text without it, and
/// where ` seq="N"` goes. The connection seals it under the lock that orders its queue.
#[derive(Debug)]
pub struct Draft {
    text: String,
    seq_at: usize,
    kind: (usize, usize),
    /// Whether `text` is a stream's line already: sealed, and a newline after.
    lined: bool,
}

impl Draft {
    /// The event's type.
    pub fn kind(&self) -> &str {
        &self.text[self.kind.0..self.kind.1]
    }

    /// The final event, with `seq` written into its root element (in place: the
    /// draft reserved room for it).
    pub fn seal(mut self, seq: u64) -> Event {
        self.seal_out(seq)
    }

    /// [`Draft::seal`] that leaves an empty draft behind.
    pub(crate) fn seal_out(&mut self, seq: u64) -> Event {
        let mut text = std::mem::take(&mut self.text);
        if self.lined {
            text.pop();
        } else {
            text.insert_str(self.seq_at, SeqAttribute::new(seq).as_str());
        }
        text.push('\0');
        let kind = (self.kind.0 as u32, self.kind.1 as u32);
        Event(Arc::new(Stored { seq, kind, text, tree: OnceLock::new() }))
    }

    /// The line a stream writes of the event sealed with `seq`: its canonical
    /// text and a newline, made in place (once), without making the event.
    pub(crate) fn line(&mut self, seq: u64) -> &[u8] {
        if !self.lined {
            self.text.insert_str(self.seq_at, SeqAttribute::new(seq).as_str());
            self.text.push('\n');
            self.lined = true;
        }
        self.text.as_bytes()
    }
}

/// A draft's text goes back to its thread's spare when the draft is dropped
/// unsealed (written to streams only): the next draft then needs no allocation.
impl Drop for Draft {
    fn drop(&mut self) {
        if self.text.capacity() > 0 && self.text.capacity() <= SPARE_MAX {
            let text = std::mem::take(&mut self.text);
            // A thread that is exiting has no spare any more: the text is freed.
            let _ = SPARE.try_with(|spare| spare.set(text));
        }
    }
}

/// The largest buffer a thread keeps for its next draft.
const SPARE_MAX: usize = 8192;

thread_local! {
    static SPARE: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

/// An empty text with room for `capacity` bytes, the thread's spare if it has one.
pub(crate) fn text_buffer(capacity: usize) -> String {
    let mut text = SPARE.try_with(|spare| spare.take()).unwrap_or_default();
    text.clear();
    text.reserve(capacity);
    text
}

/// ` seq="N"`, formatted without allocating (this runs under the hub's lock).
struct SeqAttribute {
    buf: [u8; 27],
    len: usize,
}

impl SeqAttribute {
    fn new(seq: u64) -> SeqAttribute {
        let digits = Decimal::new(seq);
        let digits = digits.as_str().as_bytes();
        let mut buf = [0u8; 27];
        buf[..6].copy_from_slice(b" seq=\"");
        buf[6..6 + digits.len()].copy_from_slice(digits);
        buf[6 + digits.len()] = b'"';
        SeqAttribute { buf, len: 7 + digits.len() }
    }

    fn as_str(&self) -> &str {
        ascii(&self.buf[..self.len])
    }
}

/// An unsigned integer in decimal, formatted on the stack, without the
/// formatting machinery: seqs are formatted under the hub's lock, and drivers
/// format ids and offsets for every event.
struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    fn new(mut n: u64) -> Decimal {
        // Two digits per division.
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        while n >= 100 {
            let pair = (n % 100) as usize * 2;
            n /= 100;
            start -= 2;
            digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if n >= 10 {
            let pair = n as usize * 2;
            start -= 2;
            digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            start -= 1;
            digits[start] = b'0' + n as u8;
        }
        Decimal { digits, start }
    }

    fn as_str(&self) -> &str {
        ascii(&self.digits[self.start..])
    }
}

/// The current time as decimal seconds since the epoch with microseconds.
pub fn now_timestamp() -> String {
    timestamp_of(SystemTime::now())
}

/// `time` as an event's `timestamp` writes it: decimal seconds since the
/// epoch with six digits of microseconds.
pub fn timestamp_of(time: SystemTime) -> String {
    let mut text = String::with_capacity(24);
    push_time(&mut text, time);
    text
}

fn push_now(out: &mut String) {
    push_time(out, SystemTime::now());
}

fn push_time(out: &mut String, time: SystemTime) {
    let now = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    push_int(out, now.as_secs() as i64);
    out.push('.');
    let mut micros = now.subsec_micros();
    let mut digits = [b'0'; 6];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    out.push_str(ascii(&digits));
}

/// ASCII bytes as text.
fn ascii(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: callers pass ASCII (digits, signs, ` seq="`), which is UTF-8.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// Appends `n` in decimal.
fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    out.push_str(Decimal::new(n.unsigned_abs()).as_str());
}

/// The bytes a text must escape or check: markup, controls, and 0xEF (the first
/// byte of U+FFFE and U+FFFF).
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'&' as usize] = true;
    table[0xEF] = true;
    table
};

/// An element's start and end tags, spelled out once at compile time by
/// [`tag!`](crate::tag): `tag!("domain-name")`.
#[derive(Clone, Copy, Debug)]
pub struct Tag {
    /// `<name>`.
    pub open: &'static str,
    /// `</name>`.
    pub close: &'static str,
}

/// The [`Tag`] of the element `name` (a literal XML name).
#[macro_export]
macro_rules! tag {
    ($name:literal) => {
        $crate::event::Tag { open: concat!("<", $name, ">"), close: concat!("</", $name, ">") }
    };
}

/// A driver's event written straight in canonical form, exactly what [`parse`]
/// would make of it, without parsing it: drivers emit many events, and their
/// content needs no checking, only escaping.
pub struct Builder {
    text: String,
    seq_at: usize,
    kind: (usize, usize),
}

impl Builder {
    /// `<event type="KIND" timestamp="NOW">`; `kind` is made of name characters.
    pub fn new(kind: &str) -> Builder {
        debug_assert!(is_type_name(kind), "{kind}");
        // Room for a domain event and the seq and NUL that sealing adds.
        let mut text = text_buffer(448);
        text.push_str("<event type=\"");
        let kind_at = text.len();
        text.push_str(kind);
        let kind = (kind_at, text.len());
        text.push_str("\" timestamp=\"");
        push_now(&mut text);
        text.push('"');
        let seq_at = text.len();
        text.push('>');
        Builder { text, seq_at, kind }
    }

    /// Appends `<name>text</name>`, the text escaped as the canonical form
    /// writes it; characters XML cannot carry at all (most C0 controls, from a
    /// daemon's names, say) become U+FFFD.
    pub fn text(&mut self, tag: Tag, text: &str) -> &mut Builder {
        self.text.push_str(tag.open);
        self.push_text(text);
        self.text.push_str(tag.close);
        self
    }

    /// Appends `text`, escaped as [`Builder::text`] says.
    fn push_text(&mut self, text: &str) {
        if text.bytes().any(|b| SPECIAL[usize::from(b)]) {
            for c in text.chars() {
                match c {
                    '\t' => self.text.push(c),
                    c if !is_xml_char(c) => self.text.push(char::REPLACEMENT_CHARACTER),
                    c => push_escaped_char(&mut self.text, c, false),
                }
            }
        } else {
            self.text.push_str(text);
        }
    }

    /// Appends `<name>` with `parts` joined as its text: the library's own
    /// words (states, reasons, UUIDs), made of name characters, which need no
    /// escaping and are not looked at.
    pub fn known(&mut self, tag: Tag, parts: &[&str]) -> &mut Builder {
        self.text.push_str(tag.open);
        for part in parts {
            debug_assert!(part.bytes().all(is_type_char), "{part}");
            self.text.push_str(part);
        }
        self.text.push_str(tag.close);
        self
    }

    /// Opens `<name>` for nested elements (a graphics event's addresses, say);
    /// [`Builder::close`] ends it.
    pub fn open(&mut self, tag: Tag) -> &mut Builder {
        self.text.push_str(tag.open);
        self
    }

    /// Appends `</name>`, ending what [`Builder::open`] began.
    pub fn close(&mut self, tag: Tag) -> &mut Builder {
        self.text.push_str(tag.close);
        self
    }

    /// Appends `<param name="NAME" type="TYPE">VALUE</param>`: one of libvirt's
    /// typed parameters. `type_name` and `value` are the library's own words
    /// and numbers; `name` comes from the daemon and is escaped.
    pub fn param(&mut self, name: &str, type_name: &str, value: &str) -> &mut Builder {
        self.text.push_str("<param name=\"");
        for c in name.chars() {
            push_escaped_char(&mut self.text, if is_xml_char(c) { c } else { char::REPLACEMENT_CHARACTER }, true);
        }
        self.text.push_str("\" type=\"");
        self.text.push_str(type_name);
        self.text.push_str("\">");
        self.push_text(value);
        self.text.push_str("</param>");
        self
    }

    /// Appends `<name>n</name>`.
    pub fn number(&mut self, tag: Tag, n: i64) -> &mut Builder {
        self.text.push_str(tag.open);
        push_int(&mut self.text, n);
        self.text.push_str(tag.close);
        self
    }

    /// Appends `<name>n</name>` for an unsigned number (libvirt's `unsigned
    /// hyper`, which may not fit an `i64`).
    pub fn unsigned(&mut self, tag: Tag, n: u64) -> &mut Builder {
        self.text.push_str(tag.open);
        self.text.push_str(Decimal::new(n).as_str());
        self.text.push_str(tag.close);
        self
    }

    /// The finished event, ready for its seq.
    pub fn finish(mut self) -> Draft {
        self.text.push_str("</event>");
        Draft { text: self.text, seq_at: self.seq_at, kind: self.kind, lined: false }
    }
}

/// Whether `s` is a non-empty run of name characters: letters, digits, `-`, `_`,
/// `.`, `:` (what event types and type patterns are made of).
pub fn is_type_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_type_char)
}

/// A character allowed in event types and type patterns (besides `*`).
pub fn is_type_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')
}

fn xml_error(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::XmlError, message)
}

fn arg_error(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArg, message)
}

/// Validates event XML given as bytes (as C hands it over) and returns its draft.
pub fn parse_bytes(xml: &[u8]) -> Result<Draft> {
    check_size(xml.len())?;
    if let Some(draft) = fast::parse(xml) {
        return Ok(draft);
    }
    let text = std::str::from_utf8(xml).map_err(|e| {
        xml_error(format!("event XML is not UTF-8: invalid byte at offset {}", e.valid_up_to()))
    })?;
    parse(text)
}

fn check_size(len: usize) -> Result<()> {
    if len > MAX_EVENT_BYTES {
        return Err(xml_error(format!(
            "event XML is {len} bytes, larger than the limit of {MAX_EVENT_BYTES} bytes (1 MiB)"
        )));
    }
    Ok(())
}

/// Validates event XML and returns its draft: one well-formed document, root
/// `<event>` (unprefixed) with a `type` of name characters, an optional decimal
/// `timestamp` (stamped now when absent), no `seq`, no DOCTYPE, no processing
/// instruction, at most 1 MiB. It must also be well-formed with namespaces
/// (Namespaces in XML 1.0, as expat checks it): every prefix declared in scope
/// (`xml` always is), no `xmlns:p=""`, `xml` and `xmlns` used only as reserved,
/// names with at most one `:`, no two attributes with the same expanded name.
///
/// The canonical form keeps the elements, attributes (namespace declarations
/// among them) and character data of the document as written, drops the XML
/// declaration and comments, writes CDATA sections as escaped text, writes the
/// root's `type`, `timestamp` and `seq` first, and writes every line break as a
/// character reference, so the event is one line. Processing instructions are
/// refused rather than dropped: a PI's data may hold line breaks, which cannot be
/// written as references inside a PI, so it has no one-line form.
pub fn parse(xml: &str) -> Result<Draft> {
    check_size(xml.len())?;
    if let Some(draft) = fast::parse(xml.as_bytes()) {
        return Ok(draft);
    }
    full_parse(xml)
}

/// An event as a handler received it, read back: XML with the root's `seq`
/// (what a relay carried, or a stream's line without its newline), validated
/// as [`parse`] validates an emitted one, with that `seq` kept. A consumer of
/// events that crossed a bus filters and prints them with this, as a handler
/// would have. The `seq` must be the root's, among its first attributes as the
/// canonical form writes it; an event without one is refused.
pub fn parse_delivered(xml: &str) -> Result<Event> {
    let (at, len, seq) =
        root_seq(xml).ok_or_else(|| xml_error("a delivered event has a seq attribute on its root <event>"))?;
    let mut emitted = String::with_capacity(xml.len());
    emitted.push_str(&xml[..at]);
    emitted.push_str(&xml[at + len..]);
    Ok(parse(&emitted)?.seal(seq))
}

/// Where the root's ` seq="N"` is in `xml` (its offset and length) and N: the
/// attributes of the root's start tag, which opens the text as in every
/// delivered event, are read in order, quotes respected.
fn root_seq(xml: &str) -> Option<(usize, usize, u64)> {
    let bytes = xml.as_bytes();
    if !xml.starts_with("<event") || !bytes.get(6)?.is_ascii_whitespace() {
        return None;
    }
    let mut i = "<event".len();
    loop {
        let name_at = i;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let name_start = i;
        while i < bytes.len() && !matches!(bytes[i], b'=' | b'>' | b'/') && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if name_start == i || bytes.get(i) != Some(&b'=') {
            return None;
        }
        let name = &xml[name_start..i];
        let quote = *bytes.get(i + 1)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let value_start = i + 2;
        let value_len = xml[value_start..].find(quote as char)?;
        i = value_start + value_len + 1;
        if name == "seq" {
            let value = &xml[value_start..value_start + value_len];
            let seq = value.parse().ok().filter(|_| value.bytes().all(|b| b.is_ascii_digit()))?;
            return Some((name_at, i - name_at, seq));
        }
    }
}

/// [`parse`] by a full XML parser, for every shape of input.
fn full_parse(xml: &str) -> Result<Draft> {
    check_chars(xml)?;
    // Room for what the canonical form adds: a stamped timestamp, ` seq="N"`, NUL.
    let mut out = Canonical {
        text: text_buffer(xml.len() + 64),
        seq_at: 0,
        kind: (0, 0),
        ns: Namespaces::default(),
    };
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_comments = true;
    let mut depth = 0usize;
    let mut root_done = false;
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event().map_err(|e| {
            xml_error(format!("malformed event XML at byte {}: {e}", reader.error_position()))
        })?;
        match event {
            XmlEvent::Decl(_) if at != 0 => {
                return Err(xml_error(format!(
                    "an XML declaration <?xml ...?> at byte {at}: it may only begin the document"
                )))
            }
            XmlEvent::Decl(decl) => check_decl(&decl)?,
            XmlEvent::DocType(_) => {
                return Err(xml_error(format!(
                    "DOCTYPE at byte {at} is not allowed in event XML (no DTD, no entity declarations)"
                )))
            }
            XmlEvent::Comment(_) => {}
            XmlEvent::PI(pi) => {
                return Err(xml_error(format!(
                    "processing instruction <?{} ...?> at byte {at} is not allowed in event XML \
                     (the canonical form has no place for it: its data cannot be written on one line)",
                    pi.target()
                )))
            }
            XmlEvent::Start(start) | XmlEvent::Empty(start) if depth == 0 && root_done => {
                return Err(xml_error(format!("a second root element <{}> at byte {at}", name_of(&start))));
            }
            XmlEvent::Start(start) => {
                out.start(StartTag::of(xml, &start)?, depth, false)?;
                depth += 1;
            }
            XmlEvent::Empty(start) => {
                out.start(StartTag::of(xml, &start)?, depth, true)?;
                root_done |= depth == 0;
            }
            XmlEvent::End(end) => {
                out.text.push_str("</");
                out.text.push_str(end.name().as_ref());
                out.text.push('>');
                depth -= 1;
                out.ns.end(depth);
                root_done = depth == 0;
            }
            XmlEvent::Text(text) => {
                let raw: &str = &text;
                if depth == 0 {
                    if !raw.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
                        return Err(xml_error(format!("text outside the root element at byte {at}")));
                    }
                } else {
                    if raw.contains("]]>") {
                        return Err(xml_error(format!("']]>' in character data at byte {at}")));
                    }
                    out.text_content(raw, false);
                }
            }
            XmlEvent::CData(data) => {
                let raw: &str = &data;
                out.text_content(raw, true);
            }
            XmlEvent::GeneralRef(reference) => {
                if depth == 0 {
                    return Err(xml_error(format!("reference outside the root element at byte {at}")));
                }
                out.reference(&reference, at)?;
            }
            XmlEvent::Eof => break,
        }
    }
    if depth > 0 {
        return Err(xml_error(format!("event XML ends inside <{}>, which is not closed", innermost_open(xml))));
    }
    if !root_done {
        return Err(xml_error("event XML has no root element"));
    }
    Ok(Draft { text: out.text, seq_at: out.seq_at, kind: out.kind, lined: false })
}

/// A start tag as it stands in the document: its text between `<` and `>`
/// (or `/>`), borrowed from the document so that the names in it outlive the
/// parser's event, and where it is.
struct StartTag<'a> {
    /// The name, then the attributes as written.
    text: &'a str,
    name_len: usize,
    /// The byte offset of its `<`.
    at: usize,
}

impl<'a> StartTag<'a> {
    /// `start`, read from `xml` (quick-xml's events borrow the `&str` they are read from).
    fn of(xml: &'a str, start: &BytesStart) -> Result<StartTag<'a>> {
        let offset = (start.as_ptr() as usize).wrapping_sub(xml.as_ptr() as usize);
        let text = xml
            .get(offset..)
            .and_then(|rest| rest.get(..start.len()))
            .filter(|text| text.as_ptr() == start.as_ptr())
            .ok_or_else(|| xml_error("internal error: a start tag not found in the event XML"))?;
        Ok(StartTag { text, name_len: start.name().as_ref().len(), at: offset.saturating_sub(1) })
    }

    fn name(&self) -> &'a str {
        &self.text[..self.name_len]
    }

    fn attributes(&self) -> Attributes<'a> {
        Attributes::new(self.text, self.name_len)
    }

    /// Whether the tag has a `:` anywhere: only then can it use a prefix or
    /// declare one (`xmlns="..."` needs a `:` in its value to be refused).
    fn has_colon(&self) -> bool {
        self.text.as_bytes().contains(&b':')
    }
}

/// The innermost element left open at the end of `xml`: found again only for
/// the error message, so that parsing keeps no stack of names.
fn innermost_open(xml: &str) -> String {
    let mut reader = Reader::from_str(xml);
    let mut open = Vec::new();
    while let Ok(event) = reader.read_event() {
        match event {
            XmlEvent::Start(start) => open.push(start.name().as_ref().to_string()),
            XmlEvent::End(_) => drop(open.pop()),
            XmlEvent::Eof => break,
            _ => {}
        }
    }
    open.pop().unwrap_or_default()
}

fn name_of<'a>(start: &'a BytesStart<'a>) -> &'a str {
    start.name().into_inner()
}

/// Refuses characters XML 1.0 does not allow anywhere: C0 controls other than
/// tab, line feed and carriage return, and U+FFFE, U+FFFF. One branch-free pass
/// finds whether there is anything to look at; only then is it located.
fn check_chars(xml: &str) -> Result<()> {
    let suspect = xml.bytes().fold(false, |seen, b| {
        seen | ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r')) | (b == 0xEF)
    });
    if !suspect {
        return Ok(());
    }
    let bytes = xml.as_bytes();
    for (at, &b) in bytes.iter().enumerate() {
        if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') {
            return Err(xml_error(format!("character U+{b:04X} at byte {at} is not allowed in XML")));
        }
        if b == 0xEF && matches!(bytes.get(at + 1..at + 3), Some([0xBF, 0xBE | 0xBF])) {
            return Err(xml_error(format!("a noncharacter (U+FFFE or U+FFFF) at byte {at} is not allowed in XML")));
        }
    }
    Ok(())
}

fn check_decl(decl: &quick_xml::events::BytesDecl) -> Result<()> {
    let version = decl.version().map_err(|e| xml_error(format!("bad XML declaration: {e}")))?;
    if &*version != "1.0" {
        return Err(xml_error(format!("XML version {version} is not supported; event XML is XML 1.0")));
    }
    if let Some(encoding) = decl.encoding() {
        let encoding = encoding.map_err(|e| xml_error(format!("bad XML declaration: {e}")))?;
        let name = encoding.to_ascii_lowercase();
        if name != "utf-8" && name != "utf8" {
            return Err(xml_error(format!("encoding \"{name}\" is not allowed; event XML is UTF-8")));
        }
    }
    Ok(())
}

/// Whether `name` can be an XML name (a loose check of XML 1.0's Name production:
/// the ASCII rules exactly, any non-ASCII character allowed).
fn is_xml_name(name: &str) -> bool {
    let name = name.as_bytes();
    let Some(&first) = name.first() else { return false };
    let start_ok = first.is_ascii_alphabetic() || first == b'_' || first == b':' || first >= 0x80;
    start_ok
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':') || b >= 0x80)
}

/// The canonical text under construction.
struct Canonical<'a> {
    text: String,
    seq_at: usize,
    kind: (usize, usize),
    ns: Namespaces<'a>,
}

impl<'a> Canonical<'a> {
    fn root(&mut self, tag: StartTag<'a>, empty: bool) -> Result<()> {
        let name = tag.name();
        if name != "event" {
            return Err(xml_error(format!("the root element is <{name}>, not <event>")));
        }
        let namespaced = tag.has_colon();
        let mark = self.ns.open();
        let mut kind = None;
        let mut timestamp = None;
        let mut rest = String::new();
        for attr in tag.attributes() {
            let attr = attr.map_err(|e| xml_error(format!("bad attribute on <event>: {e}")))?;
            match attr.key.as_ref() {
                "type" => kind = Some(attribute_value(&attr)?),
                "timestamp" => timestamp = Some(attribute_value(&attr)?),
                "seq" => {
                    return Err(arg_error(format!(
                        "seq=\"{}\" given: the library assigns seq, leave it out",
                        attr.value
                    )))
                }
                _ => self.attribute(&mut rest, &attr, namespaced, &tag)?,
            }
        }
        if namespaced {
            self.ns.close(&tag, 0, empty, mark)?;
        }
        let kind = kind.ok_or_else(|| arg_error("<event> has no type attribute"))?;
        if !is_type_name(&kind) {
            return Err(arg_error(format!(
                "event type \"{kind}\" is not a run of name characters (letters, digits, '-', '_', '.', ':')"
            )));
        }
        let timestamp = match timestamp {
            Some(t) if is_decimal(&t) => t.into_owned(),
            Some(t) => {
                return Err(arg_error(format!(
                    "timestamp \"{t}\" is not decimal seconds since the epoch (like 1221756307.123456)"
                )))
            }
            None => now_timestamp(),
        };
        self.text.push_str("<event type=\"");
        self.kind.0 = self.text.len();
        self.text.push_str(&kind);
        self.kind.1 = self.text.len();
        self.text.push_str("\" timestamp=\"");
        self.text.push_str(&timestamp);
        self.text.push('"');
        self.seq_at = self.text.len();
        self.text.push_str(&rest);
        self.text.push_str(if empty { "/>" } else { ">" });
        Ok(())
    }

    /// A start tag at `depth` (`empty` for `<x/>`); the root's goes through [`Self::root`].
    fn start(&mut self, tag: StartTag<'a>, depth: usize, empty: bool) -> Result<()> {
        if depth == 0 {
            return self.root(tag, empty);
        }
        let name = tag.name();
        if !is_xml_name(name) {
            return Err(xml_error(format!("<{name}> is not a valid element name")));
        }
        self.text.push('<');
        self.text.push_str(name);
        if tag.text[tag.name_len..].bytes().all(|b| b.is_ascii_whitespace()) {
            if name.contains(':') {
                let mark = self.ns.open();
                self.ns.close(&tag, depth, empty, mark)?;
            }
            self.text.push_str(if empty { "/>" } else { ">" });
            return Ok(());
        }
        let namespaced = tag.has_colon();
        let mark = self.ns.open();
        // Written to while `self.ns` takes the attributes in: out of `self` meanwhile.
        let mut text = std::mem::take(&mut self.text);
        for attr in tag.attributes() {
            let attr = attr.map_err(|e| xml_error(format!("bad attribute on <{name}>: {e}")))?;
            self.attribute(&mut text, &attr, namespaced, &tag)?;
        }
        self.text = text;
        if namespaced {
            self.ns.close(&tag, depth, empty, mark)?;
        }
        self.text.push_str(if empty { "/>" } else { ">" });
        Ok(())
    }

    /// Whether the output, once `pending` is added, ends with `]]`.
    fn after_brackets(&self, pending: &str) -> bool {
        match pending.len() {
            0 => self.text.ends_with("]]"),
            1 => pending == "]" && self.text.ends_with(']'),
            _ => pending.ends_with("]]"),
        }
    }

    /// Writes an attribute to `out`, and tells the namespaces about it when
    /// the tag is `namespaced`.
    fn attribute(&mut self, out: &mut String, attr: &Attribute<'a>, namespaced: bool, tag: &StartTag<'a>) -> Result<()> {
        let key: &'a str = attr.key.into_inner();
        if !is_xml_name(key) {
            return Err(xml_error(format!("\"{key}\" is not a valid attribute name")));
        }
        let value = attribute_value(attr)?;
        if namespaced {
            self.ns.attribute(key, &value, tag)?;
        }
        write_attribute(out, key, &value);
        Ok(())
    }

    /// Character data: copied as written (quick-xml hands references over
    /// separately), every line break (CR LF, CR or LF, as XML reads them) written as
    /// `&#10;`; CDATA content is escaped as well. A `>` that would follow `]]`
    /// in the output (text after a CDATA section ending in `]]`) is escaped:
    /// `]]>` may not appear in character data.
    fn text_content(&mut self, raw: &str, cdata: bool) {
        let bytes = raw.as_bytes();
        let mut plain = 0;
        let mut i = 0;
        while i < bytes.len() {
            let (replacement, width) = match bytes[i] {
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => ("&#10;", 2),
                b'\r' | b'\n' => ("&#10;", 1),
                b'&' if cdata => ("&amp;", 1),
                b'<' if cdata => ("&lt;", 1),
                b'>' if cdata || self.after_brackets(&raw[plain..i]) => ("&gt;", 1),
                _ => {
                    i += 1;
                    continue;
                }
            };
            self.text.push_str(&raw[plain..i]);
            self.text.push_str(replacement);
            i += width;
            plain = i;
        }
        self.text.push_str(&raw[plain..]);
    }

    fn reference(&mut self, reference: &BytesRef, at: u64) -> Result<()> {
        let name: &str = reference;
        if reference.is_char_ref() {
            let c = reference
                .resolve_char_ref()
                .ok()
                .flatten()
                .filter(|&c| is_xml_char(c))
                .ok_or_else(|| xml_error(format!("&{name}; at byte {at} is not a character allowed in XML")))?;
            push_escaped_char(&mut self.text, c, false);
        } else if matches!(name, "lt" | "gt" | "amp" | "quot" | "apos") {
            self.text.push('&');
            self.text.push_str(name);
            self.text.push(';');
        } else {
            return Err(xml_error(format!(
                "undefined entity &{name}; at byte {at} (event XML knows only lt, gt, amp, quot, apos)"
            )));
        }
        Ok(())
    }
}

/// The namespace of the prefix `xml`, bound in every document.
const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of `xmlns` attributes, which nothing may be bound to.
const XMLNS_NAMESPACE: &str = "http://www.w3.org/2000/xmlns/";

/// Namespaces in XML 1.0 (third edition) well-formedness, as expat checks
/// it with namespace processing on: every prefix of an element or attribute
/// is declared on it or an ancestor (`xml` always is), `xmlns:p=""` is refused,
/// `xml` and `xmlns` keep their reserved meanings, names are QNames (at most
/// one `:`, with a name on either side), and no two attributes of an element
/// have the same namespace and local name. Default namespaces (`xmlns="u"`,
/// `xmlns=""`) need no tracking: they never apply to attributes, and no
/// element name is refused for being in one.
///
/// The declarations in scope are a stack, and a map from each prefix to its
/// innermost declaration, which remembers the one it shadows: a lookup costs
/// one hash whatever the depth or the number of declarations, and leaving an
/// element undoes its own declarations and nothing else. Tags without a `:`
/// (most of them) never reach it, and nothing is allocated before a document
/// declares a prefix or uses one on an attribute.
#[derive(Default)]
struct Namespaces<'a> {
    bindings: Vec<Binding<'a>>,
    innermost: HashMap<&'a str, usize>,
    /// The URIs of `bindings`, one after another.
    uris: String,
    /// The open elements that declared prefixes: their depth, and how many
    /// bindings there were before them.
    scopes: Vec<(usize, usize)>,
    /// The prefixed attributes of the tag being read, checked once all its
    /// declarations are known (they apply to the whole tag, in any order).
    prefixed: Vec<Prefixed<'a>>,
}

struct Binding<'a> {
    prefix: &'a str,
    uri: Range<usize>,
    /// The binding of the same prefix that this one hides until its element ends.
    shadows: Option<usize>,
}

/// A prefixed attribute name: `key`, its `:` at `colon`, the namespace of its prefix.
struct Prefixed<'a> {
    key: &'a str,
    colon: usize,
    uri: Uri,
}

/// A namespace a prefix is bound to.
#[derive(Clone, Copy)]
enum Uri {
    Xml,
    Binding(usize),
}

impl<'a> Namespaces<'a> {
    /// Begins a start tag; returns the mark to give [`Self::close`].
    fn open(&mut self) -> usize {
        self.prefixed.clear();
        self.bindings.len()
    }

    /// An attribute `key="value"` (the value with references resolved) of
    /// `tag`: a declaration is checked and takes effect, a prefixed name is
    /// checked at [`Self::close`].
    fn attribute(&mut self, key: &'a str, value: &str, tag: &StartTag<'a>) -> Result<()> {
        if key == "xmlns" {
            return Self::check_uri(None, value, tag);
        }
        let Some(colon) = key.find(':') else { return Ok(()) };
        check_qname(key, colon, || format!("attribute name {key} of <{}> at byte {}", tag.name(), tag.at))?;
        let (prefix, local) = (&key[..colon], &key[colon + 1..]);
        if prefix != "xmlns" {
            self.prefixed.push(Prefixed { key, colon, uri: Uri::Xml });
            return Ok(());
        }
        if local == "xmlns" {
            return Err(xml_error(format!(
                "xmlns:xmlns on <{}> at byte {} declares the prefix 'xmlns', which is reserved and never declared",
                tag.name(),
                tag.at
            )));
        }
        if value.is_empty() {
            return Err(xml_error(format!(
                "xmlns:{local}=\"\" on <{}> at byte {} undeclares the prefix '{local}', which only XML 1.1 allows",
                tag.name(),
                tag.at
            )));
        }
        Self::check_uri(Some(local), value, tag)?;
        if local == "xml" {
            // Its only allowed value, which it always has.
            return Ok(());
        }
        let start = self.uris.len();
        self.uris.push_str(value);
        let shadows = self.innermost.insert(local, self.bindings.len());
        self.bindings.push(Binding { prefix: local, uri: start..self.uris.len(), shadows });
        Ok(())
    }

    /// Refuses binding `prefix` (`None`: the default namespace) to `uri` when one
    /// of them is reserved.
    fn check_uri(prefix: Option<&str>, uri: &str, tag: &StartTag) -> Result<()> {
        let what = match prefix {
            Some(prefix) => format!("xmlns:{prefix} on <{}> at byte {} binds the prefix '{prefix}'", tag.name(), tag.at),
            None => format!("xmlns on <{}> at byte {} binds the default namespace", tag.name(), tag.at),
        };
        if prefix == Some("xml") && uri != XML_NAMESPACE {
            return Err(xml_error(format!("{what} to \"{uri}\": 'xml' is bound to {XML_NAMESPACE} only")));
        }
        if prefix != Some("xml") && uri == XML_NAMESPACE {
            return Err(xml_error(format!("{what} to {XML_NAMESPACE}, which belongs to the prefix 'xml' alone")));
        }
        if uri == XMLNS_NAMESPACE {
            return Err(xml_error(format!("{what} to {XMLNS_NAMESPACE}, which nothing may be bound to")));
        }
        Ok(())
    }

    /// Ends the start tag `tag` at `depth`, `mark` from [`Self::open`]: the
    /// prefixes of its name and attributes must be declared, its attributes'
    /// expanded names distinct. An empty element's declarations end here,
    /// another's at its end tag.
    fn close(&mut self, tag: &StartTag<'a>, depth: usize, empty: bool, mark: usize) -> Result<()> {
        let name = tag.name();
        if let Some(colon) = name.find(':') {
            check_qname(name, colon, || format!("element name <{name}> at byte {}", tag.at))?;
            let prefix = &name[..colon];
            if prefix == "xmlns" {
                return Err(xml_error(format!(
                    "<{name}> at byte {} has the prefix 'xmlns', which is reserved for namespace declarations",
                    tag.at
                )));
            }
            if self.resolve(prefix).is_none() {
                return Err(xml_error(format!(
                    "namespace prefix '{prefix}' of <{name}> at byte {} is not declared",
                    tag.at
                )));
            }
        }
        let mut prefixed = std::mem::take(&mut self.prefixed);
        for attr in &mut prefixed {
            let prefix = &attr.key[..attr.colon];
            attr.uri = self.resolve(prefix).ok_or_else(|| {
                xml_error(format!(
                    "namespace prefix '{prefix}' of attribute {} of <{name}> at byte {} is not declared",
                    attr.key, tag.at
                ))
            })?;
        }
        if prefixed.len() > 1 {
            fn expanded<'x>(ns: &'x Namespaces, attr: &'x Prefixed) -> (&'x str, &'x str) {
                (ns.uri(attr.uri), &attr.key[attr.colon + 1..])
            }
            prefixed.sort_unstable_by(|a, b| expanded(self, a).cmp(&expanded(self, b)));
            if let Some(pair) = prefixed.windows(2).find(|pair| expanded(self, &pair[0]) == expanded(self, &pair[1])) {
                let (a, b) = (&pair[0], &pair[1]);
                return Err(xml_error(format!(
                    "attributes {} and {} of <{name}> at byte {} are the same attribute: \
                     prefixes '{}' and '{}' are both bound to \"{}\"",
                    a.key,
                    b.key,
                    tag.at,
                    &a.key[..a.colon],
                    &b.key[..b.colon],
                    self.uri(a.uri)
                )));
            }
        }
        self.prefixed = prefixed;
        if self.bindings.len() > mark {
            if empty {
                self.pop_to(mark);
            } else {
                self.scopes.push((depth, mark));
            }
        }
        Ok(())
    }

    /// The end tag of the element at `depth`: its declarations end.
    fn end(&mut self, depth: usize) {
        if let Some(&(open, mark)) = self.scopes.last() {
            if open == depth {
                self.scopes.pop();
                self.pop_to(mark);
            }
        }
    }

    fn pop_to(&mut self, mark: usize) {
        while self.bindings.len() > mark {
            let Some(binding) = self.bindings.pop() else { break };
            match binding.shadows {
                Some(shadowed) => self.innermost.insert(binding.prefix, shadowed),
                None => self.innermost.remove(binding.prefix),
            };
            self.uris.truncate(binding.uri.start);
        }
    }

    /// What `prefix` is bound to here, if anything.
    fn resolve(&self, prefix: &str) -> Option<Uri> {
        if !self.bindings.is_empty() {
            if let Some(&binding) = self.innermost.get(prefix) {
                return Some(Uri::Binding(binding));
            }
        }
        (prefix == "xml").then_some(Uri::Xml)
    }

    fn uri(&self, uri: Uri) -> &str {
        match uri {
            Uri::Xml => XML_NAMESPACE,
            Uri::Binding(binding) => &self.uris[self.bindings[binding].uri.clone()],
        }
    }
}

/// Refuses `name`, which has its first `:` at `colon`, unless it is a QName:
/// one `:` between two names (the second one too starts like a name, as the
/// first already does). `what` names it for the message.
fn check_qname(name: &str, colon: usize, what: impl FnOnce() -> String) -> Result<()> {
    let local = &name.as_bytes()[colon + 1..];
    let local_ok = local.first().is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_' || b >= 0x80);
    if colon == 0 || !local_ok || local.contains(&b':') {
        return Err(xml_error(format!(
            "{} is not a qualified name: with namespaces a name has at most one ':', with a name on either side",
            what()
        )));
    }
    Ok(())
}

fn is_xml_char(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Writes one character of text (or, with `in_attribute`, of an attribute value)
/// so that it reads back as itself and stays on one line.
fn push_escaped_char(out: &mut String, c: char, in_attribute: bool) {
    match c {
        '\n' => out.push_str("&#10;"),
        '\r' => out.push_str("&#13;"),
        '\t' if in_attribute => out.push_str("&#9;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '&' => out.push_str("&amp;"),
        '"' if in_attribute => out.push_str("&quot;"),
        c => out.push(c),
    }
}

/// An attribute's value with references resolved and XML's attribute-value
/// normalization applied (literal tab and line breaks read as spaces).
fn attribute_value<'a>(attr: &Attribute<'a>) -> Result<std::borrow::Cow<'a, str>> {
    let raw: &str = &attr.value;
    if !raw.bytes().any(|b| matches!(b, b'&' | b'<' | b'\t' | b'\n' | b'\r')) {
        return Ok(attr.value.clone());
    }
    if raw.contains('<') {
        return Err(xml_error(format!("'<' in the value of attribute {}", key_of(attr))));
    }
    let value = attr
        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .map_err(|e| xml_error(format!("bad value of attribute {}: {e}", key_of(attr))))?;
    // The document's own characters were checked; a reference can still name
    // one XML refuses (`&#8;`), which the canonical form would write raw.
    match value.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(xml_error(format!(
            "the value of attribute {} refers to U+{:04X}, not a character allowed in XML",
            key_of(attr),
            c as u32
        ))),
        None => Ok(value),
    }
}

fn key_of<'a>(attr: &'a Attribute<'a>) -> &'a str {
    attr.key.as_ref()
}

/// Writes ` key="value"` with the value escaped for double quotes and one line.
fn write_attribute(out: &mut String, key: &str, value: &str) {
    out.push(' ');
    out.push_str(key);
    out.push_str("=\"");
    for c in value.chars() {
        push_escaped_char(out, c, true);
    }
    out.push('"');
}

/// Whether `s` is decimal seconds: digits, optionally a point and more digits.
fn is_decimal(s: &str) -> bool {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reference_to_a_character_xml_refuses_is_refused_in_an_attribute_too() {
        // Found by the `delivered` fuzz target: `&#08;` in an attribute was
        // written raw, and the event's own XML did not read back.
        for xml in [r#"<event type="x" timestamp="1" a="&#08;"/>"#, r#"<event type="x" timestamp="1"><p a="&#xFFFE;"/></event>"#] {
            let e = parse(xml).unwrap_err();
            assert_eq!(e.code, ErrorCode::XmlError, "{xml}");
            assert!(e.message.contains("not a character allowed in XML"), "{}", e.message);
        }
        let tab = parse(r#"<event type="x" timestamp="1" a="&#9;&#x10FFFF;"/>"#).unwrap().seal(1);
        assert_eq!(tab.xml(), "<event type=\"x\" timestamp=\"1\" seq=\"1\" a=\"&#9;\u{10FFFF}\"/>");
    }

    #[test]
    fn text_after_a_cdata_section_ending_in_brackets_never_writes_the_cdata_end() {
        // Found by the `delivered` fuzz target: `<![CDATA[x]]]]>>` read back
        // as `x]]` then `>`, written `x]]>`, which XML refuses.
        for (xml, text) in [
            ("<event type=\"x\" timestamp=\"1\"><![CDATA[x]]]]>></event>", "x]]&gt;"),
            ("<event type=\"x\" timestamp=\"1\"><![CDATA[x]]]>]></event>", "x]]&gt;"),
            ("<event type=\"x\" timestamp=\"1\"><a>]</a>></event>", "<a>]</a>>"),
        ] {
            let event = parse(xml).unwrap().seal(1);
            assert!(event.xml().contains(text), "{}", event.xml());
            assert!(parse_delivered(event.xml()).is_ok(), "{}", event.xml());
        }
    }

    #[test]
    fn a_delivered_event_reads_back_with_its_seq() {
        let sent = parse(r#"<event type="a-b" timestamp="5.5" x='1"2'><c>seq="9"</c></event>"#).unwrap().seal(42);
        let back = parse_delivered(sent.xml()).unwrap();
        assert_eq!((back.seq(), back.kind(), back.xml()), (42, "a-b", sent.xml()));
        // A seq written later among the root's attributes counts too.
        let later = parse_delivered(r#"<event type="t" timestamp="1" a="seq=&quot;3" seq="7"/>"#).unwrap();
        assert_eq!(later.seq(), 7);
        assert_eq!(later.xml(), r#"<event type="t" timestamp="1" seq="7" a="seq=&quot;3"/>"#);
    }

    #[test]
    fn a_delivered_event_without_a_root_seq_is_refused() {
        for xml in [
            r#"<event type="t" timestamp="1"/>"#,
            r#"<event type="t" timestamp="1"><c seq="1"/></event>"#,
            r#"<event type="t" timestamp="1" seq="-1"/>"#,
            r#"<event type="t" timestamp="1" seq="+1"/>"#,
            r#"<eventx type="t" seq="1"/>"#,
            r#" <event type="t" seq="1"/>"#,
            "",
        ] {
            let e = parse_delivered(xml).unwrap_err();
            assert_eq!(e.code, ErrorCode::XmlError, "{xml}");
        }
        // A second seq is what an emitter may not write.
        let e = parse_delivered(r#"<event type="t" seq="1" seq="2"/>"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArg);
    }

    use super::*;

    #[test]
    fn built_events_are_already_canonical() {
        let names = ["test", "a<b>&c", "line\nbreak\r\nand\rcr", "tab\there", "ctl\u{1}\u{ffff}x", "ünï €", ""];
        for name in names {
            let mut b = Builder::new("domain-x");
            b.number(crate::tag!("domain-id"), -1).text(crate::tag!("domain-name"), name);
            b.number(crate::tag!("big"), i64::MIN).number(crate::tag!("zero"), 0).unsigned(crate::tag!("u"), u64::MAX);
            b.known(crate::tag!("parts"), &["a", "-", "b", ""]);
            b.open(crate::tag!("outer")).text(crate::tag!("inner"), name).close(crate::tag!("outer"));
            b.param(name, "string", name).param("a\"b\tc", "ullong", "512");
            let built = b.finish();
            let reparsed = parse(&built.text).unwrap();
            assert_eq!(reparsed.text, built.text, "{name:?}");
            assert_eq!((reparsed.seq_at, reparsed.kind), (built.seq_at, built.kind), "{name:?}");
        }
        let event = Builder::new("t").finish().seal(5);
        assert!(event.xml().starts_with("<event type=\"t\" timestamp=\""), "{}", event.xml());
        assert!(event.xml().ends_with("\" seq=\"5\"></event>"), "{}", event.xml());
        assert_eq!(event.kind(), "t");
        let mut name = Builder::new("t");
        name.text(crate::tag!("n"), "a\u{1}b");
        let name = name.finish();
        assert!(name.text.contains("<n>a\u{fffd}b</n>"), "{}", name.text);
    }

    #[test]
    fn timestamps_keep_their_leading_zeros() {
        let t = now_timestamp();
        let (secs, micros) = t.split_once('.').unwrap();
        assert!(secs.len() >= 10 && micros.len() == 6 && is_decimal(&t), "{t}");
    }

    /// `xml` is valid and its draft is `xml` itself (it is written canonically).
    fn kept(xml: &str) {
        let draft = parse(xml).unwrap_or_else(|e| panic!("{xml}: {}", e.message));
        assert_eq!(draft.text, xml);
    }

    /// `xml` is refused as an XML error whose message holds every one of `parts`.
    fn refused(xml: &str, parts: &[&str]) {
        let Err(error) = parse(xml) else { panic!("accepted: {xml}") };
        assert_eq!(error.code, ErrorCode::XmlError, "{xml}: {}", error.message);
        for part in parts {
            assert!(error.message.contains(part), "{xml}: {:?} lacks {part:?}", error.message);
        }
    }

    #[test]
    fn bound_prefixes_and_default_namespaces_are_kept_as_written() {
        for xml in [
            r#"<event type="t" timestamp="1" xmlns:p="urn:a"><p:a p:x="1"><p:b/></p:a></event>"#,
            r#"<event type="t" timestamp="1"><a xmlns:p="urn:a"><p:b p:x="1"/></a></event>"#,
            // A declaration applies to the tag it is on, wherever it stands in it.
            r#"<event type="t" timestamp="1"><p:a p:x="1" xmlns:p="urn:a"/></event>"#,
            r#"<event type="t" timestamp="1" p:x="1" xmlns:p="urn:a"/>"#,
            r#"<event type="t" timestamp="1" xmlns:p="urn:a" p:type="other" p:timestamp="x" p:seq="y"/>"#,
            // Default namespaces, and undeclaring the default namespace.
            r#"<event type="t" timestamp="1" xmlns="urn:d"><a xmlns=""><b/></a></event>"#,
            r#"<event type="t" timestamp="1" xmlns=""/>"#,
            // `xml` is bound everywhere, and may be declared with its own namespace.
            r#"<event type="t" timestamp="1"><a xml:lang="en" xml:space="preserve"/><xml:b/></event>"#,
            r#"<event type="t" timestamp="1" xmlns:xml="http://www.w3.org/XML/1998/namespace"><a xml:lang="en"/></event>"#,
            // Redeclared inside: the inner binding, then the outer one again.
            r#"<event type="t" timestamp="1" xmlns:p="urn:a"><a xmlns:p="urn:b"><p:b/></a><p:c/></event>"#,
            // The same local name in different namespaces, or unprefixed.
            r#"<event type="t" timestamp="1" xmlns:p="urn:a" xmlns:q="urn:b"><a p:x="1" q:x="2" x="3"/></event>"#,
            r#"<event type="t" timestamp="1" xmlns:p="urn:a"><a xmlns:q="urn:a" p:x="1" q:y="2"/></event>"#,
            // Prefixes and URIs that only look reserved.
            r#"<event type="t" timestamp="1" xmlns:xmlfoo="urn:a" xmlns:Xml="urn:b"><xmlfoo:a Xml:x="1"/></event>"#,
            r#"<event type="t" timestamp="1" xmlns:p="http://www.w3.org/XML/1998/namespace/"/>"#,
            r#"<event type="t" timestamp="1" xmlns:p="http://www.w3.org/2000/xmlns"/>"#,
            r#"<event type="t" timestamp="1" xmlns:p="urn:a" p:xmlns="1" xmlnsfoo="2"/>"#,
            r#"<event type="t" timestamp="1" xmlns:é="urn:a"><é:a é:b="1"/></event>"#,
        ] {
            kept(xml);
        }
    }

    #[test]
    fn undeclared_prefixes_are_refused_by_name() {
        refused(r#"<event type="t"><p:a/></event>"#, &["namespace prefix 'p' of <p:a> at byte 16 is not declared"]);
        refused(r#"<event type="t"><a p:x="1"/></event>"#, &["'p'", "p:x", "<a>", "byte 16"]);
        refused(r#"<event type="t" p:x="1"/>"#, &["'p'", "p:x", "<event>", "byte 0"]);
        // Out of scope: a sibling's declaration, a child's, or one already ended.
        refused(r#"<event type="t"><a xmlns:p="u"/><p:b/></event>"#, &["'p'", "<p:b>", "byte 32"]);
        refused(r#"<event type="t"><p:a><b xmlns:p="u"/></p:a></event>"#, &["'p'", "<p:a>"]);
        refused(r#"<event type="t"><a xmlns:p="u"></a><b p:x=""/></event>"#, &["'p'", "p:x"]);
        refused(r#"<event type="t" xmlns:p="u"><q:a/></event>"#, &["'q'", "<q:a>"]);
        // The end tag's prefix is the start tag's: `</p:a>` alone cannot close `<p:a>`.
        refused(r#"<event type="t"><p:a></p:a></event>"#, &["'p'"]);
        // A prefix is not a default namespace.
        refused(r#"<event type="t" xmlns="urn:p"><p:a/></event>"#, &["'p'"]);
        // `xmlns` is no prefix of elements.
        refused(r#"<event type="t"><xmlns:a/></event>"#, &["'xmlns'", "<xmlns:a>", "byte 16"]);
    }

    #[test]
    fn undeclaring_a_prefix_is_refused() {
        refused(r#"<event type="t" xmlns:p=""/>"#, &["'p'", "xmlns:p=\"\"", "byte 0"]);
        refused(r#"<event type="t"><a xmlns:p="u"><b xmlns:p=""/></a></event>"#, &["'p'", "<b>", "byte 31"]);
    }

    #[test]
    fn reserved_prefixes_and_namespaces_keep_their_meaning() {
        let xml = "http://www.w3.org/XML/1998/namespace";
        let xmlns = "http://www.w3.org/2000/xmlns/";
        refused(r#"<event type="t" xmlns:xml="urn:x"/>"#, &["'xml'", "urn:x"]);
        refused(r#"<event type="t" xmlns:xml=""/>"#, &["'xml'"]);
        refused(&format!(r#"<event type="t" xmlns:xml="{xmlns}"/>"#), &["'xml'"]);
        refused(&format!(r#"<event type="t"><a xmlns:p="{xml}"/></event>"#), &["'p'", xml, "<a>", "byte 16"]);
        // The value is the one after references are resolved.
        refused(r#"<event type="t" xmlns:p="http://www.w3.org/XML/1998/namespac&#101;"/>"#, &["'p'", xml]);
        refused(&format!(r#"<event type="t" xmlns="{xml}"/>"#), &["default namespace", xml]);
        refused(&format!(r#"<event type="t" xmlns:xmlns="{xmlns}"/>"#), &["'xmlns'"]);
        refused(r#"<event type="t" xmlns:xmlns="urn:x"/>"#, &["'xmlns'"]);
        refused(&format!(r#"<event type="t" xmlns:p="{xmlns}"/>"#), &["'p'", xmlns]);
        refused(&format!(r#"<event type="t"><a xmlns="{xmlns}"/></event>"#), &["default namespace", xmlns]);
    }

    #[test]
    fn names_are_qualified_names() {
        let declared = r#"<event type="t" xmlns:a="urn:a" xmlns:p="urn:p">"#;
        for (inner, name) in [
            ("<:a/>", ":a"),
            ("<a:/>", "a:"),
            ("<a:b:c/>", "a:b:c"),
            ("<a::b/>", "a::b"),
            ("<a:1b/>", "a:1b"),
            ("<a:-b/>", "a:-b"),
            (r#"<x :y="1"/>"#, ":y"),
            (r#"<x p:="1"/>"#, "p:"),
            (r#"<x p:y:z="1"/>"#, "p:y:z"),
            (r#"<x xmlns:="urn:x"/>"#, "xmlns:"),
            (r#"<x xmlns:q:r="urn:x"/>"#, "xmlns:q:r"),
        ] {
            refused(&format!("{declared}{inner}</event>"), &[name, "qualified name", "byte 48"]);
        }
        refused(r#"<event type="t" xmlns:p:q="urn:x"/>"#, &["xmlns:p:q", "byte 0"]);
        // The root is `event`, unprefixed, even with its prefix declared.
        refused(r#"<e:event type="t" xmlns:e="urn:e"/>"#, &["<e:event>", "not <event>"]);
    }

    #[test]
    fn attributes_with_the_same_expanded_name_are_refused() {
        refused(
            r#"<event type="t" xmlns:p="urn:a" xmlns:q="urn:a"><a p:x="1" q:x="2"/></event>"#,
            &["p:x", "q:x", "'p'", "'q'", "urn:a", "<a>", "byte 48"],
        );
        refused(r#"<event type="t" xmlns:p="urn:a" xmlns:q="urn:a" p:x="1" q:x="2"/>"#, &["p:x", "q:x", "<event>"]);
        // Bound to the same URI through an inner declaration.
        refused(
            r#"<event type="t" xmlns:p="urn:a" xmlns:q="urn:b"><a xmlns:q="urn:a"><b q:x="1" p:x="2"/></a></event>"#,
            &["p:x", "q:x", "<b>"],
        );
        // Among many attributes.
        let many: String = (0..40).map(|i| format!(" p:a{i}=\"\" q:b{i}=\"\"")).collect();
        refused(&format!(r#"<event type="t" xmlns:p="u" xmlns:q="u"><a{many} q:a39=""/></event>"#), &["p:a39", "q:a39"]);
        kept(&format!(r#"<event type="t" timestamp="1" xmlns:p="u" xmlns:q="u"><a{many}/></event>"#));
    }

    /// Many declarations on one element and deep nesting, near the size
    /// limit: a lookup costs the same whatever the depth and the number of
    /// prefixes in scope.
    #[test]
    fn many_declarations_and_deep_nesting_take_linear_time() {
        let mut xml = String::from(r#"<event type="t" timestamp="1""#);
        for i in 0..12_000 {
            xml.push_str(&format!(r#" xmlns:p{i}="urn:{i}""#));
        }
        xml.push('>');
        let depth = 12_000;
        for i in 0..depth {
            xml.push_str(&format!(r#"<p{}:a xmlns:q="urn:q{i}" q:x="" p{i}:x="">"#, depth - 1 - i));
        }
        for i in 0..depth {
            xml.push_str(&format!("</p{i}:a>"));
        }
        xml.push_str("</event>");
        assert!(xml.len() > 600_000 && xml.len() <= MAX_EVENT_BYTES, "{}", xml.len());
        let started = std::time::Instant::now();
        let draft = parse(&xml).unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(draft.text, xml);
        // An unoptimised build takes well under a second; a quadratic scan of
        // the prefixes in scope would take minutes.
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
        // The same document with the last prefix used undeclared.
        let bad = xml.replacen("<p11999:a ", "<p12000:a ", 1);
        refused(&bad, &["'p12000'"]);
    }

    #[test]
    fn processing_instructions_are_refused_by_target() {
        refused(r#"<event type="t"><?pi x?></event>"#, &["<?pi ...?>", "byte 16", "processing instruction"]);
        refused(r#"<event type="t"><a>t<?pi?>u</a></event>"#, &["<?pi ...?>", "byte 20"]);
        refused(r#"<?pi?><event type="t"/>"#, &["<?pi ...?>", "byte 0"]);
        let stylesheet = r#"<?xml version="1.0"?><?xml-stylesheet href="a.css"?><event type="t"/>"#;
        refused(stylesheet, &["<?xml-stylesheet", "byte 21"]);
        refused(r#"<event type="t"/><?pi data?>"#, &["<?pi ...?>", "byte 17"]);
        refused("<event type=\"t\"/>\n<?pi line\nbreak?>\n", &["<?pi ...?>", "byte 18"]);
        refused(r#"<event type="t"><?XML version="1.0"?></event>"#, &["<?XML"]);
        // The XML declaration is no processing instruction, but belongs at the very start only.
        kept(r#"<event type="t" timestamp="1"/>"#);
        let declared = parse(r#"<?xml version="1.0"?><event type="t" timestamp="1"/>"#).unwrap();
        assert_eq!(declared.text, r#"<event type="t" timestamp="1"/>"#);
        assert_eq!(
            parse("\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<event type=\"t\" timestamp=\"1\"/>").unwrap().text,
            r#"<event type="t" timestamp="1"/>"#
        );
        refused(r#"<event type="t"><?xml version="1.0"?></event>"#, &["XML declaration", "byte 16"]);
        refused(r#" <?xml version="1.0"?><event type="t"/>"#, &["XML declaration", "byte 1"]);
        // Comments are still dropped.
        let commented = parse(r#"<!--a--><event type="t" timestamp="1"><!--b--></event><!--c-->"#).unwrap();
        assert_eq!(commented.text, r#"<event type="t" timestamp="1"></event>"#);
    }

    #[test]
    fn seq_attribute_formats_every_width() {
        for n in [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 12_345, 99_999, 100_000, 1 << 40, u64::MAX / 3, u64::MAX] {
            assert_eq!(Decimal::new(n).as_str(), n.to_string());
        }
        for n in 0..10_000 {
            assert_eq!(Decimal::new(n).as_str(), n.to_string());
        }
        assert_eq!(SeqAttribute::new(0).as_str(), " seq=\"0\"");
        assert_eq!(SeqAttribute::new(7).as_str(), " seq=\"7\"");
        assert_eq!(SeqAttribute::new(u64::MAX).as_str(), " seq=\"18446744073709551615\"");
    }
}
