//! Evaluation of a parsed expression against an event's tree, with XPath 1.0's
//! conversions and comparison rules, within a work budget: every node an axis
//! visits spends one unit, and an evaluation that runs out is abandoned.

use std::borrow::Cow;

use super::syntax::{Arithmetic, Axis, Comparison, Expr, Function, NodeTest, Path, Step};
use super::tree::{Kind, NodeId, Tree};

/// How much work one evaluation may do: a unit per node an axis visits, per
/// pair of nodes compared, and per 4 bytes of string handled.
pub const WORK_BUDGET: u64 = 1_000_000;

/// The evaluation ran out of its work budget.
#[derive(Debug)]
pub struct Exhausted;

type Evaluated<T> = Result<T, Exhausted>;

/// An XPath value.
#[derive(Debug)]
enum Value<'t> {
    /// Nodes, in document order, without duplicates.
    Nodes(Vec<NodeId>),
    Number(f64),
    String(Cow<'t, str>),
    Boolean(bool),
}

/// Where an expression is evaluated: the context node, its position and size.
#[derive(Clone, Copy)]
struct Context {
    node: NodeId,
    position: usize,
    size: usize,
}

/// One evaluation: the tree and what is left of the budget.
pub struct Evaluation<'t> {
    tree: &'t Tree,
    budget: u64,
}

impl<'t> Evaluation<'t> {
    /// Starts an evaluation on `tree` with the full budget.
    pub fn new(tree: &'t Tree) -> Evaluation<'t> {
        Evaluation { tree, budget: WORK_BUDGET }
    }

    /// The boolean value of `expr` with the root as context node.
    pub fn boolean(&mut self, expr: &Expr) -> Evaluated<bool> {
        let root = Context { node: 0, position: 1, size: 1 };
        let value = self.eval(expr, root)?;
        Ok(self.to_boolean(&value))
    }

    fn spend(&mut self, units: u64) -> Evaluated<()> {
        self.budget = self.budget.checked_sub(units).ok_or(Exhausted)?;
        Ok(())
    }

    fn eval(&mut self, expr: &Expr, cx: Context) -> Evaluated<Value<'t>> {
        self.spend(1)?;
        Ok(match expr {
            Expr::Or(a, b) => {
                let a = self.eval(a, cx)?;
                Value::Boolean(self.to_boolean(&a) || {
                    let b = self.eval(b, cx)?;
                    self.to_boolean(&b)
                })
            }
            Expr::And(a, b) => {
                let a = self.eval(a, cx)?;
                Value::Boolean(self.to_boolean(&a) && {
                    let b = self.eval(b, cx)?;
                    self.to_boolean(&b)
                })
            }
            Expr::Compare(op, a, b) => {
                let (a, b) = (self.eval(a, cx)?, self.eval(b, cx)?);
                Value::Boolean(self.compare(*op, &a, &b)?)
            }
            Expr::Arithmetic(op, a, b) => {
                let a = self.eval(a, cx)?;
                let a = self.number_of(&a)?;
                let b = self.eval(b, cx)?;
                let b = self.number_of(&b)?;
                Value::Number(match op {
                    Arithmetic::Add => a + b,
                    Arithmetic::Subtract => a - b,
                    Arithmetic::Multiply => a * b,
                    Arithmetic::Divide => a / b,
                    Arithmetic::Modulo => a % b,
                })
            }
            Expr::Negate(a) => {
                let a = self.eval(a, cx)?;
                Value::Number(-self.number_of(&a)?)
            }
            Expr::Union(a, b) => {
                let (a, b) = (self.eval(a, cx)?, self.eval(b, cx)?);
                let (Value::Nodes(mut a), Value::Nodes(b)) = (a, b) else {
                    return Ok(Value::Nodes(Vec::new())); // refused at compile time
                };
                a.extend(b);
                a.sort_unstable();
                a.dedup();
                Value::Nodes(a)
            }
            Expr::Path(path) => Value::Nodes(self.path(path, cx)?),
            Expr::Filter(primary, predicates, steps) => {
                let Value::Nodes(mut nodes) = self.eval(primary, cx)? else {
                    return Ok(Value::Nodes(Vec::new())); // a non-node-set filtered: empty
                };
                for predicate in predicates {
                    nodes = self.filter(nodes, predicate)?;
                }
                for step in steps {
                    nodes = self.step(&nodes, step)?;
                }
                Value::Nodes(nodes)
            }
            Expr::Literal(text) => Value::String(Cow::Owned(text.clone())),
            Expr::Number(n) => Value::Number(*n),
            Expr::Call(function, args) => self.call(*function, args, cx)?,
        })
    }

