//! Temporal's visibility query language: the SQL `WHERE` subset accepted by
//! ListWorkflowExecutions / CountWorkflowExecutions, checked against the search
//! attribute types and evaluated over in-memory records.
//!
//! Semantics, following Temporal's SQL visibility stores:
//! - SQL three-valued logic: a predicate on an absent attribute is *unknown*, so
//!   `X != 1`, `NOT X = 1` and `X NOT IN (1)` don't match a record without `X`;
//!   only `IS [NOT] NULL` observes absence.
//! - Text `=` is a word match (a stand-in for full-text search): every word of the
//!   value must occur as a word of the attribute, case-insensitively, where words
//!   are maximal alphanumeric runs. A value without words must equal the attribute.
//! - KeywordList `=` means "contains", `IN` means "contains any of".
//! - Datetimes are compared at millisecond precision.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;

use temporalio_protos::temporal::api::enums::v1::IndexedValueType;

const MAX_DEPTH: usize = 100;
/// Values one `IN (...)` list may hold.
pub const MAX_IN_VALUES: usize = 1000;
/// Longest query text accepted (it is parsed and evaluated under the engine's lock).
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
const STATUS_PREFIX: &str = "WORKFLOW_EXECUTION_STATUS_";
/// Indexed by `WorkflowExecutionStatus` code minus one.
const STATUSES: [&str; 7] = [
    "Running",
    "Completed",
    "Failed",
    "Canceled",
    "Terminated",
    "ContinuedAsNew",
    "TimedOut",
];

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    /// Unix milliseconds.
    Datetime(i64),
    List(Vec<String>),
}

/// What a query is evaluated against: one workflow execution's attributes.
pub trait Record {
    /// `None` means the attribute is absent (`IS NULL` is true).
    fn get(&self, name: &str) -> Option<Value>;
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

fn invalid(msg: impl fmt::Display) -> QueryError {
    QueryError(format!("invalid query: {msg}"))
}

#[derive(Debug, Clone, Default)]
pub struct Query {
    filter: Option<Expr>,
    group_by: Option<String>,
}

impl Query {
    /// `types` maps an attribute name (system or custom) to its type; unknown names are an error.
    pub fn parse(
        text: &str,
        types: &dyn Fn(&str) -> Option<IndexedValueType>,
    ) -> Result<Query, QueryError> {
        if text.len() > MAX_QUERY_BYTES {
            return Err(invalid(format!(
                "the query is {} bytes; at most {MAX_QUERY_BYTES} are accepted",
                text.len()
            )));
        }
        let toks = lex(text)?;
        Parser {
            toks,
            pos: 0,
            depth: 0,
            types,
        }
        .query()
    }

    pub fn matches(&self, record: &dyn Record) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|e| eval(e, record) == Some(true))
    }

    /// The GROUP BY attribute, if any (only `ExecutionStatus` is accepted by `parse`).
    pub fn group_by(&self) -> Option<&str> {
        self.group_by.as_deref()
    }
}

#[derive(Debug, Clone)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Pred(Pred),
}

#[derive(Debug, Clone)]
struct Pred {
    attr: String,
    ty: IndexedValueType,
    test: Test,
}

/// Negated forms (`NOT IN`, `IS NOT NULL`, ...) are wrapped in `Expr::Not`.
#[derive(Debug, Clone)]
enum Test {
    Cmp(CmpOp, Value),
    In(Vec<Value>),
    Between(Value, Value),
    IsNull,
    StartsWith(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl CmpOp {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Eq => ord == Ordering::Equal,
            CmpOp::Ne => ord != Ordering::Equal,
            CmpOp::Lt => ord == Ordering::Less,
            CmpOp::Gt => ord == Ordering::Greater,
            CmpOp::Le => ord != Ordering::Greater,
            CmpOp::Ge => ord != Ordering::Less,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Gt => ">",
            CmpOp::Le => "<=",
            CmpOp::Ge => ">=",
        }
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    /// A backquoted name: never a keyword.
    Name(String),
    Str(String),
    Num(String),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    Minus,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) | Tok::Num(w) => write!(f, "{w}"),
            Tok::Name(n) => write!(f, "`{n}`"),
            Tok::Str(s) => write!(f, "'{s}'"),
            Tok::Op(op) => write!(f, "{}", op.symbol()),
            Tok::LParen => write!(f, "("),
            Tok::RParen => write!(f, ")"),
            Tok::Comma => write!(f, ","),
            Tok::Minus => write!(f, "-"),
        }
    }
}

