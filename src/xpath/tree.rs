//! A compact tree of one event, what XPath expressions are evaluated against.
//! Nodes sit in one vector in document order (an element, then its attributes,
//! then its content), each with its parent and the end of its subtree; names and
//! values are ranges of one string.
//!
//! It is built from the library's own canonical form, whose grammar is small
//! (double-quoted attributes, a few escapes, no comments, processing
//! instructions or CDATA), by a dedicated scanner: a second general XML parse
//! per event would cost more than the evaluation itself.

use std::borrow::Cow;
use std::ops::Range;

/// A node's index in its tree; the root is 0.
pub type NodeId = u32;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The document root: the context node of a filter.
    Root,
    /// An element.
    Element,
    /// An attribute of the element before it.
    Attribute,
    /// Character data.
    Text,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    kind: Kind,
    parent: NodeId,
    /// One past the last node of its subtree.
    end: NodeId,
    name: (u32, u32),
    value: (u32, u32),
}

/// An event's tree.
#[derive(Debug)]
pub struct Tree {
    nodes: Vec<Node>,
    strings: String,
}

impl Tree {
    /// Builds the tree of canonical event XML. Input that does not follow the
    /// canonical grammar gives a tree of what came before the problem.
    pub fn build(xml: &str) -> Tree {
        let mut tree = Tree { nodes: Vec::with_capacity(16), strings: String::with_capacity(xml.len()) };
        tree.nodes.push(Node { kind: Kind::Root, parent: 0, end: 0, name: (0, 0), value: (0, 0) });
        Scanner { xml: xml.as_bytes(), at: 0, tree: &mut tree, open: vec![0] }.run();
        let len = tree.nodes.len() as NodeId;
        tree.nodes[0].end = len;
        tree
    }

    /// How many nodes there are (never none: a tree holds its document node).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The node's kind.
    pub fn kind(&self, n: NodeId) -> Kind {
        self.nodes[n as usize].kind
    }

    /// An element's or attribute's name; "" for others.
    pub fn name(&self, n: NodeId) -> &str {
        let (from, to) = self.nodes[n as usize].name;
        &self.strings[from as usize..to as usize]
    }

    /// The parent, none for the root. An attribute's parent is its element.
    pub fn parent(&self, n: NodeId) -> Option<NodeId> {
        (n != 0).then(|| self.nodes[n as usize].parent)
    }

    /// The nodes after `n` in its subtree (its attributes and descendants).
    pub fn subtree(&self, n: NodeId) -> Range<NodeId> {
        n + 1..self.nodes[n as usize].end
    }

    /// The non-attribute children of `n`, in document order.
    pub fn children(&self, n: NodeId) -> Children<'_> {
        Children { tree: self, at: n + 1, end: self.nodes[n as usize].end }
    }

    /// The attributes of `n`, in document order.
    pub fn attributes(&self, n: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.subtree(n).take_while(move |&a| self.kind(a) == Kind::Attribute && self.nodes[a as usize].parent == n)
    }

    /// XPath's string-value: an attribute's or text's value; for the root and
    /// elements, the text of every descendant, in order.
    pub fn string_value(&self, n: NodeId) -> Cow<'_, str> {
        match self.kind(n) {
            Kind::Attribute | Kind::Text => Cow::Borrowed(self.value(n)),
            Kind::Root | Kind::Element => {
                let mut texts = self.subtree(n).filter(|&d| self.kind(d) == Kind::Text);
                let Some(first) = texts.next() else { return Cow::Borrowed("") };
                match texts.next() {
                    None => Cow::Borrowed(self.value(first)),
                    Some(second) => {
                        let mut all = String::from(self.value(first));
                        all.push_str(self.value(second));
                        texts.for_each(|t| all.push_str(self.value(t)));
                        Cow::Owned(all)
                    }
                }
            }
        }
    }

    fn value(&self, n: NodeId) -> &str {
        let (from, to) = self.nodes[n as usize].value;
        &self.strings[from as usize..to as usize]
    }
}

/// The non-attribute children of a node.
pub struct Children<'t> {
    tree: &'t Tree,
    at: NodeId,
    end: NodeId,
}

impl Iterator for Children<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        while self.at < self.end {
            let n = self.at;
            let node = self.tree.nodes[n as usize];
            self.at = node.end.max(n + 1);
            if node.kind != Kind::Attribute {
                return Some(n);
            }
        }
        None
    }
}

/// The scanner of the canonical form.
struct Scanner<'a> {
    xml: &'a [u8],
    at: usize,
    tree: &'a mut Tree,
    /// The open elements, innermost last (0: the root).
    open: Vec<NodeId>,
}