    fn path(&mut self, path: &Path, cx: Context) -> Evaluated<Vec<NodeId>> {
        let mut nodes = vec![if path.absolute { 0 } else { cx.node }];
        for step in &path.steps {
            nodes = self.step(&nodes, step)?;
        }
        Ok(nodes)
    }

    /// One step from every node of `from` (in document order): the union of
    /// what it selects from each, in document order.
    fn step(&mut self, from: &[NodeId], step: &Step) -> Evaluated<Vec<NodeId>> {
        let tree = self.tree;
        let mut out = Vec::new();
        // Without predicates, a node inside a subtree already walked adds
        // nothing on the downward axes: skip it, so that `//` chains stay linear.
        let skip_covered = step.predicates.is_empty() && matches!(step.axis, Axis::Descendant | Axis::DescendantOrSelf);
        let mut covered_until = 0;
        let mut candidates = Vec::new();
        for &node in from {
            if skip_covered && node < covered_until {
                continue;
            }
            candidates.clear();
            match step.axis {
                Axis::Child => candidates.extend(tree.children(node)),
                Axis::Attribute => candidates.extend(tree.attributes(node)),
                Axis::SelfNode => candidates.push(node),
                Axis::Parent => candidates.extend(tree.parent(node)),
                Axis::Descendant | Axis::DescendantOrSelf => {
                    if step.axis == Axis::DescendantOrSelf {
                        candidates.push(node);
                    }
                    let subtree = tree.subtree(node);
                    covered_until = covered_until.max(subtree.end);
                    candidates.extend(subtree.filter(|&d| tree.kind(d) != Kind::Attribute));
                }
            }
            self.spend(candidates.len() as u64)?;
            candidates.retain(|&n| self.passes(n, step));
            let mut selected = std::mem::take(&mut candidates);
            for predicate in &step.predicates {
                selected = self.filter(selected, predicate)?;
            }
            out.extend_from_slice(&selected);
            candidates = selected;
        }
        if from.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        Ok(out)
    }

    fn passes(&self, node: NodeId, step: &Step) -> bool {
        let kind = self.tree.kind(node);
        let principal = if step.axis == Axis::Attribute { Kind::Attribute } else { Kind::Element };
        match &step.test {
            NodeTest::Node => true,
            NodeTest::Text => kind == Kind::Text,
            NodeTest::AnyName => kind == principal,
            NodeTest::Name(name) => kind == principal && self.tree.name(node) == name,
        }
    }

    /// Keeps the nodes for which `predicate` holds; a number means a position.
    fn filter(&mut self, nodes: Vec<NodeId>, predicate: &Expr) -> Evaluated<Vec<NodeId>> {
        let size = nodes.len();
        let mut kept = Vec::with_capacity(size);
        for (i, &node) in nodes.iter().enumerate() {
            let cx = Context { node, position: i + 1, size };
            let keep = match self.eval(predicate, cx)? {
                Value::Number(n) => n == (i + 1) as f64,
                other => self.to_boolean(&other),
            };
            if keep {
                kept.push(node);
            }
        }
        Ok(kept)
    }

    fn to_boolean(&self, value: &Value) -> bool {
        match value {
            Value::Nodes(nodes) => !nodes.is_empty(),
            Value::Number(n) => *n != 0.0 && !n.is_nan(),
            Value::String(s) => !s.is_empty(),
            Value::Boolean(b) => *b,
        }
    }