fn describe(tok: Option<&Tok>) -> String {
    tok.map_or_else(|| "end of query".to_string(), |t| format!("'{t}'"))
}

fn lex(text: &str) -> Result<Vec<Tok>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        let (tok, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            ',' => (Tok::Comma, 1),
            '-' => (Tok::Minus, 1),
            '=' => (Tok::Op(CmpOp::Eq), 1),
            '!' if next == Some('=') => (Tok::Op(CmpOp::Ne), 2),
            '<' if next == Some('=') => (Tok::Op(CmpOp::Le), 2),
            '<' if next == Some('>') => (Tok::Op(CmpOp::Ne), 2),
            '<' => (Tok::Op(CmpOp::Lt), 1),
            '>' if next == Some('=') => (Tok::Op(CmpOp::Ge), 2),
            '>' => (Tok::Op(CmpOp::Gt), 1),
            '\'' | '"' | '`' => {
                let (s, end) = lex_quoted(&chars, i)?;
                let tok = if c == '`' { Tok::Name(s) } else { Tok::Str(s) };
                (tok, end - i)
            }
            c if c.is_ascii_digit() => {
                let end = lex_number(&chars, i);
                (Tok::Num(chars[i..end].iter().collect()), end - i)
            }
            c if c.is_alphabetic() || c == '_' => {
                let len = chars[i..]
                    .iter()
                    .take_while(|c| c.is_alphanumeric() || **c == '_' || **c == '.')
                    .count();
                (Tok::Word(chars[i..i + len].iter().collect()), len)
            }
            c => return Err(invalid(format!("unexpected character '{c}'"))),
        };
        toks.push(tok);
        i += len;
    }
    Ok(toks)
}

/// Lexes a quoted string or name starting at `start`; returns it and the index past the
/// closing quote. A doubled quote escapes itself; strings also take backslash escapes.
fn lex_quoted(chars: &[char], start: usize) -> Result<(String, usize), QueryError> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i).copied() {
            None if quote == '`' => return Err(invalid("unterminated quoted name")),
            None => return Err(invalid("unterminated string literal")),
            Some(c) if c == quote => {
                if chars.get(i + 1) == Some(&quote) {
                    out.push(quote);
                    i += 2;
                } else {
                    return Ok((out, i + 1));
                }
            }
            Some('\\') if quote != '`' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err(invalid("unterminated string literal"));
                };
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    other => other,
                });
                i += 2;
            }
            Some(c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

fn lex_number(chars: &[char], start: usize) -> usize {
    let digits = |from: usize| {
        chars
            .get(from..)
            .map_or(0, |s| s.iter().take_while(|c| c.is_ascii_digit()).count())
    };
    let mut end = start + digits(start);
    if chars.get(end) == Some(&'.') {
        end += 1 + digits(end + 1);
    }
    if matches!(chars.get(end), Some('e' | 'E')) {
        let sign = usize::from(matches!(chars.get(end + 1), Some('+' | '-')));
        let exp = digits(end + 1 + sign);
        if exp > 0 {
            end += 1 + sign + exp;
        }
    }
    end
}

// ---------------------------------------------------------------- parser

#[derive(Debug, Clone)]
enum Lit {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lit::Str(s) => write!(f, "'{s}'"),
            Lit::Int(i) => write!(f, "{i}"),
            Lit::Float(x) => write!(f, "{x}"),
            Lit::Bool(b) => write!(f, "{b}"),
        }
    }
}

