//! What one fuzz input does, shared by the `xpath` fuzz target and by the
//! regression test `tests/xpath_fuzz_regressions.rs` (both include this file
//! with `#[path]`), so that a saved input replays exactly as it was found.
//!
//! An input is an XPath expression and an event document, split at the first
//! NUL byte (without one, it is all expression and the document is empty),
//! both read as UTF-8 lossily.

use virevent::xpath::{Tree, XPath};

/// The expression and the document of `data`.
pub fn split(data: &[u8]) -> (String, String) {
    let (expr, doc) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    (String::from_utf8_lossy(expr).into_owned(), String::from_utf8_lossy(doc).into_owned())
}

/// Compiles the expression (a refusal is fine), builds the tree of the
/// document — from its canonical form when it is valid event XML, else from
/// the raw text, which the scanner must survive — and evaluates. Returns
/// whether it matched (`None` when the expression was refused).
pub fn run(data: &[u8]) -> Option<bool> {
    let (expr, doc) = split(data);
    let compiled = XPath::compile(&expr);
    let tree = match virevent::event::parse(&doc) {
        Ok(draft) => Tree::build(draft.seal(1).xml()),
        Err(_) => Tree::build(&doc),
    };
    let xpath = compiled.ok()?;
    let _ = xpath.fixed_type();
    Some(xpath.matches(&tree))
}