    /// A node's string-value, paid for: an element's costs its subtree.
    fn string_value(&mut self, n: NodeId) -> Evaluated<Cow<'t, str>> {
        self.spend(self.tree.subtree(n).len() as u64 + 1)?;
        let value = self.tree.string_value(n);
        self.spend_bytes(&value)?;
        Ok(value)
    }

    fn spend_bytes(&mut self, text: &str) -> Evaluated<()> {
        self.spend(text.len() as u64 / 4)
    }

    fn number_of(&mut self, value: &Value<'t>) -> Evaluated<f64> {
        Ok(match value {
            Value::Nodes(_) => string_to_number(&self.string_of(value)?),
            Value::Number(n) => *n,
            Value::String(s) => string_to_number(s),
            Value::Boolean(b) => f64::from(u8::from(*b)),
        })
    }

    fn string_of(&mut self, value: &Value<'t>) -> Evaluated<Cow<'t, str>> {
        Ok(match value {
            Value::Nodes(nodes) => match nodes.first() {
                Some(&n) => self.string_value(n)?,
                None => Cow::Borrowed(""),
            },
            Value::Number(n) => Cow::Owned(number_to_string(*n)),
            Value::String(s) => s.clone(),
            Value::Boolean(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        })
    }

    /// XPath 1.0 section 3.4. Each node's string-value (and number) is found
    /// once per comparison, then the pairs are compared.
    fn compare(&mut self, op: Comparison, a: &Value<'t>, b: &Value<'t>) -> Evaluated<bool> {
        let relational = !matches!(op, Comparison::Equal | Comparison::NotEqual);
        match (a, b) {
            (Value::Nodes(x), Value::Nodes(y)) => {
                self.spend((x.len() as u64).saturating_mul(y.len() as u64))?;
                if relational {
                    let left = self.numbers(x)?;
                    let right = self.numbers(y)?;
                    return Ok(left.iter().any(|&l| right.iter().any(|&r| compare_numbers(op, l, r))));
                }
                let left = self.strings(x)?;
                let right = self.strings(y)?;
                // Equal strings are compared byte by byte: pay for the longest.
                let longest = right.iter().map(|r| r.len()).max().unwrap_or(0) as u64;
                self.spend((left.len() as u64).saturating_mul(longest / 4))?;
                Ok(left.iter().any(|l| right.iter().any(|r| compare_strings(op, l, r))))
            }
            (Value::Nodes(nodes), other) | (other, Value::Nodes(nodes)) => {
                let flipped = matches!(b, Value::Nodes(_)) && !matches!(a, Value::Nodes(_));
                let op = if flipped { mirror(op) } else { op };
                match other {
                    Value::Boolean(other) => {
                        Ok(compare_values(op, &Value::Boolean(!nodes.is_empty()), &Value::Boolean(*other)))
                    }
                    Value::String(s) if !relational => Ok(self.strings(nodes)?.iter().any(|t| compare_strings(op, t, s))),
                    _ => {
                        let other = self.number_of(other)?;
                        Ok(self.numbers(nodes)?.iter().any(|&n| compare_numbers(op, n, other)))
                    }
                }
            }
            _ => Ok(compare_values(op, a, b)),
        }
    }

    /// Argument `i` as a string (its bytes paid for, since the function will
    /// go through them); without it, the context node's string-value.
    fn arg_string(&mut self, values: &[Value<'t>], cx: Context, i: usize) -> Evaluated<Cow<'t, str>> {
        match values.get(i) {
            Some(value) => {
                let text = self.string_of(value)?;
                self.spend_bytes(&text)?;
                Ok(text)
            }
            None => self.string_value(cx.node),
        }
    }

    /// Argument `i` as a number.
    fn arg_number(&mut self, values: &[Value<'t>], i: usize) -> Evaluated<f64> {
        values.get(i).map_or(Ok(f64::NAN), |value| self.number_of(value))
    }

    fn strings(&mut self, nodes: &[NodeId]) -> Evaluated<Vec<Cow<'t, str>>> {
        nodes.iter().map(|&n| self.string_value(n)).collect()
    }

    fn numbers(&mut self, nodes: &[NodeId]) -> Evaluated<Vec<f64>> {
        nodes.iter().map(|&n| Ok(string_to_number(&self.string_value(n)?))).collect()
    }

    fn call(&mut self, function: Function, args: &[Expr], cx: Context) -> Evaluated<Value<'t>> {
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(self.eval(arg, cx)?);
        }
        Ok(match function {
            Function::Not => Value::Boolean(!self.to_boolean(&values[0])),
            Function::True => Value::Boolean(true),
            Function::False => Value::Boolean(false),
            Function::Boolean => Value::Boolean(self.to_boolean(&values[0])),
            Function::Count => Value::Number(nodes_of(&values[0]).len() as f64),
            Function::String => Value::String(self.arg_string(&values, cx, 0)?),
            Function::Concat => {
                let mut joined = String::new();
                for i in 0..values.len() {
                    joined.push_str(&self.arg_string(&values, cx, i)?);
                }
                Value::String(Cow::Owned(joined))
            }
            Function::Contains => Value::Boolean(self.arg_string(&values, cx, 0)?.contains(&*self.arg_string(&values, cx, 1)?)),
            Function::StartsWith => Value::Boolean(self.arg_string(&values, cx, 0)?.starts_with(&*self.arg_string(&values, cx, 1)?)),
            Function::Substring => {
                let text = self.arg_string(&values, cx, 0)?;
                let start = round(self.arg_number(&values, 1)?);
                let end = if values.len() > 2 { start + round(self.arg_number(&values, 2)?) } else { f64::INFINITY };
                let kept: String = text
                    .chars()
                    .enumerate()
                    .filter(|&(i, _)| {
                        let p = (i + 1) as f64;
                        p >= start && p < end
                    })
                    .map(|(_, c)| c)
                    .collect();
                Value::String(Cow::Owned(kept))
            }
            Function::SubstringBefore => {
                let (text, sep) = (self.arg_string(&values, cx, 0)?, self.arg_string(&values, cx, 1)?);
                Value::String(Cow::Owned(text.find(&*sep).map_or("", |i| &text[..i]).to_string()))
            }
            Function::SubstringAfter => {
                let (text, sep) = (self.arg_string(&values, cx, 0)?, self.arg_string(&values, cx, 1)?);
                Value::String(Cow::Owned(text.find(&*sep).map_or("", |i| &text[i + sep.len()..]).to_string()))
            }
            Function::StringLength => Value::Number(self.arg_string(&values, cx, 0)?.chars().count() as f64),
            Function::NormalizeSpace => {
                let text = self.arg_string(&values, cx, 0)?;
                let words: Vec<&str> = text.split([' ', '\t', '\n', '\r']).filter(|w| !w.is_empty()).collect();
                Value::String(Cow::Owned(words.join(" ")))
            }
            Function::Translate => {
                let text = self.arg_string(&values, cx, 0)?;
                let (from, to) = (self.arg_string(&values, cx, 1)?, self.arg_string(&values, cx, 2)?);
                // What each character of `from` becomes (the first mention wins;
                // none: it is removed), looked up once per character of `text`.
                let mut to = to.chars();
                let mut map: std::collections::HashMap<char, Option<char>> = std::collections::HashMap::new();
                for c in from.chars() {
                    let replacement = to.next();
                    map.entry(c).or_insert(replacement);
                }
                let translated = text.chars().filter_map(|c| *map.get(&c).unwrap_or(&Some(c))).collect();
                Value::String(Cow::Owned(translated))
            }
            Function::Number => Value::Number(match values.first() {
                Some(v) => self.number_of(v)?,
                None => string_to_number(&self.string_value(cx.node)?),
            }),
            // A fold from +0: `Iterator::sum` starts from -0, which `1 div sum(...)` shows.
            Function::Sum => Value::Number(self.numbers(nodes_of(&values[0]))?.into_iter().fold(0.0, |a, b| a + b)),
            Function::Floor => Value::Number(self.arg_number(&values, 0)?.floor()),
            Function::Ceiling => Value::Number(self.arg_number(&values, 0)?.ceil()),
            Function::Round => Value::Number(round(self.arg_number(&values, 0)?)),
            Function::Name | Function::LocalName => {
                let node = match values.first() {
                    Some(v) => nodes_of(v).first().copied(),
                    None => Some(cx.node),
                };
                let name = node.map_or("", |n| self.tree.name(n));
                let name = if function == Function::LocalName { name.rsplit(':').next().unwrap_or("") } else { name };
                Value::String(Cow::Owned(name.to_string()))
            }
            Function::Position => Value::Number(cx.position as f64),
            Function::Last => Value::Number(cx.size as f64),
        })
    }
}

fn nodes_of<'v>(value: &'v Value) -> &'v [NodeId] {
    match value {
        Value::Nodes(nodes) => nodes,
        _ => &[],
    }
}