impl Scanner<'_> {
    fn run(&mut self) {
        while self.at < self.xml.len() {
            let ok = if self.xml[self.at] == b'<' { self.tag() } else { self.text() };
            if !ok {
                break;
            }
        }
        // Close what the input left open.
        let len = self.tree.nodes.len() as NodeId;
        for &n in &self.open {
            self.tree.nodes[n as usize].end = len;
        }
    }

    fn parent(&self) -> NodeId {
        self.open.last().copied().unwrap_or(0)
    }

    fn push(&mut self, kind: Kind, name: (u32, u32), value: (u32, u32)) -> NodeId {
        let id = self.tree.nodes.len() as NodeId;
        self.tree.nodes.push(Node { kind, parent: self.parent(), end: id + 1, name, value });
        id
    }

    /// Copies `self.xml[from..to]` to the strings, unescaped; returns its range.
    fn store(&mut self, from: usize, to: usize) -> (u32, u32) {
        let start = self.tree.strings.len() as u32;
        unescape(&self.xml[from..to], &mut self.tree.strings);
        (start, self.tree.strings.len() as u32)
    }

    fn text(&mut self) -> bool {
        let from = self.at;
        let to = memchr(b'<', &self.xml[from..]).map_or(self.xml.len(), |i| from + i);
        self.at = to;
        let parent = self.parent();
        let last = self.tree.nodes.len() - 1;
        let merge = last > 0 && self.tree.nodes[last].kind == Kind::Text && self.tree.nodes[last].parent == parent;
        if merge {
            unescape(&self.xml[from..to], &mut self.tree.strings);
            self.tree.nodes[last].value.1 = self.tree.strings.len() as u32;
        } else {
            let value = self.store(from, to);
            self.push(Kind::Text, (0, 0), value);
        }
        true
    }

    fn name(&mut self) -> Option<(u32, u32)> {
        let from = self.at;
        while self.at < self.xml.len() && !matches!(self.xml[self.at], b' ' | b'>' | b'/' | b'=') {
            self.at += 1;
        }
        (self.at > from).then(|| self.store(from, self.at))
    }

    fn tag(&mut self) -> bool {
        self.at += 1;
        if self.xml.get(self.at) == Some(&b'/') {
            let Some(close) = memchr(b'>', &self.xml[self.at..]) else { return false };
            self.at += close + 1;
            if let Some(n) = self.open.pop() {
                self.tree.nodes[n as usize].end = self.tree.nodes.len() as NodeId;
            }
            return !self.open.is_empty();
        }
        let Some(name) = self.name() else { return false };
        let element = self.push(Kind::Element, name, (0, 0));
        self.open.push(element);
        loop {
            match self.xml.get(self.at) {
                Some(b' ') => self.at += 1,
                Some(b'>') => {
                    self.at += 1;
                    return true;
                }
                Some(b'/') if self.xml.get(self.at + 1) == Some(&b'>') => {
                    self.at += 2;
                    self.open.pop();
                    self.tree.nodes[element as usize].end = self.tree.nodes.len() as NodeId;
                    return true;
                }
                Some(_) => {
                    let Some(name) = self.name() else { return false };
                    if self.xml.get(self.at..self.at + 2) != Some(b"=\"") {
                        return false;
                    }
                    let from = self.at + 2;
                    let Some(len) = memchr(b'"', &self.xml[from..]) else { return false };
                    self.at = from + len + 1;
                    let value = self.store(from, from + len);
                    // An attribute belongs to the element, not to the open scope.
                    let id = self.tree.nodes.len() as NodeId;
                    self.tree.nodes.push(Node { kind: Kind::Attribute, parent: element, end: id + 1, name, value });
                }
                None => return false,
            }
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Appends `raw` with its references resolved. The canonical form is UTF-8
/// and its references are well-formed; anything else is copied as it stands.
fn unescape(raw: &[u8], out: &mut String) {
    let text = std::str::from_utf8(raw).unwrap_or_default();
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semi) = after.find(';') else {
            out.push_str(&rest[amp..]);
            return;
        };
        let reference = &after[..semi];
        let c = match reference {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => reference.strip_prefix('#').and_then(|number| {
                let code = match number.strip_prefix('x') {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => number.parse().ok(),
                };
                code.and_then(char::from_u32)
            }),
        };
        match c {
            Some(c) => out.push(c),
            None => out.push_str(&rest[amp..amp + semi + 2]),
        }
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_elements_attributes_and_text_in_document_order() {
        let t = Tree::build(
            r#"<event type="t" seq="3"><a x="1&amp;2">hi &lt;there&gt;&#10;</a><b/><c><d>x</d>y</c></event>"#,
        );
        let event = t.children(0).next().unwrap();
        assert_eq!(t.name(event), "event");
        let attrs: Vec<_> = t.attributes(event).map(|a| (t.name(a).to_string(), t.string_value(a).into_owned())).collect();
        assert_eq!(attrs, [("type".into(), "t".into()), ("seq".into(), "3".into())]);
        let kids: Vec<_> = t.children(event).map(|k| t.name(k).to_string()).collect();
        assert_eq!(kids, ["a", "b", "c"]);
        let a = t.children(event).next().unwrap();
        assert_eq!(t.string_value(a), "hi <there>\n");
        assert_eq!(t.attributes(a).map(|x| t.string_value(x).into_owned()).collect::<Vec<_>>(), ["1&2"]);
        assert_eq!(t.string_value(event), "hi <there>\nxy");
        let c = t.children(event).nth(2).unwrap();
        assert_eq!(t.parent(c), Some(event));
        assert_eq!(t.children(c).count(), 2);
        assert_eq!(t.parent(0), None);
    }

    #[test]
    fn malformed_input_gives_a_partial_tree_without_panicking() {
        for bad in ["<", "<a", "<a x", "<a x=\"1", "</a>", "<a><b></a>", "&#xZZ;<a>", "<a =\"1\"/>"] {
            let t = Tree::build(bad);
            assert!(t.len() >= 1, "{bad}");
            let _ = t.string_value(0);
        }
    }
}
