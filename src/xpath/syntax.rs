//! XPath 1.0 syntax: the tokens, the tree of an expression, and the parser that
//! refuses, with the position of the problem, anything this library does not
//! evaluate.

use std::fmt;

/// The longest expression accepted, in bytes.
pub const MAX_LENGTH: usize = 4096;

/// How deeply parentheses, predicates and function arguments may nest.
pub const MAX_DEPTH: usize = 32;

/// How deep the tree of an expression may be: nesting and chained operators
/// (`1+1+1...`) together, which bounds the recursion of evaluation.
pub const MAX_TREE_DEPTH: usize = 128;

/// Why an expression was refused: what, and where (a character offset from 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// The character offset of the problem.
    pub position: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at character {}", self.message, self.position)
    }
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `a = b`, `a < b`, ...
    Compare(Comparison, Box<Expr>, Box<Expr>),
    /// `a + b`, `a div b`, ...
    Arithmetic(Arithmetic, Box<Expr>, Box<Expr>),
    /// `-a`
    Negate(Box<Expr>),
    /// `a | b`
    Union(Box<Expr>, Box<Expr>),
    /// A location path.
    Path(Path),
    /// A primary expression with predicates, and a path relative to its nodes.
    Filter(Box<Expr>, Vec<Expr>, Vec<Step>),
    /// `'text'`
    Literal(String),
    /// `1.5`
    Number(f64),
    /// `name(args)`
    Call(Function, Vec<Expr>),
}

/// The comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
}

/// The arithmetic operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arithmetic {
    /// `+`
    Add,
    /// `-`
    Subtract,
    /// `*`
    Multiply,
    /// `div`
    Divide,
    /// `mod`
    Modulo,
}

/// A location path: steps from the root (absolute) or from the context node.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    /// Whether it starts at the root.
    pub absolute: bool,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step of a path.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Which way it goes.
    pub axis: Axis,
    /// Which nodes it keeps.
    pub test: NodeTest,
    /// The predicates that filter them, in order.
    pub predicates: Vec<Expr>,
}

/// The axes this library evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// `child::` (the default)
    Child,
    /// `descendant::`
    Descendant,
    /// `descendant-or-self::` (what `//` abbreviates)
    DescendantOrSelf,
    /// `attribute::` or `@`
    Attribute,
    /// `self::` or `.`
    SelfNode,
    /// `parent::` or `..`
    Parent,
}

/// Which nodes a step keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeTest {
    /// Nodes of the axis's principal type with this name.
    Name(String),
    /// `*`: every node of the axis's principal type.
    AnyName,
    /// `text()`
    Text,
    /// `node()`
    Node,
}

/// The functions this library evaluates, with their arities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Not,
    True,
    False,
    Boolean,
    Count,
    String,
    Concat,
    Contains,
    StartsWith,
    Substring,
    SubstringBefore,
    SubstringAfter,
    StringLength,
    NormalizeSpace,
    Translate,
    Number,
    Sum,
    Floor,
    Ceiling,
    Round,
    Name,
    LocalName,
    Position,
    Last,
}

impl Function {
    fn by_name(name: &str) -> Option<Function> {
        use Function::*;
        Some(match name {
            "not" => Not,
            "true" => True,
            "false" => False,
            "boolean" => Boolean,
            "count" => Count,
            "string" => String,
            "concat" => Concat,
            "contains" => Contains,
            "starts-with" => StartsWith,
            "substring" => Substring,
            "substring-before" => SubstringBefore,
            "substring-after" => SubstringAfter,
            "string-length" => StringLength,
            "normalize-space" => NormalizeSpace,
            "translate" => Translate,
            "number" => Number,
            "sum" => Sum,
            "floor" => Floor,
            "ceiling" => Ceiling,
            "round" => Round,
            "name" => Name,
            "local-name" => LocalName,
            "position" => Position,
            "last" => Last,
            _ => return None,
        })
    }

