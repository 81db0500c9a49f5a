//! The event model through the safe API: validation, canonical form, seqs.

use virevent::event::{parse, parse_bytes, MAX_EVENT_BYTES};
use virevent::{Connection, ErrorCode, Event, Filter};

fn canonical(xml: &str) -> String {
    parse(xml).expect(xml).seal(7).xml().to_string()
}

fn code(xml: &str) -> ErrorCode {
    parse(xml).expect_err(xml).code
}

#[test]
fn canonical_form_puts_type_timestamp_seq_first() {
    assert_eq!(
        canonical(r#"<event a="1" timestamp="12.5" type="t"><x>1</x></event>"#),
        r#"<event type="t" timestamp="12.5" seq="7" a="1"><x>1</x></event>"#
    );
    assert_eq!(canonical(r#"<event type="t" timestamp="1"/>"#), r#"<event type="t" timestamp="1" seq="7"/>"#);
}

#[test]
fn canonical_form_is_one_line_with_the_same_content() {
    let got = canonical("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- hi -->\n<event type=\"t\" timestamp=\"1\">\r\n  <a x=\"1\n2\">l1\rl2\nl3</a><!-- c --><![CDATA[<b>&\n]]>&#65;&#10;&lt;</event>\n");
    assert_eq!(
        got,
        r#"<event type="t" timestamp="1" seq="7">&#10;  <a x="1 2">l1&#10;l2&#10;l3</a>&lt;b&gt;&amp;&#10;A&#10;&lt;</event>"#
    );
    assert!(!got.contains('\n') && !got.contains('\r'));
}

#[test]
fn attribute_values_keep_their_characters() {
    assert_eq!(
        canonical(r#"<event type="t" timestamp="1"><a v='say "hi" &amp; &#10;&#9;&lt;'/></event>"#),
        r#"<event type="t" timestamp="1" seq="7"><a v="say &quot;hi&quot; &amp; &#10;&#9;&lt;"/></event>"#
    );
}

#[test]
fn missing_timestamp_is_stamped_now() {
    let xml = canonical(r#"<event type="t"/>"#);
    let stamp = xml.split("timestamp=\"").nth(1).unwrap().split('"').next().unwrap();
    let (secs, micros) = stamp.split_once('.').unwrap();
    assert_eq!(micros.len(), 6);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(now.abs_diff(secs.parse().unwrap()) < 60, "{stamp}");
}

#[test]
fn malformed_documents_are_xml_errors() {
    for bad in [
        "",
        "   ",
        "<event type=\"t\">",
        "<event type=\"t\"></evnt>",
        "<event type=\"t\"/><event type=\"t\"/>",
        "text<event type=\"t\"/>",
        "<event type=\"t\"/>trailing",
        "<event type=\"t\" type=\"u\"/>",
        "<event type=\"t\" a=1/>",
        "<event type=\"t\" a=\"<\"/>",
        "<event type=\"t\">&foo;</event>",
        "<event type=\"t\">&#0;</event>",
        "<event type=\"t\">\u{1}</event>",
        "<event type=\"t\">]]></event>",
        "<event type=\"t\"><1a/></event>",
        "<!DOCTYPE event><event type=\"t\"/>",
        "<!DOCTYPE event [<!ENTITY e \"x\">]><event type=\"t\">&e;</event>",
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><event type=\"t\"/>",
        "<other type=\"t\"/>",
        "<ns:event type=\"t\"/>",
        "<ns:event type=\"t\" xmlns:ns=\"urn:ns\"/>",
        "<event type=\"t\"><p:a/></event>",
        "<event type=\"t\" xmlns:p=\"\"/>",
        "<event type=\"t\" xmlns:xml=\"urn:x\"/>",
        "<event type=\"t\"><a:b:c xmlns:a=\"urn:a\"/></event>",
        "<event type=\"t\"><?pi x?></event>",
        "<?pi x?><event type=\"t\"/>",
    ] {
        assert_eq!(code(bad), ErrorCode::XmlError, "{bad:?}");
    }
}

#[test]
fn errors_name_the_culprit() {
    assert!(parse("<domain/>").unwrap_err().message.contains("<domain>"));
    assert!(parse("<event type=\"t\"><a></a><b>").unwrap_err().message.contains("<b>"));
    assert!(parse("<event type=\"t\"><a><b></b>").unwrap_err().message.contains("<a>"));
    assert!(parse("<event type=\"t\">").unwrap_err().message.contains("<event>"));
    assert!(parse("<event type=\"t\">&foo;</event>").unwrap_err().message.contains("&foo;"));
    assert!(parse("<!DOCTYPE x><event type=\"t\"/>").unwrap_err().message.contains("DOCTYPE"));
    assert!(parse(r#"<event type="t" seq="3"/>"#).unwrap_err().message.contains("seq"));
    assert!(parse(r#"<event type="t" timestamp="soon"/>"#).unwrap_err().message.contains("soon"));
}

#[test]
fn namespaces_are_kept_as_written_and_checked() {
    assert_eq!(
        canonical(r#"<event xmlns="urn:d" timestamp="1" xmlns:p="urn:p" type="t"><p:a p:x="1" xml:lang="en"><b xmlns=""/></p:a></event>"#),
        r#"<event type="t" timestamp="1" seq="7" xmlns="urn:d" xmlns:p="urn:p"><p:a p:x="1" xml:lang="en"><b xmlns=""/></p:a></event>"#
    );
    let err = parse(r#"<event type="t"><a><p:b/></a></event>"#).unwrap_err();
    assert_eq!(err.code, ErrorCode::XmlError);
    assert!(err.message.contains("'p'") && err.message.contains("<p:b>") && err.message.contains("byte 19"), "{}", err.message);
    let err = parse(r#"<event type="t" xmlns:p="u" xmlns:q="u"><a p:x="" q:x=""/></event>"#).unwrap_err();
    assert!(err.message.contains("p:x") && err.message.contains("q:x"), "{}", err.message);
}

#[test]
fn processing_instructions_are_refused_not_dropped() {
    for (xml, at) in [
        ("<event type=\"t\"><?pi x?></event>", "byte 16"),
        ("<?pi x?><event type=\"t\"/>", "byte 0"),
        ("<event type=\"t\"/><?pi x?>", "byte 17"),
    ] {
        let err = parse(xml).unwrap_err();
        assert_eq!(err.code, ErrorCode::XmlError, "{xml}");
        assert!(err.message.contains("<?pi ...?>") && err.message.contains(at), "{xml}: {}", err.message);
    }
    assert_eq!(canonical("<?xml version=\"1.0\"?><event type=\"t\" timestamp=\"1\"/>"), r#"<event type="t" timestamp="1" seq="7"/>"#);
}

#[test]
fn bad_attributes_are_invalid_args() {
    for bad in [
        r#"<event/>"#,
        r#"<event type=""/>"#,
        r#"<event type="a b"/>"#,
        r#"<event type="t" seq="1"/>"#,
        r#"<event type="t" timestamp=""/>"#,
        r#"<event type="t" timestamp="abc"/>"#,
        r#"<event type="t" timestamp="-1"/>"#,
        r#"<event type="t" timestamp="1."/>"#,
        r#"<event type="t" timestamp=".5"/>"#,
        r#"<event type="t" timestamp="1e9"/>"#,
    ] {
        assert_eq!(code(bad), ErrorCode::InvalidArg, "{bad:?}");
    }
}

#[test]
fn size_limit_is_one_mebibyte() {
    let frame = r#"<event type="t"></event>"#.len();
    let fits = format!(r#"<event type="t">{}</event>"#, "x".repeat(MAX_EVENT_BYTES - frame));
    assert_eq!(fits.len(), MAX_EVENT_BYTES);
    assert!(parse(&fits).is_ok());
    let over = format!(r#"<event type="t">{}</event>"#, "x".repeat(MAX_EVENT_BYTES - frame + 1));
    assert_eq!(parse(&over).unwrap_err().code, ErrorCode::XmlError);
}

#[test]
fn non_utf8_is_an_xml_error() {
    let err = parse_bytes(b"<event type=\"t\">\xff</event>").unwrap_err();
    assert_eq!(err.code, ErrorCode::XmlError);
    assert!(err.message.contains("UTF-8"));
}

#[test]
fn one_emitted_event_is_shared_by_every_handler() {
    let conn = Connection::open(None).unwrap();
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::<Event>::new()));
    for _ in 0..3 {
        let seen = seen.clone();
        conn.add_handler(Filter::All, move |e| seen.lock().push(e.clone())).unwrap();
    }
    assert_eq!(conn.emit(r#"<event type="t"/>"#).unwrap(), 1);
    assert_eq!(conn.deliver().unwrap(), 3);
    let seen = seen.lock();
    assert!(std::ptr::eq(seen[0].xml(), seen[1].xml()) && std::ptr::eq(seen[1].xml(), seen[2].xml()));
    assert_eq!(seen[0].as_c_str().to_bytes(), seen[0].xml().as_bytes());
}

#[test]
fn the_xpath_tree_of_an_event_is_built_once_and_shared() {
    let event = parse(r#"<event type="t"><a>1</a></event>"#).unwrap().seal(1);
    let copy = event.clone();
    assert!(std::ptr::eq(event.tree(), copy.tree()));
    // root, event, @type, @timestamp (stamped), @seq, a, and its text
    assert_eq!(event.tree().len(), 7);
}
