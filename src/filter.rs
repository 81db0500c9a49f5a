//! Filters: which events a handler (or stream) receives.

use std::sync::Arc;

use crate::error::{Error, ErrorCode, Result};
use crate::event::{is_type_char, Event};
use crate::xpath::XPath;

/// A handler's filter: every event, or any of a list of entries.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Every event (a NULL filter in C).
    All,
    /// Events matched by at least one entry.
    Any(Vec<Entry>),
}

/// One entry of a filter vector.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// Name characters and `*`, matched against the event's type.
    Type(TypePattern),
    /// Anything else: an XPath 1.0 expression whose boolean value decides.
    XPath(Arc<XPath>),
}

impl Entry {
    fn parse(entry: &str, position: usize) -> Result<Entry> {
        if entry.is_empty() {
            return Err(Error::new(ErrorCode::InvalidArg, format!("filter[{position}] is empty")));
        }
        if entry.bytes().all(|b| is_type_char(b) || b == b'*') {
            return Ok(Entry::Type(TypePattern { text: entry.into(), wildcard: entry.contains('*') }));
        }
        let xpath = XPath::compile(entry).map_err(|e| {
            Error::new(ErrorCode::InvalidArg, format!("filter[{position}] \"{entry}\": XPath error: {e}"))
        })?;
        Ok(Entry::XPath(Arc::new(xpath)))
    }

    fn matches(&self, event: &Event) -> bool {
        match self {
            Entry::Type(pattern) => pattern.matches(event.kind()),
            Entry::XPath(xpath) => xpath.matches(event.tree()),
        }
    }
}

impl Filter {
    /// Parses filter entries (a C NULL-terminated vector): each a type pattern
    /// when made only of name characters and `*`, else an XPath expression. The
    /// whole vector is checked before anything is returned; errors name the entry
    /// and its position (counted from 0, as the C vector is indexed) and, for
    /// XPath, the character where the problem is.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Filter> {
        if entries.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidArg,
                "the filter vector is empty (filter[0] is NULL): pass NULL for every event, or at least one entry",
            ));
        }
        let entries = entries
            .iter()
            .enumerate()
            .map(|(position, entry)| Entry::parse(entry.as_ref(), position))
            .collect::<Result<Vec<_>>>()?;
        // A lone `*` anywhere makes the filter take everything: let the index know.
        if entries.iter().any(|e| matches!(e, Entry::Type(p) if p.text.bytes().all(|b| b == b'*'))) {
            return Ok(Filter::All);
        }
        Ok(Filter::Any(entries))
    }

    /// Whether this filter takes an event of type `kind`, when the type alone
    /// decides it (no XPath entry, or a type entry that matches); `None` when
    /// only the event's content can tell.
    pub fn decides_by_type(&self, kind: &str) -> Option<bool> {
        let Filter::Any(entries) = self else { return Some(true) };
        let mut undecided = false;
        for entry in entries {
            match entry {
                Entry::Type(pattern) if pattern.matches(kind) => return Some(true),
                Entry::Type(_) => {}
                Entry::XPath(_) => undecided = true,
            }
        }
        (!undecided).then_some(false)
    }

    /// Whether this filter takes the event.
    pub fn matches(&self, event: &Event) -> bool {
        match self {
            Filter::All => true,
            Filter::Any(entries) => entries.iter().any(|e| e.matches(event)),
        }
    }
}

/// A type pattern: name characters and `*`, which matches any run of characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypePattern {
    text: Box<str>,
    /// Whether `text` has a `*`; without one, matching is plain comparison.
    wildcard: bool,
}

impl TypePattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The part before the first `*`: the whole pattern when it has none.
    pub fn literal_prefix(&self) -> &str {
        self.text.split('*').next().unwrap_or_default()
    }

    /// Whether the pattern has a `*`.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// Whether `kind` matches, `*` standing for any run of characters.
    pub fn matches(&self, kind: &str) -> bool {
        if !self.wildcard {
            return *self.text == *kind;
        }
        glob_match(self.text.as_bytes(), kind.as_bytes())
    }
}

/// Wildcard matching with `*` only, in O(pattern × text) at worst.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            resume = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, at)) = resume {
            p = star + 1;
            t = at + 1;
            resume = Some((star, at + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_any_run() {
        assert!(glob_match(b"domain-*", b"domain-state-transition"));
        assert!(glob_match(b"domain-*", b"domain-"));
        assert!(!glob_match(b"domain-*", b"domain"));
        assert!(glob_match(b"*-lost", b"events-lost"));
        assert!(glob_match(b"d*n*t*", b"domain-state-transition"));
        assert!(!glob_match(b"d*x*", b"domain-state-transition"));
        assert!(glob_match(b"a*b*c", b"aXbYbZc"));
        assert!(!glob_match(b"a*b*c", b"aXbYbZ"));
        assert!(glob_match(b"exact", b"exact"));
        assert!(!glob_match(b"exact", b"exactly"));
    }

    #[test]
    fn entries_that_are_not_type_patterns_are_xpath() {
        let Filter::Any(entries) = Filter::parse(&["domain-*", "/event[x=1]"]).unwrap() else { panic!() };
        assert!(matches!(entries[0], Entry::Type(_)));
        assert!(matches!(entries[1], Entry::XPath(_)));
        let err = Filter::parse(&["a", "/event[x=", "b"]).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArg);
        assert!(err.message.contains("filter[1]") && err.message.contains("/event[x=") && err.message.contains("character 9"), "{}", err.message);
    }

    #[test]
    fn parse_reports_entry_and_position() {
        let err = Filter::parse(&["a", ""]).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArg);
        assert!(err.message.contains("filter[1]"), "{}", err.message);
        let err = Filter::parse::<&str>(&[]).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArg);
        assert!(err.message.contains("empty"));
        assert_eq!(Filter::parse(&["domain-*", "*"]).unwrap(), Filter::All);
    }
}
