//! The ways an event is printed: its XML, a readable line, a JSON object, or
//! virsh's words (`virsh.rs`). virevent-watch prints with them, and the NATS
//! relay and its consumer (the `virevent-relay` package) use the same mapping,
//! so that a consumer reading a bus sees what a watch of the daemon would.

use std::fmt::Write as _;

use crate::Event;
use element::Element;

mod element;
mod virsh;

/// How each event is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Xml,
    Line,
    Json,
    Virsh,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "xml" => Some(Format::Xml),
            "line" => Some(Format::Line),
            "json" => Some(Format::Json),
            "virsh" => Some(Format::Virsh),
            _ => None,
        }
    }
}

/// The event in `format`, without its last line feed (on one line but in
/// virsh's format, which gives some kinds several, as virsh does). With `uri`
/// (a watch of several connections) it also says where it came from: the
/// root's last attribute in XML, the last member in JSON, a `URI: ` prefix on
/// the (first) line otherwise. The library never adds it: it is this
/// program's, which alone knows it watches several.
pub fn render(format: Format, event: &Event, uri: Option<&str>) -> String {
    let fields = match format {
        Format::Xml => None,
        Format::Virsh => {
            let text = virsh::render(event.xml()).unwrap_or_else(|| event.xml().to_string());
            return prefixed(uri, text);
        }
        Format::Line | Format::Json => Fields::read(event.xml()),
    };
    // The library validated the XML: a failure to read it is a bug here, and the
    // XML itself is the most faithful thing to print then.
    match (format, fields) {
        (Format::Line, Some(fields)) => prefixed(uri, line(&fields)),
        (Format::Json, Some(fields)) => json(&fields, event.seq(), uri),
        _ => uri.map_or_else(|| event.xml().to_string(), |uri| with_uri_attribute(event.xml(), uri)),
    }
}

/// `URI: text`, or `text` alone without a URI.
pub fn prefixed(uri: Option<&str>, text: String) -> String {
    match uri {
        Some(uri) => format!("{uri}: {text}"),
        None => text,
    }
}

/// The event's XML with `uri="URI"` as the last attribute of its root. The
/// root's start tag ends at the first `>` outside a value: the canonical form
/// quotes values with `"` and escapes that character inside them.
fn with_uri_attribute(xml: &str, uri: &str) -> String {
    let mut quoted = false;
    let end = xml
        .bytes()
        .position(|b| {
            quoted ^= b == b'"';
            !quoted && b == b'>'
        })
        .unwrap_or(xml.len());
    let end = if xml[..end].ends_with('/') { end - 1 } else { end };
    let mut out = String::with_capacity(xml.len() + uri.len() + 8);
    out.push_str(&xml[..end]);
    out.push_str(" uri=\"");
    for c in uri.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Escaped so that attribute normalization keeps them.
            '\t' | '\n' | '\r' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out.push_str(&xml[end..]);
    out
}

/// What the line and JSON formats show of an event.
#[derive(Debug, Default, PartialEq)]
struct Fields {
    kind: String,
    timestamp: String,
    /// The root's other attributes, then its child elements (each with its
    /// whole text content), in document order.
    fields: Vec<(String, String)>,
}