/// The operator with its operands swapped: `1 < x` is `x > 1`.
fn mirror(op: Comparison) -> Comparison {
    match op {
        Comparison::Less => Comparison::Greater,
        Comparison::LessOrEqual => Comparison::GreaterOrEqual,
        Comparison::Greater => Comparison::Less,
        Comparison::GreaterOrEqual => Comparison::LessOrEqual,
        same => same,
    }
}

/// Comparison of two values that are not node-sets.
fn compare_values(op: Comparison, a: &Value, b: &Value) -> bool {
    let number = |v: &Value| match v {
        Value::Number(n) => *n,
        Value::String(s) => string_to_number(s),
        Value::Boolean(b) => f64::from(u8::from(*b)),
        Value::Nodes(_) => f64::NAN,
    };
    let boolean = |v: &Value| match v {
        Value::Number(n) => *n != 0.0 && !n.is_nan(),
        Value::String(s) => !s.is_empty(),
        Value::Boolean(b) => *b,
        Value::Nodes(n) => !n.is_empty(),
    };
    match op {
        Comparison::Equal | Comparison::NotEqual => {
            let equal = match (a, b) {
                (Value::Boolean(_), _) | (_, Value::Boolean(_)) => boolean(a) == boolean(b),
                (Value::Number(_), _) | (_, Value::Number(_)) => number(a) == number(b),
                (Value::String(x), Value::String(y)) => x == y,
                _ => false,
            };
            equal == (op == Comparison::Equal)
        }
        _ => compare_numbers(op, number(a), number(b)),
    }
}

