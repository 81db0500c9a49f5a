//! Events: validation of emitted XML, its canonical one-line form, and the shared,
//! immutable [`Event`] that every consumer receives.
//!
//! An event is parsed once, when it is emitted. The canonical text is stored once,
//! NUL-terminated so that C handlers get it without a copy, behind an `Arc` shared by
//! every handler and stream that receives it.

use std::ffi::CStr;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use quick_xml::events::attributes::Attribute;
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
        Draft { text, seq_at, kind }.seal(0)
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
}

impl Draft {
    /// The event's type.
    pub fn kind(&self) -> &str {
        &self.text[self.kind.0..self.kind.1]
    }

    /// The final event, with `seq` written into its root element (in place: the
    /// draft reserved room for it).
    pub fn seal(mut self, seq: u64) -> Event {
        self.text.insert_str(self.seq_at, SeqAttribute::new(seq).as_str());
        self.text.push('\0');
        let kind = (self.kind.0 as u32, self.kind.1 as u32);
        Event(Arc::new(Stored { seq, kind, text: self.text, tree: OnceLock::new() }))
    }
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
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Decimal { digits, start }
    }

    fn as_str(&self) -> &str {
        ascii(&self.digits[self.start..])
    }
}

/// The current time as decimal seconds since the epoch with microseconds.
pub fn now_timestamp() -> String {
    let mut text = String::with_capacity(24);
    push_now(&mut text);
    text
}

fn push_now(out: &mut String) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
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
        let mut text = String::with_capacity(448);
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
        self.text.push_str(tag.close);
        self
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

    /// Appends `<name>n</name>`.
    pub fn number(&mut self, tag: Tag, n: i64) -> &mut Builder {
        self.text.push_str(tag.open);
        push_int(&mut self.text, n);
        self.text.push_str(tag.close);
        self
    }

    /// The finished event, ready for its seq.
    pub fn finish(mut self) -> Draft {
        self.text.push_str("</event>");
        Draft { text: self.text, seq_at: self.seq_at, kind: self.kind }
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
/// `<event>` with a `type` of name characters, an optional decimal `timestamp`
/// (stamped now when absent), no `seq`, no DOCTYPE, at most 1 MiB.
///
/// The canonical form keeps the elements, attributes and character data of the
/// document, drops the XML declaration, comments and processing instructions,
/// writes CDATA sections as escaped text, writes the root's `type`, `timestamp`
/// and `seq` first, and writes every line break as a character reference, so the
/// event is one line.
pub fn parse(xml: &str) -> Result<Draft> {
    check_size(xml.len())?;
    if let Some(draft) = fast::parse(xml.as_bytes()) {
        return Ok(draft);
    }
    full_parse(xml)
}

/// [`parse`] by a full XML parser, for every shape of input.
fn full_parse(xml: &str) -> Result<Draft> {
    check_chars(xml)?;
    // Room for what the canonical form adds: a stamped timestamp, ` seq="N"`, NUL.
    let mut out = Canonical { text: String::with_capacity(xml.len() + 64), seq_at: 0, kind: (0, 0) };
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
            XmlEvent::Decl(decl) => check_decl(&decl)?,
            XmlEvent::DocType(_) => {
                return Err(xml_error(format!(
                    "DOCTYPE at byte {at} is not allowed in event XML (no DTD, no entity declarations)"
                )))
            }
            XmlEvent::Comment(_) | XmlEvent::PI(_) => {}
            XmlEvent::Start(start) | XmlEvent::Empty(start) if depth == 0 && root_done => {
                return Err(xml_error(format!("a second root element <{}> at byte {at}", name_of(&start))));
            }
            XmlEvent::Start(start) => {
                out.start(&start, depth == 0, false)?;
                depth += 1;
            }
            XmlEvent::Empty(start) => {
                out.start(&start, depth == 0, true)?;
                root_done |= depth == 0;
            }
            XmlEvent::End(end) => {
                out.text.push_str("</");
                out.text.push_str(end.name().as_ref());
                out.text.push('>');
                depth -= 1;
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
    Ok(Draft { text: out.text, seq_at: out.seq_at, kind: out.kind })
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
struct Canonical {
    text: String,
    seq_at: usize,
    kind: (usize, usize),
}

impl Canonical {
    fn root(&mut self, start: &BytesStart, empty: bool) -> Result<()> {
        let name = start.name();
        if name.as_ref() != "event" {
            return Err(xml_error(format!("the root element is <{}>, not <event>", name_of(start))));
        }
        let mut kind = None;
        let mut timestamp = None;
        let mut rest = String::new();
        for attr in start.attributes() {
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
                _ => write_attribute(&mut rest, &attr)?,
            }
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

    /// A start tag (`empty` for `<x/>`); the root's goes through [`Self::root`].
    fn start(&mut self, start: &BytesStart, is_root: bool, empty: bool) -> Result<()> {
        if is_root {
            return self.root(start, empty);
        }
        let name = start.name();
        if !is_xml_name(name.as_ref()) {
            return Err(xml_error(format!("<{}> is not a valid element name", name_of(start))));
        }
        self.text.push('<');
        self.text.push_str(name_of(start));
        if start.attributes_raw().bytes().all(|b| b.is_ascii_whitespace()) {
            self.text.push_str(if empty { "/>" } else { ">" });
            return Ok(());
        }
        for attr in start.attributes() {
            let attr = attr.map_err(|e| xml_error(format!("bad attribute on <{}>: {e}", name_of(start))))?;
            write_attribute(&mut self.text, &attr)?;
        }
        self.text.push_str(if empty { "/>" } else { ">" });
        Ok(())
    }

    /// Character data: copied as written (quick-xml hands references over
    /// separately), every line break (CR LF, CR or LF, as XML reads them) written as
    /// `&#10;`; CDATA content is escaped as well.
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
                b'>' if cdata => ("&gt;", 1),
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
        let name: &str = &reference;
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
    attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .map_err(|e| xml_error(format!("bad value of attribute {}: {e}", key_of(attr))))
}

fn key_of<'a>(attr: &'a Attribute<'a>) -> &'a str {
    attr.key.as_ref()
}

/// Writes ` key="value"` with the value escaped for double quotes and one line.
fn write_attribute(out: &mut String, attr: &Attribute) -> Result<()> {
    if !is_xml_name(attr.key.as_ref()) {
        return Err(xml_error(format!("\"{}\" is not a valid attribute name", key_of(attr))));
    }
    let value = attribute_value(attr)?;
    out.push(' ');
    out.push_str(key_of(attr));
    out.push_str("=\"");
    for c in value.chars() {
        push_escaped_char(out, c, true);
    }
    out.push('"');
    Ok(())
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
    use super::*;

    #[test]
    fn built_events_are_already_canonical() {
        let names = ["test", "a<b>&c", "line\nbreak\r\nand\rcr", "tab\there", "ctl\u{1}\u{ffff}x", "ünï €", ""];
        for name in names {
            let mut b = Builder::new("domain-x");
            b.number(crate::tag!("domain-id"), -1).text(crate::tag!("domain-name"), name);
            b.number(crate::tag!("big"), i64::MIN).number(crate::tag!("zero"), 0);
            b.known(crate::tag!("parts"), &["a", "-", "b", ""]);
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

    #[test]
    fn seq_attribute_formats_every_width() {
        assert_eq!(SeqAttribute::new(0).as_str(), " seq=\"0\"");
        assert_eq!(SeqAttribute::new(7).as_str(), " seq=\"7\"");
        assert_eq!(SeqAttribute::new(u64::MAX).as_str(), " seq=\"18446744073709551615\"");
    }
}