impl Fields {
    fn read(xml: &str) -> Option<Fields> {
        let root = Element::read(xml)?;
        let (kind, timestamp) = (root.attribute("type").to_string(), root.attribute("timestamp").to_string());
        let attributes = root.attributes.iter().filter(|(key, _)| !matches!(key.as_str(), "type" | "timestamp" | "seq"));
        // A typed parameter is named by its attribute.
        let children = root.children.iter().map(|child| match child.name.as_str() {
            "param" => (format!("param:{}", child.attribute("name")), child.words.clone()),
            name => (name.to_string(), child.words.clone()),
        });
        Some(Fields { kind, timestamp, fields: attributes.cloned().chain(children).collect() })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// `2026-11-24 20:59:26.281 test running -> paused (suspended-paused)` for a
/// state transition; `TIME TYPE NAME=VALUE...` for anything else.
fn line(fields: &Fields) -> String {
    let mut out = utc_time(&fields.timestamp);
    out.push(' ');
    let transition = ["domain-name", "old-state", "new-state", "reason"].map(|name| fields.get(name));
    if let ("domain-state-transition", [Some(name), Some(old), Some(new), Some(reason)]) =
        (fields.kind.as_str(), transition)
    {
        push_word(&mut out, name);
        let _ = write!(out, " {old} -> {new} ({reason})");
        return out;
    }
    out.push_str(&fields.kind);
    for (name, value) in &fields.fields {
        out.push(' ');
        out.push_str(name);
        out.push('=');
        push_word(&mut out, value);
    }
    out
}

/// `value` as is, or as a JSON string when it would not read back as one word.
fn push_word(out: &mut String, value: &str) {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"') {
        push_json_string(out, value);
    } else {
        out.push_str(value);
    }
}

/// The timestamp (decimal seconds since the epoch) as `YYYY-MM-DD HH:MM:SS.mmm`
/// in UTC; as given when it is out of range.
pub fn utc_time(timestamp: &str) -> String {
    let (whole, fraction) = timestamp.split_once('.').unwrap_or((timestamp, ""));
    let Ok(secs) = whole.parse::<i64>() else { return timestamp.to_string() };
    if secs > 253_402_300_799 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return timestamp.to_string(); // past the year 9999
    }
    let mut millis = [b'0'; 3];
    for (digit, &b) in millis.iter_mut().zip(fraction.as_bytes()) {
        *digit = b;
    }
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        std::str::from_utf8(&millis).unwrap_or("000")
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `{"type":...,"timestamp":N,"seq":N,...}`, and `"uri":URI` last when given.
fn json(fields: &Fields, seq: u64, uri: Option<&str>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"type\":");
    push_json_string(&mut out, &fields.kind);
    out.push_str(",\"timestamp\":");
    push_json_number(&mut out, &fields.timestamp);
    let _ = write!(out, ",\"seq\":{seq}");
    for (name, value) in &fields.fields {
        out.push(',');
        if matches!(name.as_str(), "type" | "timestamp" | "seq") || (uri.is_some() && name == "uri") {
            push_json_string(&mut out, &format!("_{name}"));
        } else {
            push_json_string(&mut out, name);
        }
        out.push(':');
        push_json_string(&mut out, value);
    }
    if let Some(uri) = uri {
        out.push_str(",\"uri\":");
        push_json_string(&mut out, uri);
    }
    out.push('}');
    out
}

/// Decimal seconds as a JSON number (leading zeros dropped, which JSON refuses);
/// anything else as a string.
fn push_json_number(out: &mut String, decimal: &str) {
    let (whole, fraction) = decimal.split_once('.').map_or((decimal, None), |(w, f)| (w, Some(f)));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !fraction.is_none_or(digits) {
        return push_json_string(out, decimal);
    }
    let whole = whole.trim_start_matches('0');
    out.push_str(if whole.is_empty() { "0" } else { whole });
    if let Some(fraction) = fraction {
        out.push('.');
        out.push_str(fraction);
    }
}