fn compare_strings(op: Comparison, a: &str, b: &str) -> bool {
    match op {
        Comparison::Equal => a == b,
        Comparison::NotEqual => a != b,
        _ => compare_numbers(op, string_to_number(a), string_to_number(b)),
    }
}

fn compare_numbers(op: Comparison, a: f64, b: f64) -> bool {
    match op {
        Comparison::Equal => a == b,
        Comparison::NotEqual => a != b,
        Comparison::Less => a < b,
        Comparison::LessOrEqual => a <= b,
        Comparison::Greater => a > b,
        Comparison::GreaterOrEqual => a >= b,
    }
}

/// XPath's number(): optional whitespace, an optional minus, digits with an
/// optional fraction (or a fraction alone), optional whitespace; else NaN.
pub fn string_to_number(text: &str) -> f64 {
    let trimmed = text.trim_matches([' ', '\t', '\n', '\r']);
    let body = trimmed.strip_prefix('-').unwrap_or(trimmed);
    let (whole, fraction) = match body.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (body, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let has_digit = !whole.is_empty() || fraction.is_some_and(|f| !f.is_empty());
    if has_digit && all_digits(whole) && fraction.is_none_or(all_digits) {
        trimmed.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

/// XPath's string() of a number: NaN, Infinity, integers without a point,
/// others in plain decimal notation (Rust's `Display` never uses exponents).
pub fn number_to_string(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if n == 0.0 {
        "0".into()
    } else {
        format!("{n}")
    }
}

/// XPath's round(): the closest integer, halves rounded up; NaN, infinities
/// and zeros as they are, and -0 for arguments in [-0.5, 0) (XPath 1.0 4.4).
fn round(n: f64) -> f64 {
    if n.is_nan() || n.is_infinite() || n == 0.0 {
        n
    } else if (-0.5..0.0).contains(&n) {
        -0.0
    } else {
        (n + 0.5).floor()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_convert_as_xpath_says() {
        assert_eq!(string_to_number(" 12 "), 12.0);
        assert_eq!(string_to_number("-1.5"), -1.5);
        assert_eq!(string_to_number(".5"), 0.5);
        assert_eq!(string_to_number("5."), 5.0);
        for nan in ["", ".", "-", "1e3", "+1", "inf", "0x10", "1 2"] {
            assert!(string_to_number(nan).is_nan(), "{nan}");
        }
        assert_eq!(number_to_string(3.0), "3");
        assert_eq!(number_to_string(-0.0), "0");
        assert_eq!(number_to_string(0.5), "0.5");
        assert_eq!(number_to_string(f64::NAN), "NaN");
        assert_eq!(number_to_string(-f64::INFINITY), "-Infinity");
        assert_eq!(round(2.5), 3.0);
        assert_eq!(round(-2.5), -2.0);
        for negative_zero in [-0.25, -0.5, -0.0] {
            assert!(round(negative_zero) == 0.0 && round(negative_zero).is_sign_negative(), "{negative_zero}");
        }
    }
}