const RESERVED: [&str; 9] = [
    "AND", "OR", "NOT", "IN", "BETWEEN", "IS", "NULL", "TRUE", "FALSE",
];

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    types: &'a dyn Fn(&str) -> Option<IndexedValueType>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn is_kw_at(&self, pos: usize, kw: &str) -> bool {
        matches!(self.toks.get(pos), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw_at(self.pos, kw);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// `GROUP BY` / `ORDER BY`; the lookahead lets attributes be named `Order` or `Group`.
    fn at_clause(&self, kw: &str) -> bool {
        self.is_kw_at(self.pos, kw) && self.is_kw_at(self.pos + 1, "BY")
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), QueryError> {
        match self.next() {
            Some(ref t) if t == want => Ok(()),
            other => Err(invalid(format!(
                "expected {what}, found {}",
                describe(other.as_ref())
            ))),
        }
    }

    fn enter(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(invalid(format!(
                "expression nested more than {MAX_DEPTH} levels deep"
            )));
        }
        Ok(())
    }

    fn query(mut self) -> Result<Query, QueryError> {
        let mut query = Query::default();
        if self.peek().is_some() && !self.at_clause("GROUP") && !self.at_clause("ORDER") {
            query.filter = Some(self.or()?);
        }
        if self.at_clause("GROUP") {
            self.pos += 2;
            let name = self.attr_name()?;
            if name != "ExecutionStatus" {
                return Err(invalid(format!(
                    "GROUP BY is only supported for ExecutionStatus, not {name}"
                )));
            }
            if self.peek() == Some(&Tok::Comma) {
                return Err(invalid("GROUP BY supports a single attribute"));
            }
            query.group_by = Some(name);
        }
        if self.at_clause("ORDER") {
            return Err(invalid("ORDER BY is not supported"));
        }
        match self.peek() {
            None => Ok(query),
            Some(t) => Err(invalid(format!("unexpected '{t}'"))),
        }
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        self.enter()?;
        let mut items = vec![self.and()?];
        while self.eat_kw("OR") {
            items.push(self.and()?);
        }
        self.depth -= 1;
        Ok(join(items, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut items = vec![self.not()?];
        while self.eat_kw("AND") {
            items.push(self.not()?);
        }
        Ok(join(items, Expr::And))
    }

    fn not(&mut self) -> Result<Expr, QueryError> {
        if self.eat_kw("NOT") {
            self.enter()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let inner = self.or()?;
            self.expect(&Tok::RParen, "')'")?;
            return Ok(inner);
        }
        self.predicate()
    }

    fn attr_name(&mut self) -> Result<String, QueryError> {
        match self.next() {
            Some(Tok::Name(n)) if !n.is_empty() => Ok(n),
            Some(Tok::Word(w)) if !RESERVED.iter().any(|r| w.eq_ignore_ascii_case(r)) => Ok(w),
            other => Err(invalid(format!(
                "expected a search attribute name, found {}",
                describe(other.as_ref())
            ))),
        }
    }

    fn predicate(&mut self) -> Result<Expr, QueryError> {
        let attr = self.attr_name()?;
        let ty = match (self.types)(&attr) {
            Some(t) if t != IndexedValueType::Unspecified => t,
            _ => return Err(invalid(format!("unknown search attribute {attr}"))),
        };
        let mut negated = self.eat_kw("NOT");
        let kind = match self.peek() {
            Some(Tok::Op(op)) if !negated => OpKind::Cmp(*op),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN") => OpKind::In,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("BETWEEN") => OpKind::Between,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("STARTS_WITH") => OpKind::StartsWith,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IS") && !negated => OpKind::Is,
            other => {
                return Err(invalid(format!(
                    "expected an operator after {attr}, found {}",
                    describe(other)
                )));
            }
        };
        if !kind.supported_for(ty) {
            let shown = self.peek().map(ToString::to_string).unwrap_or_default();
            let not = if negated { "NOT " } else { "" };
            return Err(invalid(format!(
                "operator {not}{shown} is not supported for {} search attribute {attr}",
                type_name(ty)
            )));
        }
        self.pos += 1;
        let test = match kind {
            OpKind::Cmp(op) => Test::Cmp(op, self.value(&attr, ty)?),
            OpKind::In => {
                self.expect(&Tok::LParen, "'(' after IN")?;
                let mut values = vec![self.value(&attr, ty)?];
                while self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    values.push(self.value(&attr, ty)?);
                    if values.len() > MAX_IN_VALUES {
                        return Err(invalid(format!(
                            "an IN list holds at most {MAX_IN_VALUES} values"
                        )));
                    }
                }
                self.expect(&Tok::RParen, "')' closing the IN list")?;
                Test::In(values)
            }
            OpKind::Between => {
                let lo = self.value(&attr, ty)?;
                if !self.eat_kw("AND") {
                    return Err(invalid(format!("expected AND in BETWEEN on {attr}")));
                }
                Test::Between(lo, self.value(&attr, ty)?)
            }
            OpKind::StartsWith => match self.literal()? {
                Lit::Str(s) => Test::StartsWith(s),
                lit => {
                    return Err(invalid(format!(
                        "STARTS_WITH on {attr} needs a string, found {lit}"
                    )));
                }
            },
            OpKind::Is => {
                negated = self.eat_kw("NOT");
                if !self.eat_kw("NULL") {
                    return Err(invalid(format!("expected NULL after IS on {attr}")));
                }
                Test::IsNull
            }
        };
        let pred = Expr::Pred(Pred { attr, ty, test });
        Ok(if negated {
            Expr::Not(Box::new(pred))
        } else {
            pred
        })
    }

    fn literal(&mut self) -> Result<Lit, QueryError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Num(n)) => parse_number(&n),
            Some(Tok::Minus) => match self.next() {
                Some(Tok::Num(n)) => parse_number(&format!("-{n}")),
                other => Err(invalid(format!(
                    "expected a number after '-', found {}",
                    describe(other.as_ref())
                ))),
            },
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Lit::Bool(true)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Lit::Bool(false)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Err(invalid(
                "NULL can only be tested with IS NULL / IS NOT NULL",
            )),
            other => Err(invalid(format!(
                "expected a value, found {}",
                describe(other.as_ref())
            ))),
        }
    }

    fn value(&mut self, attr: &str, ty: IndexedValueType) -> Result<Value, QueryError> {
        let lit = self.literal()?;
        coerce(attr, ty, &lit).ok_or_else(|| {
            invalid(format!(
                "invalid value {lit} for {} search attribute {attr}",
                type_name(ty)
            ))
        })
    }
}