    /// The fewest and most arguments it takes.
    fn arity(self) -> (usize, usize) {
        use Function::*;
        match self {
            True | False | Position | Last => (0, 0),
            Not | Boolean | Floor | Ceiling | Round | Count | Sum => (1, 1),
            String | StringLength | NormalizeSpace | Number | Name | LocalName => (0, 1),
            Contains | StartsWith | SubstringBefore | SubstringAfter => (2, 2),
            Substring => (2, 3),
            Translate => (3, 3),
            Concat => (2, usize::MAX),
        }
    }

    /// Whether its (only) argument must be a node-set.
    fn takes_nodes(self) -> bool {
        matches!(self, Function::Count | Function::Sum | Function::Name | Function::LocalName)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Slash,
    DoubleSlash,
    LeftBracket,
    RightBracket,
    LeftParen,
    RightParen,
    At,
    Comma,
    Dot,
    DoubleDot,
    ColonColon,
    Pipe,
    Plus,
    Minus,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Star,
    Dollar,
    Literal(String),
    Number(f64),
    Name(String),
}

/// Splits an expression into tokens with their character offsets.
fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start = i;
        let token = match c {
            ' ' | '\t' | '\n' | '\r' => {
                i += 1;
                continue;
            }
            '/' if next == Some('/') => Token::DoubleSlash,
            '/' => Token::Slash,
            '[' => Token::LeftBracket,
            ']' => Token::RightBracket,
            '(' => Token::LeftParen,
            ')' => Token::RightParen,
            '@' => Token::At,
            ',' => Token::Comma,
            '|' => Token::Pipe,
            '+' => Token::Plus,
            '-' => Token::Minus,
            '=' => Token::Equal,
            '*' => Token::Star,
            '$' => Token::Dollar,
            '!' if next == Some('=') => Token::NotEqual,
            '<' if next == Some('=') => Token::LessOrEqual,
            '<' => Token::Less,
            '>' if next == Some('=') => Token::GreaterOrEqual,
            '>' => Token::Greater,
            ':' if next == Some(':') => Token::ColonColon,
            '.' if next == Some('.') => Token::DoubleDot,
            '.' if !next.is_some_and(|n| n.is_ascii_digit()) => Token::Dot,
            '"' | '\'' => {
                let close = chars[i + 1..].iter().position(|&q| q == c).ok_or(SyntaxError {
                    position: i,
                    message: "unterminated string literal".into(),
                })?;
                let literal: String = chars[i + 1..i + 1 + close].iter().collect();
                i += close + 2;
                tokens.push((Token::Literal(literal), start));
                continue;
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                if i < chars.len() && chars[i] == '.' {
                    i += 1;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                let number: String = chars[start..i].iter().collect();
                tokens.push((Token::Number(number.parse().unwrap_or(f64::NAN)), start));
                continue;
            }
            c if is_name_start(c) => {
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
                // A QName's prefix: kept, so that the parser can refuse it by name.
                if i + 1 < chars.len() && chars[i] == ':' && chars[i + 1] != ':' {
                    i += 1;
                    while i < chars.len() && (is_name_char(chars[i]) || chars[i] == '*') {
                        i += 1;
                    }
                }
                tokens.push((Token::Name(chars[start..i].iter().collect()), start));
                continue;
            }
            other => {
                return Err(SyntaxError { position: i, message: format!("unexpected character '{other}'") });
            }
        };
        i += match token {
            Token::DoubleSlash
            | Token::NotEqual
            | Token::LessOrEqual
            | Token::GreaterOrEqual
            | Token::ColonColon
            | Token::DoubleDot => 2,
            _ => 1,
        };
        tokens.push((token, start));
    }
    Ok(tokens)
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Parses an expression, refusing what this library does not evaluate.
pub fn parse(text: &str) -> Result<Expr, SyntaxError> {
    if text.len() > MAX_LENGTH {
        return Err(SyntaxError {
            position: MAX_LENGTH,
            message: format!("the expression is {} bytes, longer than the limit of {MAX_LENGTH}", text.len()),
        });
    }
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, at: 0, depth: 0, levels: 0, end: text.chars().count() };
    let expr = parser.expr()?;
    if parser.at < parser.tokens.len() {
        return Err(parser.error("unexpected token after the end of the expression"));
    }
    Ok(expr)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    /// Nesting of parentheses, predicates and arguments.
    depth: usize,
    /// Depth of the tree being built along the current branch.
    levels: usize,
    /// The character count, the position of "the end".
    end: usize,
}

