//! XPath 1.0 filter entries: compiled once at registration, evaluated against a
//! compact tree of the event that is built at most once per event.

mod eval;
mod syntax;
mod tree;

use std::fmt;

pub use syntax::{SyntaxError, MAX_DEPTH, MAX_LENGTH, MAX_TREE_DEPTH};
pub use tree::Tree;

use syntax::{Axis, Comparison, Expr, NodeTest, Path};

/// A compiled XPath filter entry.
pub struct XPath {
    text: Box<str>,
    expr: Expr,
    fixed_type: Option<Box<str>>,
}

impl XPath {
    /// Compiles `text`, refusing (with the character position of the problem)
    /// what this library does not evaluate.
    pub fn compile(text: &str) -> Result<XPath, SyntaxError> {
        let expr = syntax::parse(text)?;
        let fixed_type = fixed_type(&expr).map(Into::into);
        Ok(XPath { text: text.into(), expr, fixed_type })
    }

    /// Whether the expression's boolean value is true on `tree`. An evaluation
    /// that exceeds its work budget counts as false.
    pub fn matches(&self, tree: &Tree) -> bool {
        eval::Evaluation::new(tree).boolean(&self.expr).unwrap_or(false)
    }

    /// The event type the expression requires, when it has the form
    /// `/event[@type='T']` or `/event[@type='T' and ...]`: such filters join
    /// the type index.
    pub fn fixed_type(&self) -> Option<&str> {
        self.fixed_type.as_deref()
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for XPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("XPath").field(&self.text).finish()
    }
}

impl PartialEq for XPath {
    fn eq(&self, other: &XPath) -> bool {
        self.text == other.text
    }
}

/// `T` for `/event[@type='T' ...]`, where the predicate is that comparison or
/// an `and` whose leftmost operand is.
fn fixed_type(expr: &Expr) -> Option<&str> {
    let Expr::Path(Path { absolute: true, steps }) = expr else { return None };
    let [step] = steps.as_slice() else { return None };
    if step.axis != Axis::Child || step.test != NodeTest::Name("event".into()) {
        return None;
    }
    let [mut predicate] = [step.predicates.first()?];
    while let Expr::And(left, _) = predicate {
        predicate = left;
    }
    let Expr::Compare(Comparison::Equal, a, b) = predicate else { return None };
    let (attribute, literal) = match (&**a, &**b) {
        (Expr::Literal(l), other) | (other, Expr::Literal(l)) => (other, l),
        _ => return None,
    };
    let Expr::Path(Path { absolute: false, steps }) = attribute else { return None };
    match steps.as_slice() {
        [s] if s.axis == Axis::Attribute && s.test == NodeTest::Name("type".into()) && s.predicates.is_empty() => {
            Some(literal)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"<event type="domain-state-transition" timestamp="1221756307.123456" seq="7"><domain-id>3</domain-id><domain-name>vm1</domain-name><old-state>running</old-state><new-state>paused</new-state><reason>suspended-paused</reason></event>"#;

    fn eval(expr: &str) -> bool {
        XPath::compile(expr).unwrap_or_else(|e| panic!("{expr}: {e}")).matches(&Tree::build(EVENT))
    }

    #[test]
    fn evaluates_against_the_event() {
        for yes in [
            "/event[new-state='paused']",
            "//domain-name = 'vm1'",
            "/event[@type='domain-state-transition' and domain-id > 2]",
            "count(/event/*) > 3",
            "/event/@seq > 6",
            "event",
            "/event/domain-id + 1 = 4",
            "string(/event/*[2]) = 'vm1'",
            "name(/event/*[last()]) = 'reason'",
            "//reason[starts-with(., 'suspended')]",
            "substring-after(//reason, '-') = 'paused'",
            "not(//new-state = 'crashed')",
            "sum(//domain-id | //@seq) = 10",
            "-//domain-id = -3",
            "1 div sum(//nothing) > 0",
            "count(//text()) = 5",
            "//domain-id/.. = /event",
            "round(2.5) = 3 and floor(-1.5) = -2 and ceiling(1.2) = 2",
            "translate('abc', 'ab', 'A') = 'Ac'",
            "normalize-space('  a  b ') = 'a b'",
            "string-length(//domain-name) = 3",
            "concat(//domain-name, '-', //domain-id) = 'vm1-3'",
            "contains(//reason, 'pause')",
            "1 div 0 > 1000 and string(0 div 0) = 'NaN'",
            "7 mod 3 = 1",
            "boolean(//domain-name) = true()",
            "//old-state != //new-state",
            "(//domain-id | //domain-name)[2] = 'vm1'",
            "//*[position() = 2 and last() = 5]",
        ] {
            assert!(eval(yes), "{yes}");
        }
        for no in ["/event[new-state='crashed']", "//domain-name = 'vm2'", "/nope", "//domain-id > 3", "false()"] {
            assert!(!eval(no), "{no}");
        }
    }

    #[test]
    fn type_fixing_filters_are_recognised() {
        let fixed = |e: &str| XPath::compile(e).unwrap().fixed_type().map(str::to_string);
        assert_eq!(fixed("/event[@type='a']"), Some("a".into()));
        assert_eq!(fixed("/event[@type = \"a\" and x > 1 and y]"), Some("a".into()));
        assert_eq!(fixed("/event['a' = @type]"), Some("a".into()));
        assert_eq!(fixed("/event[x and @type='a']"), None);
        assert_eq!(fixed("/event[@type='a' or x]"), None);
        assert_eq!(fixed("/event[@type='a']/x"), None);
        assert_eq!(fixed("//event[@type='a']"), None);
    }

    #[test]
    fn the_deepest_expressions_evaluate_on_a_small_stack() {
        let chain = format!("1{}", "+1".repeat(MAX_TREE_DEPTH - 1));
        let nesting = format!("{}1{}", "(".repeat(MAX_DEPTH - 1), ")".repeat(MAX_DEPTH - 1));
        let predicates = format!("//*{}", "[*".repeat(MAX_DEPTH - 1) + &"]".repeat(MAX_DEPTH - 1));
        let mixed = format!("{}1{}", "(1 + ".repeat(MAX_DEPTH - 1), ")".repeat(MAX_DEPTH - 1));
        let run = move || {
            let tree = Tree::build(EVENT);
            for expr in [&chain, &nesting, &predicates, &mixed] {
                let _ = XPath::compile(expr).unwrap_or_else(|e| panic!("{expr}: {e}")).matches(&tree);
            }
        };
        // 512 KiB: a quarter of a spawned Rust thread's default, and far below
        // the 8 MiB a C program's threads usually have.
        std::thread::Builder::new().stack_size(512 * 1024).spawn(run).unwrap().join().unwrap();
    }

    #[test]
    fn nested_descendant_chains_stay_within_budget() {
        let mut xml = String::from(r#"<event type="t">"#);
        for _ in 0..300 {
            xml.push_str("<a>");
        }
        for _ in 0..300 {
            xml.push_str("</a>");
        }
        xml.push_str("</event>");
        let tree = Tree::build(&xml);
        let chain = XPath::compile("//a//a//a//a//a//a//a//a//a//a").unwrap();
        assert!(chain.matches(&tree));
        // Predicates make each step quadratic: the budget stops it, as no match.
        let nested = XPath::compile("//a[.//a[.//a[.//a[.//a[count(.//a) = 0]]]]]").unwrap();
        assert!(!nested.matches(&tree));
    }
}