#[derive(Clone, Copy)]
enum OpKind {
    Cmp(CmpOp),
    In,
    Between,
    StartsWith,
    Is,
}

impl OpKind {
    /// Which operators Temporal's SQL converter accepts for each attribute type.
    fn supported_for(self, ty: IndexedValueType) -> bool {
        use IndexedValueType as T;
        let eq_or_in = matches!(
            self,
            OpKind::Cmp(CmpOp::Eq | CmpOp::Ne) | OpKind::In | OpKind::Is
        );
        match ty {
            T::Keyword => true,
            T::Int | T::Double | T::Datetime => !matches!(self, OpKind::StartsWith),
            T::KeywordList | T::Bool => eq_or_in,
            T::Text => matches!(self, OpKind::Cmp(CmpOp::Eq | CmpOp::Ne) | OpKind::Is),
            T::Unspecified => false,
        }
    }
}

fn join(mut items: Vec<Expr>, wrap: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1
        && let Some(only) = items.pop()
    {
        return only;
    }
    wrap(items)
}

fn parse_number(text: &str) -> Result<Lit, QueryError> {
    if text.contains(['.', 'e', 'E']) {
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Lit::Float(x)),
            _ => Err(invalid(format!("invalid number {text}"))),
        }
    } else {
        text.parse::<i64>()
            .map(Lit::Int)
            .map_err(|_| invalid(format!("integer {text} is out of range")))
    }
}