type Parsed<T> = Result<T, SyntaxError>;

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.at + ahead).map(|(t, _)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(_, p)| *p)
    }

    fn error(&self, message: &str) -> SyntaxError {
        SyntaxError { position: self.position(), message: message.into() }
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token, what: &str) -> Parsed<()> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }

    /// The operator the next token stands for in `operators`, consumed.
    fn eat_one<T: Copy>(&mut self, operators: &[(Token, T)]) -> Option<T> {
        let (_, op) = operators.iter().find(|(token, _)| self.peek() == Some(token))?;
        self.at += 1;
        Some(*op)
    }

    /// Whether the next token is the operator name `name` (`and`, `or`, `div`,
    /// `mod`): a name there, after an operand, is an operator.
    fn eat_operator_name(&mut self, name: &str) -> bool {
        if matches!(self.peek(), Some(Token::Name(n)) if n == name) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn nested<T>(&mut self, parse: impl FnOnce(&mut Parser) -> Parsed<T>) -> Parsed<T> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(&format!("the expression nests deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let base = self.levels;
        self.deeper()?;
        let result = parse(self);
        self.levels = base;
        self.depth -= 1;
        result
    }

    /// One more level of the tree along this branch: an operator applied to
    /// what came before it, or a nesting.
    fn deeper(&mut self) -> Parsed<()> {
        self.levels += 1;
        if self.levels > MAX_TREE_DEPTH {
            return Err(self.error(&format!(
                "the expression is too deep: more than {MAX_TREE_DEPTH} operators and nestings along one branch"
            )));
        }
        Ok(())
    }

    /// Parses a left-associative chain: operands from `operand`, operators
    /// from `operator`, each one a level deeper.
    fn chain(
        &mut self,
        operand: fn(&mut Parser) -> Parsed<Expr>,
        operator: impl Fn(&mut Parser) -> Option<Box<dyn Fn(Expr, Expr) -> Expr>>,
    ) -> Parsed<Expr> {
        let base = self.levels;
        let mut left = operand(self)?;
        while let Some(combine) = operator(self) {
            self.deeper()?;
            let right = operand(self)?;
            left = combine(left, right);
        }
        self.levels = base;
        Ok(left)
    }

    fn expr(&mut self) -> Parsed<Expr> {
        self.chain(Parser::and_expr, |p| p.eat_operator_name("or").then(|| combine(Expr::Or)))
    }

    fn and_expr(&mut self) -> Parsed<Expr> {
        self.chain(Parser::equality, |p| p.eat_operator_name("and").then(|| combine(Expr::And)))
    }

    fn equality(&mut self) -> Parsed<Expr> {
        let operators = [(Token::Equal, Comparison::Equal), (Token::NotEqual, Comparison::NotEqual)];
        self.chain(Parser::relational, |p| p.eat_one(&operators).map(compare))
    }

    fn relational(&mut self) -> Parsed<Expr> {
        let operators = [
            (Token::Less, Comparison::Less),
            (Token::LessOrEqual, Comparison::LessOrEqual),
            (Token::Greater, Comparison::Greater),
            (Token::GreaterOrEqual, Comparison::GreaterOrEqual),
        ];
        self.chain(Parser::additive, |p| p.eat_one(&operators).map(compare))
    }

    fn additive(&mut self) -> Parsed<Expr> {
        let operators = [(Token::Plus, Arithmetic::Add), (Token::Minus, Arithmetic::Subtract)];
        self.chain(Parser::multiplicative, |p| p.eat_one(&operators).map(arithmetic))
    }

    fn multiplicative(&mut self) -> Parsed<Expr> {
        self.chain(Parser::unary, |p| {
            let op = if p.eat(&Token::Star) {
                Arithmetic::Multiply
            } else if p.eat_operator_name("div") {
                Arithmetic::Divide
            } else if p.eat_operator_name("mod") {
                Arithmetic::Modulo
            } else {
                return None;
            };
            Some(arithmetic(op))
        })
    }

    fn unary(&mut self) -> Parsed<Expr> {
        if self.eat(&Token::Minus) {
            return self.nested(|p| Ok(Expr::Negate(Box::new(p.unary()?))));
        }
        self.union()
    }

    fn union(&mut self) -> Parsed<Expr> {
        let base = self.levels;
        let mut left = self.path_expr()?;
        loop {
            let position = self.position();
            if !self.eat(&Token::Pipe) {
                self.levels = base;
                return Ok(left);
            }
            self.deeper()?;
            let right = self.path_expr()?;
            if !may_be_nodes(&left) || !may_be_nodes(&right) {
                return Err(SyntaxError { position, message: "'|' takes node-sets".into() });
            }
            left = Expr::Union(Box::new(left), Box::new(right));
        }
    }

    /// Whether the tokens ahead start a primary expression (rather than a path).
    fn at_primary(&self) -> bool {
        match self.peek() {
            Some(Token::LeftParen | Token::Literal(_) | Token::Number(_) | Token::Dollar) => true,
            Some(Token::Name(name)) => {
                self.peek_at(1) == Some(&Token::LeftParen) && !matches!(name.as_str(), "text" | "node" | "comment" | "processing-instruction")
            }
            _ => false,
        }
    }

    fn path_expr(&mut self) -> Parsed<Expr> {
        if !self.at_primary() {
            return Ok(Expr::Path(self.location_path()?));
        }
        let position = self.position();
        let primary = self.primary()?;
        let mut predicates = Vec::new();
        while self.peek() == Some(&Token::LeftBracket) {
            predicates.push(self.predicate()?);
        }
        let mut steps = Vec::new();
        loop {
            if self.eat(&Token::DoubleSlash) {
                steps.push(descendant_or_self());
            } else if !self.eat(&Token::Slash) {
                break;
            }
            steps.push(self.step()?);
        }
        if predicates.is_empty() && steps.is_empty() {
            Ok(primary)
        } else if !may_be_nodes(&primary) {
            Err(SyntaxError { position, message: "predicates and paths apply to node-sets only".into() })
        } else {
            Ok(Expr::Filter(Box::new(primary), predicates, steps))
        }
    }

    fn primary(&mut self) -> Parsed<Expr> {
        let position = self.position();
        match self.peek().cloned() {
            Some(Token::LeftParen) => {
                self.at += 1;
                let inner = self.nested(Parser::expr)?;
                self.expect(&Token::RightParen, "')'")?;
                Ok(inner)
            }
            Some(Token::Literal(text)) => {
                self.at += 1;
                Ok(Expr::Literal(text))
            }
            Some(Token::Number(n)) => {
                self.at += 1;
                Ok(Expr::Number(n))
            }
            Some(Token::Dollar) => Err(self.error("variables are not supported")),
            Some(Token::Name(name)) => {
                let function = Function::by_name(&name).ok_or(SyntaxError {
                    position,
                    message: format!("unknown or unsupported function {name}()"),
                })?;
                self.at += 2;
                let args = self.nested(|p| {
                    let mut args = Vec::new();
                    if !p.eat(&Token::RightParen) {
                        loop {
                            args.push(p.expr()?);
                            if p.eat(&Token::RightParen) {
                                break;
                            }
                            p.expect(&Token::Comma, "',' or ')'")?;
                        }
                    }
                    Ok(args)
                })?;
                let (fewest, most) = function.arity();
                if args.len() < fewest || args.len() > most {
                    return Err(SyntaxError {
                        position,
                        message: format!("{name}() does not take {} argument(s)", args.len()),
                    });
                }
                if function.takes_nodes() && args.first().is_some_and(|a| !may_be_nodes(a)) {
                    return Err(SyntaxError { position, message: format!("{name}() takes a node-set") });
                }
                Ok(Expr::Call(function, args))
            }
            _ => Err(self.error("expected an expression")),
        }
    }

    fn predicate(&mut self) -> Parsed<Expr> {
        self.expect(&Token::LeftBracket, "'['")?;
        let inner = self.nested(Parser::expr)?;
        self.expect(&Token::RightBracket, "']'")?;
        Ok(inner)
    }

    fn location_path(&mut self) -> Parsed<Path> {
        let mut steps = Vec::new();
        let absolute = match self.peek() {
            Some(Token::Slash) => {
                self.at += 1;
                if !self.at_step() {
                    return Ok(Path { absolute: true, steps });
                }
                true
            }
            Some(Token::DoubleSlash) => {
                self.at += 1;
                steps.push(descendant_or_self());
                true
            }
            _ => false,
        };
        steps.push(self.step()?);
        loop {
            if self.eat(&Token::DoubleSlash) {
                steps.push(descendant_or_self());
            } else if !self.eat(&Token::Slash) {
                break;
            }
            steps.push(self.step()?);
        }
        Ok(Path { absolute, steps })
    }

    /// Whether a step starts here (after a leading `/`, which may stand alone).
    fn at_step(&self) -> bool {
        matches!(self.peek(), Some(Token::Name(_) | Token::Star | Token::At | Token::Dot | Token::DoubleDot))
    }

    fn step(&mut self) -> Parsed<Step> {
        if self.eat(&Token::Dot) {
            return Ok(Step { axis: Axis::SelfNode, test: NodeTest::Node, predicates: Vec::new() });
        }
        if self.eat(&Token::DoubleDot) {
            return Ok(Step { axis: Axis::Parent, test: NodeTest::Node, predicates: Vec::new() });
        }
        let axis = if self.eat(&Token::At) {
            Axis::Attribute
        } else if let (Some(Token::Name(name)), Some(Token::ColonColon)) = (self.peek(), self.peek_at(1)) {
            let axis = match name.as_str() {
                "child" => Axis::Child,
                "descendant" => Axis::Descendant,
                "descendant-or-self" => Axis::DescendantOrSelf,
                "attribute" => Axis::Attribute,
                "self" => Axis::SelfNode,
                "parent" => Axis::Parent,
                other => return Err(self.error(&format!("the {other} axis is not supported"))),
            };
            self.at += 2;
            axis
        } else {
            Axis::Child
        };
        let test = self.node_test()?;
        let mut predicates = Vec::new();
        while self.peek() == Some(&Token::LeftBracket) {
            predicates.push(self.predicate()?);
        }
        Ok(Step { axis, test, predicates })
    }

    fn node_test(&mut self) -> Parsed<NodeTest> {
        match self.peek().cloned() {
            Some(Token::Star) => {
                self.at += 1;
                Ok(NodeTest::AnyName)
            }
            Some(Token::Name(name)) if self.peek_at(1) == Some(&Token::LeftParen) => {
                let test = match name.as_str() {
                    "text" => NodeTest::Text,
                    "node" => NodeTest::Node,
                    other => return Err(self.error(&format!("the node test {other}() is not supported"))),
                };
                self.at += 2;
                self.expect(&Token::RightParen, "')'")?;
                Ok(test)
            }
            Some(Token::Name(name)) if name.contains(':') => {
                Err(self.error(&format!("namespace prefixes are not supported ({name})")))
            }
            Some(Token::Name(name)) => {
                self.at += 1;
                Ok(NodeTest::Name(name))
            }
            _ => Err(self.error("expected a step")),
        }
    }
}

/// A constructor of a binary expression, for [`Parser::chain`].
fn combine(node: fn(Box<Expr>, Box<Expr>) -> Expr) -> Box<dyn Fn(Expr, Expr) -> Expr> {
    Box::new(move |a, b| node(Box::new(a), Box::new(b)))
}

fn compare(op: Comparison) -> Box<dyn Fn(Expr, Expr) -> Expr> {
    Box::new(move |a, b| Expr::Compare(op, Box::new(a), Box::new(b)))
}

fn arithmetic(op: Arithmetic) -> Box<dyn Fn(Expr, Expr) -> Expr> {
    Box::new(move |a, b| Expr::Arithmetic(op, Box::new(a), Box::new(b)))
}

fn descendant_or_self() -> Step {
    Step { axis: Axis::DescendantOrSelf, test: NodeTest::Node, predicates: Vec::new() }
}

/// Whether an expression can yield a node-set (a path, a union, a filter).
fn may_be_nodes(expr: &Expr) -> bool {
    matches!(expr, Expr::Path(_) | Expr::Union(..) | Expr::Filter(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> SyntaxError {
        parse(text).expect_err(text)
    }

    #[test]
    fn parses_the_supported_grammar() {
        for ok in [
            "/event[new-state='crashed']",
            "//domain-name = 'web1'",
            "count(//disk) > 1",
            "/event/@seq > 100",
            "/event[@type='domain-state-transition' and domain-id > 2]",
            "count(/event/*) > 3",
            "/",
            "event/a[2]/b[last()]",
            "child::a/descendant::b/descendant-or-self::node()/attribute::c/self::node()/parent::*",
            "./a | ../b | text() | node()",
            "-1 - -2 * 3 div 4 mod 5 + 6",
            "(1 < 2) != (3 >= 4) or 5 <= 6 and 7 > 8",
            "concat('a', \"b\", 'c')",
            "substring('abc', 2)",
            "(//a)[1]/b",
            "(//a | //b)[2]",
            ".5 + 1. + 2.25",
            "div div div",
            "* * *",
        ] {
            parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn refusals_name_the_place() {
        assert_eq!(refused("foo(1)").position, 0);
        assert!(refused("foo(1)").message.contains("foo()"));
        assert_eq!(refused("/a[ancestor::b]").position, 3);
        assert!(refused("/a[ancestor::b]").message.contains("ancestor"));
        assert_eq!(refused("$x = 1").position, 0);
        assert!(refused("/a/ns:b").message.contains("ns:b"));
        assert!(refused("comment()").message.contains("comment"));
        assert_eq!(refused("/a[1").position, 4);
        assert_eq!(refused("'open").position, 0);
        assert!(refused("count(1)").message.contains("node-set"));
        assert!(refused("not()").message.contains("argument"));
        assert_eq!(refused("a b").position, 2);
        assert!(refused("1 +").message.contains("expected"));
        assert!(refused("#").message.contains("'#'"));
        assert_eq!(refused("//a | 1").position, 4);
        assert!(refused("'abc'[1]").message.contains("node-sets"));
        assert!(refused("count(//a)/b").message.contains("node-sets"));
    }

    #[test]
    fn limits_length_and_depth() {
        assert!(refused(&"a".repeat(MAX_LENGTH + 1)).message.contains("longer"));
        let deep = format!("{}1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert!(refused(&deep).message.contains("nests"));
        let fine = format!("{}1{}", "(".repeat(MAX_DEPTH - 1), ")".repeat(MAX_DEPTH - 1));
        assert!(parse(&fine).is_ok());
        let predicates = format!("a{}", "[b".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1));
        assert!(refused(&predicates).message.contains("nests"));
        for operator in ["+", " or ", " and ", "=", "<", "*", " div ", "|a"] {
            let chain = format!("a{}", format!("{operator}a").repeat(MAX_TREE_DEPTH + 1));
            assert!(refused(&chain).message.contains("too deep"), "{operator}");
        }
        let fine = format!("1{}", "+1".repeat(MAX_TREE_DEPTH - 1));
        assert!(parse(&fine).is_ok());
    }
}