/// `text` as a JSON string: quotes, backslashes and control characters escaped.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            // U+2028 and U+2029 are valid in JSON but end lines in JavaScript.
            c if c < ' ' || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAUSED: &str = "<event type=\"domain-state-transition\" timestamp=\"1764017966.281000\" seq=\"7\">\
        <domain-id>1</domain-id><domain-name>test</domain-name>\
        <domain-uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</domain-uuid>\
        <old-state>running</old-state><new-state>paused</new-state><reason>suspended-paused</reason></event>";

    #[test]
    fn a_transition_reads_as_one_sentence() {
        let fields = Fields::read(PAUSED).unwrap();
        assert_eq!(line(&fields), "2025-11-24 20:59:26.281 test running -> paused (suspended-paused)");
        assert_eq!(
            json(&fields, 7, None),
            "{\"type\":\"domain-state-transition\",\"timestamp\":1764017966.281000,\"seq\":7,\"domain-id\":\"1\",\
             \"domain-name\":\"test\",\"domain-uuid\":\"6695eb01-f6a4-8304-79aa-97f2502e193f\",\
             \"old-state\":\"running\",\"new-state\":\"paused\",\"reason\":\"suspended-paused\"}"
        );
    }

    #[test]
    fn other_events_list_attributes_and_children() {
        let lost =
            "<event type=\"events-lost\" timestamp=\"0001.5\" seq=\"0\" count=\"3\" first-seq=\"4\" last-seq=\"6\"/>";
        let fields = Fields::read(lost).unwrap();
        assert_eq!(line(&fields), "1970-01-01 00:00:01.500 events-lost count=3 first-seq=4 last-seq=6");
        assert_eq!(
            json(&fields, 0, None),
            "{\"type\":\"events-lost\",\"timestamp\":1.5,\"seq\":0,\"count\":\"3\",\"first-seq\":\"4\",\"last-seq\":\"6\"}"
        );
        let odd = "<event type=\"x\" timestamp=\"1\" seq=\"2\"><type>t</type><a>&lt;&#10;\"<b>in</b>\\</a><e/>\
                   <n>two words</n></event>";
        let fields = Fields::read(odd).unwrap();
        assert_eq!(line(&fields), "1970-01-01 00:00:01.000 x type=t a=\"<\\n\\\" in\\\\\" e=\"\" n=\"two words\"");
        assert_eq!(
            json(&fields, 2, None),
            "{\"type\":\"x\",\"timestamp\":1,\"seq\":2,\"_type\":\"t\",\"a\":\"<\\n\\\" in\\\\\",\"e\":\"\",\"n\":\"two words\"}"
        );
    }

    #[test]
    fn parameters_are_named_and_nested_texts_are_words() {
        let tunable = "<event type=\"domain-tunable\" timestamp=\"1\" seq=\"2\"><domain-name>t</domain-name>\
                       <param name=\"cputune.cpu_shares\" type=\"ullong\">512</param>\
                       <local><family>ipv4</family><node>127.0.0.1</node><service>5900</service></local></event>";
        let fields = Fields::read(tunable).unwrap();
        assert_eq!(
            line(&fields),
            "1970-01-01 00:00:01.000 domain-tunable domain-name=t param:cputune.cpu_shares=512 local=\"ipv4 127.0.0.1 5900\""
        );
    }

    #[test]
    fn the_uri_is_the_roots_last_attribute_escaped() {
        let uri = "test+unix:///default?socket=/a&b\"<c>\t";
        let escaped = "test+unix:///default?socket=/a&amp;b&quot;&lt;c&gt;&#9;";
        assert_eq!(
            with_uri_attribute(PAUSED, uri),
            PAUSED.replacen(" seq=\"7\">", &format!(" seq=\"7\" uri=\"{escaped}\">"), 1)
        );
        // After every attribute, of an empty root too, and past a '>' in a value.
        let lost = "<event type=\"events-lost\" timestamp=\"1\" seq=\"0\" count=\"3\" first-seq=\"4\" last-seq=\"6\"/>";
        assert_eq!(with_uri_attribute(lost, "u"), lost.replace("/>", " uri=\"u\"/>"));
        let odd = "<event type=\"a>b\" timestamp=\"1\" seq=\"2\"><x>&gt;</x></event>";
        assert_eq!(with_uri_attribute(odd, "u"), odd.replace("2\">", "2\" uri=\"u\">"));
    }

    #[test]
    fn json_says_the_uri_last_and_a_field_named_uri_steps_aside() {
        let fields = Fields::read("<event type=\"x\" timestamp=\"1\" seq=\"2\"><uri>child</uri></event>").unwrap();
        assert_eq!(json(&fields, 2, None), "{\"type\":\"x\",\"timestamp\":1,\"seq\":2,\"uri\":\"child\"}");
        assert_eq!(
            json(&fields, 2, Some("qemu:///system")),
            "{\"type\":\"x\",\"timestamp\":1,\"seq\":2,\"_uri\":\"child\",\"uri\":\"qemu:///system\"}"
        );
    }

    #[test]
    fn json_strings_escape_every_control() {
        let mut out = String::new();
        push_json_string(&mut out, "a\u{1}\u{1f}\t\u{7f}\u{2028}é");
        assert_eq!(out, "\"a\\u0001\\u001f\\t\\u007f\\u2028é\"");
    }

    #[test]
    fn utc_dates_cross_leap_years_and_centuries() {
        assert_eq!(utc_time("0"), "1970-01-01 00:00:00.000");
        assert_eq!(utc_time("951782400.0009"), "2000-02-29 00:00:00.000");
        assert_eq!(utc_time("4107542399.99"), "2100-02-28 23:59:59.990");
        assert_eq!(utc_time("253402300799.999999"), "9999-12-31 23:59:59.999");
        assert_eq!(utc_time("253402300800"), "253402300800");
    }
}