fn type_name(ty: IndexedValueType) -> &'static str {
    match ty {
        IndexedValueType::Text => "Text",
        IndexedValueType::Keyword => "Keyword",
        IndexedValueType::Int => "Int",
        IndexedValueType::Double => "Double",
        IndexedValueType::Bool => "Bool",
        IndexedValueType::Datetime => "Datetime",
        IndexedValueType::KeywordList => "KeywordList",
        IndexedValueType::Unspecified => "Unspecified",
    }
}

/// Converts a query literal to the attribute's type; `None` means it is not a valid value.
fn coerce(attr: &str, ty: IndexedValueType, lit: &Lit) -> Option<Value> {
    use IndexedValueType as T;
    match (ty, lit) {
        (T::Keyword, Lit::Str(s)) if attr == "ExecutionStatus" => {
            canonical_status(s).map(|s| Value::Str(s.to_string()))
        }
        (T::Keyword, Lit::Int(code)) if attr == "ExecutionStatus" => {
            status_from_code(*code).map(|s| Value::Str(s.to_string()))
        }
        (T::Keyword | T::Text | T::KeywordList, Lit::Str(s)) => Some(Value::Str(s.clone())),
        (T::Int, Lit::Int(i)) => Some(Value::Int(*i)),
        (T::Int, Lit::Str(s)) => s.trim().parse().ok().map(Value::Int),
        (T::Double, Lit::Int(i)) => Some(Value::Double(*i as f64)),
        (T::Double, Lit::Float(x)) => Some(Value::Double(*x)),
        (T::Double, Lit::Str(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Value::Double),
        (T::Bool, Lit::Bool(b)) => Some(Value::Bool(*b)),
        (T::Bool, Lit::Str(s)) if s.eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
        (T::Bool, Lit::Str(s)) if s.eq_ignore_ascii_case("false") => Some(Value::Bool(false)),
        (T::Datetime, Lit::Int(nanos)) => Some(Value::Datetime(nanos.div_euclid(1_000_000))),
        (T::Datetime, Lit::Str(s)) => match s.trim().parse::<i64>() {
            Ok(nanos) => Some(Value::Datetime(nanos.div_euclid(1_000_000))),
            Err(_) => rfc3339_millis(s).map(Value::Datetime),
        },
        _ => None,
    }
}

fn rfc3339_millis(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Accepts `Running`, `running`, `CONTINUED_AS_NEW`, `WORKFLOW_EXECUTION_STATUS_TIMED_OUT`...
fn canonical_status(s: &str) -> Option<&'static str> {
    let s = s.trim();
    let s = match s.get(..STATUS_PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(STATUS_PREFIX) => s.get(STATUS_PREFIX.len()..)?,
        _ => s,
    };
    let key: String = s.chars().filter(|c| *c != '_').collect();
    STATUSES
        .iter()
        .copied()
        .find(|name| name.eq_ignore_ascii_case(&key))
}

fn status_from_code(code: i64) -> Option<&'static str> {
    let idx = usize::try_from(code.checked_sub(1)?).ok()?;
    STATUSES.get(idx).copied()
}

// ---------------------------------------------------------------- evaluation

