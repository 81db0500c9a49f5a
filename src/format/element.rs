//! The one reader of an event's XML for printing: the tree that each format
//! takes what it prints from.

use quick_xml::events::Event as XmlEvent;
use quick_xml::Reader;
use crate::words::Words;

/// An element of the event: its attributes, text and children.
#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    /// Its own text.
    pub text: String,
    /// Its whole text content in document order, the texts of elements in it
    /// (a graphics event's addresses) as words, one space apart.
    pub words: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The event's root, or `None` if the XML does not read (never for an
    /// event the library made).
    pub fn read(xml: &str) -> Option<Element> {
        let mut reader = Reader::from_str(xml);
        let mut open: Vec<Element> = Vec::new();
        loop {
            match reader.read_event().ok()? {
                event @ (XmlEvent::Start(_) | XmlEvent::Empty(_)) => {
                    let (XmlEvent::Start(start) | XmlEvent::Empty(start)) = &event else { unreachable!() };
                    for ancestor in open.iter_mut().filter(|a| !a.words.is_empty()) {
                        ancestor.words.push(' ');
                    }
                    let mut element = Element { name: start.name().as_ref().to_string(), ..Element::default() };
                    for attr in start.attributes() {
                        let attr = attr.ok()?;
                        let key = attr.key.as_ref().to_string();
                        let value = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok()?.into_owned();
                        element.attributes.push((key, value));
                    }
                    if matches!(event, XmlEvent::Empty(_)) {
                        match open.last_mut() {
                            Some(parent) => parent.children.push(element),
                            None => return Some(element),
                        }
                    } else {
                        open.push(element);
                    }
                }
                XmlEvent::End(_) => {
                    let element = open.pop()?;
                    match open.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => return Some(element),
                    }
                }
                XmlEvent::Text(text) => push_text(&mut open, &text)?,
                XmlEvent::CData(text) => push_text(&mut open, &text)?,
                XmlEvent::GeneralRef(reference) => push_text(&mut open, resolve(&reference)?.encode_utf8(&mut [0; 4]))?,
                XmlEvent::Eof => return None,
                _ => {}
            }
        }
    }

    pub fn attribute(&self, name: &str) -> &str {
        self.attributes.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v)
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// A child's text; "" when it is absent.
    pub fn get(&self, name: &str) -> &str {
        self.child(name).map_or("", |c| c.text.as_str())
    }

    /// A child's text, or virsh's `<null>` when it is absent (an optional
    /// string the daemon did not send).
    pub fn or_null(&self, name: &str) -> &str {
        self.child(name).map_or("<null>", |c| c.text.as_str())
    }

    /// What virsh prints for the enum word of child `name`.
    pub fn word(&self, name: &str, words: &Words) -> &'static str {
        words.virsh_word(self.get(name))
    }
}

/// Text read inside the innermost open element: its own, and a part of the
/// words of every open element.
fn push_text(open: &mut [Element], text: &str) -> Option<()> {
    open.last_mut()?.text.push_str(text);
    for element in open.iter_mut() {
        element.words.push_str(text);
    }
    Some(())
}

/// The character a reference in text stands for: a character reference or one
/// of XML's five entities (the only ones an event may use).
fn resolve(reference: &quick_xml::events::BytesRef<'_>) -> Option<char> {
    let name: &str = reference;
    match reference.resolve_char_ref().ok()? {
        Some(c) => Some(c),
        None => match name {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => None,
        },
    }
}
