//! Fuzzes what virevent-sub does with a message from a NATS stream, whose
//! bytes anyone who may publish there wrote: reading it back as a delivered
//! event (`event::parse_delivered`), then filtering and printing it in every
//! format. An event accepted reads back the same, seq included.

#![no_main]

use libfuzzer_sys::fuzz_target;
use virevent::format::{render, Format};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(event) = virevent::event::parse_delivered(text) else { return };
    let again = virevent::event::parse_delivered(event.xml()).expect("a delivered event reads back");
    assert_eq!((again.seq(), again.xml()), (event.seq(), event.xml()));
    assert!(event.xml().contains(&format!(" seq=\"{}\"", event.seq())));
    for format in [Format::Xml, Format::Line, Format::Json, Format::Virsh] {
        let _ = render(format, &event, Some("nats://h/s"));
    }
    if let Ok(filter) = virevent::Filter::parse(&["/event[@seq > 3 or contains(., 'x')]"]) {
        let _ = filter.matches(&event);
    }
});