/// Three-valued: `None` is SQL's UNKNOWN.
fn eval(expr: &Expr, record: &dyn Record) -> Option<bool> {
    match expr {
        Expr::And(items) => {
            let mut result = Some(true);
            for item in items {
                match eval(item, record) {
                    Some(false) => return Some(false),
                    None => result = None,
                    Some(true) => {}
                }
            }
            result
        }
        Expr::Or(items) => {
            let mut result = Some(false);
            for item in items {
                match eval(item, record) {
                    Some(true) => return Some(true),
                    None => result = None,
                    Some(false) => {}
                }
            }
            result
        }
        Expr::Not(inner) => eval(inner, record).map(|b| !b),
        Expr::Pred(pred) => eval_pred(pred, record),
    }
}

fn eval_pred(pred: &Pred, record: &dyn Record) -> Option<bool> {
    let raw = record.get(&pred.attr);
    if let Test::IsNull = pred.test {
        return Some(raw.is_none());
    }
    // A stored value of the wrong type is treated like an absent one.
    let actual = normalize(&pred.attr, pred.ty, raw?)?;
    match (&pred.test, &actual) {
        (Test::Cmp(op, Value::Str(want)), Value::List(items)) => {
            Some(op.holds(bool_ord(items.contains(want))))
        }
        (Test::Cmp(op, Value::Str(want)), Value::Str(have))
            if pred.ty == IndexedValueType::Text =>
        {
            Some(op.holds(bool_ord(text_match(have, want))))
        }
        (Test::Cmp(op, want), _) => Some(op.holds(compare(&actual, want)?)),
        (Test::In(options), Value::List(items)) => Some(
            options
                .iter()
                .any(|o| matches!(o, Value::Str(s) if items.contains(s))),
        ),
        (Test::In(options), _) => Some(
            options
                .iter()
                .any(|o| compare(&actual, o) == Some(Ordering::Equal)),
        ),
        (Test::Between(lo, hi), _) => Some(
            compare(&actual, lo)? != Ordering::Less && compare(&actual, hi)? != Ordering::Greater,
        ),
        (Test::StartsWith(prefix), Value::Str(s)) => Some(s.starts_with(prefix.as_str())),
        _ => None,
    }
}

/// Maps "found" to an ordering so `=` / `!=` can share `CmpOp::holds`.
fn bool_ord(found: bool) -> Ordering {
    if found {
        Ordering::Equal
    } else {
        Ordering::Less
    }
}

/// Brings a stored value into the attribute type's canonical representation.
fn normalize(attr: &str, ty: IndexedValueType, value: Value) -> Option<Value> {
    use IndexedValueType as T;
    match (ty, value) {
        (T::Keyword, v) if attr == "ExecutionStatus" => match v {
            Value::Str(s) => canonical_status(&s),
            Value::Int(code) => status_from_code(code),
            _ => None,
        }
        .map(|s| Value::Str(s.to_string())),
        (T::Keyword | T::Text, Value::Str(s)) => Some(Value::Str(s)),
        (T::KeywordList, Value::List(items)) => Some(Value::List(items)),
        (T::KeywordList, Value::Str(s)) => Some(Value::List(vec![s])),
        (T::Int, v @ (Value::Int(_) | Value::Double(_))) => Some(v),
        (T::Double, Value::Double(x)) => Some(Value::Double(x)),
        (T::Double, Value::Int(i)) => Some(Value::Double(i as f64)),
        (T::Bool, Value::Bool(b)) => Some(Value::Bool(b)),
        (T::Datetime, Value::Datetime(ms) | Value::Int(ms)) => Some(Value::Datetime(ms)),
        (T::Datetime, Value::Str(s)) => rfc3339_millis(&s).map(Value::Datetime),
        _ => None,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) | (Value::Datetime(x), Value::Datetime(y)) => Some(x.cmp(y)),
        (Value::Double(x), Value::Double(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Double(y)) => (*x as f64).partial_cmp(y),
        (Value::Double(x), Value::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn text_match(have: &str, want: &str) -> bool {
    let present: HashSet<String> = words(have).collect();
    let mut wanted = words(want).peekable();
    if wanted.peek().is_none() {
        return have == want;
    }
    wanted.all(|w| present.contains(&w))
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
