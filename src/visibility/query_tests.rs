//! Unit tests of the visibility query language.
use super::*;
use std::collections::HashMap;

fn types(name: &str) -> Option<IndexedValueType> {
    use IndexedValueType as T;
    Some(match name {
        "WorkflowId" | "WorkflowType" | "RunId" | "TaskQueue" | "ExecutionStatus" => T::Keyword,
        "CustomKeywordField" | "My-Attr" => T::Keyword,
        "StartTime" | "CloseTime" | "ExecutionTime" | "CustomDatetimeField" => T::Datetime,
        "HistoryLength" | "CustomIntField" => T::Int,
        "CustomTextField" => T::Text,
        "CustomDoubleField" => T::Double,
        "CustomBoolField" => T::Bool,
        "CustomKeywordListField" | "TemporalChangeVersion" => T::KeywordList,
        "Broken" => T::Unspecified,
        _ => return None,
    })
}

struct Rec(HashMap<String, Value>);

impl Record for Rec {
    fn get(&self, name: &str) -> Option<Value> {
        self.0.get(name).cloned()
    }
}

fn ms(rfc3339: &str) -> i64 {
    rfc3339_millis(rfc3339).expect("valid test datetime")
}

fn rec() -> Rec {
    let s = |v: &str| Value::Str(v.to_string());
    Rec(HashMap::from([
        ("WorkflowId".to_string(), s("order-42")),
        ("WorkflowType".to_string(), s("Foo")),
        ("RunId".to_string(), s("run-1")),
        ("TaskQueue".to_string(), s("main")),
        ("ExecutionStatus".to_string(), s("Running")),
        (
            "StartTime".to_string(),
            Value::Datetime(ms("2026-02-01T10:00:00Z")),
        ),
        ("HistoryLength".to_string(), Value::Int(12)),
        ("CustomIntField".to_string(), Value::Int(-3)),
        ("CustomKeywordField".to_string(), s("alpha")),
        ("My-Attr".to_string(), s("x")),
        (
            "CustomTextField".to_string(),
            s("The quick brown Fox, jumps!"),
        ),
        ("CustomDoubleField".to_string(), Value::Double(2.5)),
        ("CustomBoolField".to_string(), Value::Bool(true)),
        (
            "CustomDatetimeField".to_string(),
            s("2025-06-01T00:00:00+02:00"),
        ),
        (
            "CustomKeywordListField".to_string(),
            Value::List(vec!["a".into(), "b".into()]),
        ),
        ("TemporalChangeVersion".to_string(), Value::List(vec![])),
    ]))
}

fn parse(text: &str) -> Result<Query, QueryError> {
    Query::parse(text, &types)
}

fn m(text: &str) -> bool {
    parse(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .matches(&rec())
}

fn err(text: &str) -> String {
    parse(text).expect_err(text).0
}

#[test]
fn empty_matches_all() {
    assert!(m(""));
    assert!(m("  \n\t "));
    assert!(parse("").unwrap().group_by().is_none());
}

#[test]
fn keyword_comparisons() {
    assert!(m("WorkflowType = 'Foo'"));
    assert!(!m("WorkflowType = 'foo'"));
    assert!(m("WorkflowType != 'Bar'"));
    assert!(m("WorkflowType <> 'Bar'"));
    assert!(m("WorkflowType > 'Bar' AND WorkflowType < 'Goo'"));
    assert!(m("WorkflowType >= 'Foo' and WorkflowType <= 'Foo'"));
    assert!(m("WorkflowId=\"order-42\""));
    assert!(m("WorkflowId BETWEEN 'order-1' AND 'order-5'"));
    assert!(m("WorkflowId NOT BETWEEN 'a' AND 'b'"));
}

#[test]
fn boolean_logic_and_precedence() {
    assert!(m(
        "WorkflowType = 'Nope' OR WorkflowType = 'Foo' AND RunId = 'run-1'"
    ));
    assert!(!m(
        "(WorkflowType = 'Nope' OR WorkflowType = 'Foo') AND RunId = 'x'"
    ));
    assert!(m("NOT WorkflowType = 'Bar'"));
    assert!(m("not not WorkflowType = 'Foo'"));
    assert!(m("NOT (WorkflowType = 'Bar' OR RunId = 'x')"));
    assert!(m(
        "WorkflowType = 'Foo' AND (ExecutionStatus = 'Running' OR StartTime > '2026-01-01T00:00:00Z')"
    ));
    assert!(m("((((WorkflowType = 'Foo'))))"));
}

#[test]
fn numbers() {
    assert!(m("HistoryLength = 12"));
    assert!(m("HistoryLength > 10 AND HistoryLength <= 12"));
    assert!(m("HistoryLength = '12'"));
    assert!(m("HistoryLength IN (1, 12, 3)"));
    assert!(m("HistoryLength NOT IN (1, 3)"));
    assert!(m("HistoryLength BETWEEN 12 AND 13"));
    assert!(m("CustomIntField = -3"));
    assert!(m("CustomIntField < - 2"));
    assert!(m("CustomDoubleField = 2.5"));
    assert!(m("CustomDoubleField > 2"));
    assert!(m("CustomDoubleField BETWEEN 2.4 AND 2.6"));
    assert!(m("CustomDoubleField < 2.5e1"));
    assert!(m("CustomDoubleField NOT BETWEEN -1 AND 1"));
}

#[test]
fn datetimes() {
    assert!(m("StartTime > '2026-01-01T00:00:00Z'"));
    assert!(m("StartTime = '2026-02-01T12:00:00+02:00'"));
    assert!(m("StartTime = '2026-02-01T10:00:00.000000000Z'"));
    assert!(m(
        "StartTime BETWEEN '2026-02-01T00:00:00Z' AND '2026-02-02T00:00:00Z'"
    ));
    assert!(!m(
        "StartTime NOT BETWEEN '2026-02-01T00:00:00Z' AND '2026-02-02T00:00:00Z'"
    ));
    let nanos = ms("2026-02-01T10:00:00Z") * 1_000_000;
    assert!(m(&format!("StartTime = {nanos}")));
    assert!(m(&format!("StartTime = '{nanos}'")));
    assert!(m(&format!(
        "StartTime IN ({nanos}, '2020-01-01T00:00:00Z')"
    )));
    // Stored as an RFC3339 string, still compared as a time.
    assert!(m("CustomDatetimeField = '2025-05-31T22:00:00Z'"));
}

#[test]
fn null_tests_and_absent_attributes() {
    assert!(m("CloseTime IS NULL"));
    assert!(m("CloseTime is null"));
    assert!(!m("CloseTime IS NOT NULL"));
    assert!(m("StartTime IS NOT NULL"));
    assert!(m("CustomTextField IS NOT NULL"));
    assert!(m("TemporalChangeVersion IS NOT NULL"));
    // Three-valued logic: nothing but IS NULL matches an absent attribute.
    for q in [
        "CloseTime = '2026-01-01T00:00:00Z'",
        "CloseTime != '2026-01-01T00:00:00Z'",
        "NOT CloseTime = '2026-01-01T00:00:00Z'",
        "CloseTime NOT IN ('2026-01-01T00:00:00Z')",
        "CloseTime NOT BETWEEN 0 AND 1",
        "ExecutionTime > 0 OR ExecutionTime <= 0",
        "NOT (CloseTime > 0 AND WorkflowType = 'Foo')",
    ] {
        assert!(!m(q), "{q}");
    }
    assert!(m("CloseTime > 0 OR WorkflowType = 'Foo'"));
    assert!(m("NOT (CloseTime > 0 AND WorkflowType = 'Bar')"));
}

#[test]
fn starts_with() {
    assert!(m("WorkflowId STARTS_WITH 'order-'"));
    assert!(m("WorkflowId starts_with \"ord\""));
    assert!(!m("WorkflowId STARTS_WITH 'Order'"));
    assert!(m("WorkflowId NOT STARTS_WITH 'x'"));
    assert!(m("ExecutionStatus STARTS_WITH 'Run'"));
    assert!(err("HistoryLength STARTS_WITH '1'").contains("not supported"));
    assert!(err("CustomTextField STARTS_WITH 'a'").contains("STARTS_WITH"));
    assert!(err("CustomKeywordListField NOT STARTS_WITH 'a'").contains("NOT STARTS_WITH"));
    assert!(err("WorkflowId STARTS_WITH 5").contains("needs a string"));
}

#[test]
fn keyword_list() {
    assert!(m("CustomKeywordListField = 'a'"));
    assert!(!m("CustomKeywordListField = 'c'"));
    assert!(m("CustomKeywordListField != 'c'"));
    assert!(!m("CustomKeywordListField != 'b'"));
    assert!(m("CustomKeywordListField IN ('c', 'b')"));
    assert!(!m("CustomKeywordListField NOT IN ('c', 'b')"));
    assert!(m("TemporalChangeVersion != 'v1'"));
    assert!(!m("TemporalChangeVersion IN ('v1')"));
    for q in [
        "CustomKeywordListField > 'a'",
        "CustomKeywordListField BETWEEN 'a' AND 'b'",
        "CustomKeywordListField = 1",
    ] {
        err(q);
    }
}

#[test]
fn text() {
    assert!(m("CustomTextField = 'quick'"));
    assert!(m("CustomTextField = 'fox QUICK'"));
    assert!(!m("CustomTextField = 'quick cat'"));
    assert!(!m("CustomTextField = 'qui'"));
    assert!(m("CustomTextField != 'cat'"));
    assert!(!m("CustomTextField = ''"));
    assert!(err("CustomTextField < 'a'").contains("Text"));
    err("CustomTextField IN ('a')");
    err("CustomTextField BETWEEN 'a' AND 'b'");
}

#[test]
fn bools() {
    assert!(m("CustomBoolField = true"));
    assert!(m("CustomBoolField = TRUE"));
    assert!(m("CustomBoolField = 'true'"));
    assert!(m("CustomBoolField != false"));
    assert!(err("CustomBoolField = 1").contains("invalid value 1"));
    err("CustomBoolField > false");
}

#[test]
fn execution_status() {
    assert!(m("ExecutionStatus = 'Running'"));
    assert!(m("ExecutionStatus = 'running'"));
    assert!(m("ExecutionStatus = 'WORKFLOW_EXECUTION_STATUS_RUNNING'"));
    assert!(m("ExecutionStatus = 1"));
    assert!(m("ExecutionStatus IN ('Completed', 'Running')"));
    assert!(m(
        "ExecutionStatus NOT IN ('Completed', 'continued_as_new', 'TimedOut')"
    ));
    assert!(!m("ExecutionStatus != 'Running'"));
    for ok in [
        "Running",
        "Completed",
        "Failed",
        "Canceled",
        "Terminated",
        "ContinuedAsNew",
        "TimedOut",
    ] {
        parse(&format!("ExecutionStatus = '{ok}'")).expect(ok);
    }
    assert!(err("ExecutionStatus = 'Sleeping'").contains("Sleeping"));
    err("ExecutionStatus = 8");
    err("ExecutionStatus = 0");
    err("ExecutionStatus IN ('Running', 'Bogus')");
    // Stored as a proto enum code.
    let mut r = rec();
    r.0.insert("ExecutionStatus".into(), Value::Int(2));
    assert!(parse("ExecutionStatus = 'Completed'").unwrap().matches(&r));
}

#[test]
fn value_validation() {
    for (q, needle) in [
        ("HistoryLength = 'abc'", "HistoryLength"),
        ("HistoryLength = 1.5", "Int"),
        ("HistoryLength = 99999999999999999999", "out of range"),
        ("StartTime = 'yesterday'", "StartTime"),
        ("StartTime = 1.5", "Datetime"),
        ("WorkflowId = 5", "WorkflowId"),
        ("CustomDoubleField = 'x'", "Double"),
        ("CustomDoubleField = 1e999", "invalid number"),
        ("WorkflowId = NULL", "IS NULL"),
        ("WorkflowId = - 'a'", "number"),
    ] {
        let e = err(q);
        assert!(e.starts_with("invalid query: "), "{e}");
        assert!(e.contains(needle), "{q}: {e}");
    }
}

#[test]
fn names_and_literals() {
    assert!(m("`My-Attr` = 'x'"));
    assert!(m("`WorkflowType` = 'Foo'"));
    assert!(err("Foo = 'x'").contains("unknown search attribute Foo"));
    assert!(err("`Not-There` = 1").contains("unknown search attribute Not-There"));
    assert!(err("Broken = 1").contains("unknown search attribute Broken"));
    err("`` = 'x'");
    let mut r = rec();
    r.0.insert("WorkflowId".into(), Value::Str("it's \"q\" \\".into()));
    for q in [
        r#"WorkflowId = 'it''s "q" \\'"#,
        r#"WorkflowId = 'it\'s "q" \\'"#,
        r#"WorkflowId = "it's ""q"" \\""#,
        r#"WorkflowId = "it's \"q\" \\""#,
    ] {
        assert!(parse(q).unwrap().matches(&r), "{q}");
    }
    r.0.insert("WorkflowId".into(), Value::Str("日本\n".into()));
    assert!(parse("WorkflowId = '日本\\n'").unwrap().matches(&r));
}

#[test]
fn group_by_and_order_by() {
    let q = parse("GROUP BY ExecutionStatus").unwrap();
    assert_eq!(q.group_by(), Some("ExecutionStatus"));
    assert!(q.matches(&rec()));
    let q = parse("WorkflowType = 'Foo' group by ExecutionStatus").unwrap();
    assert_eq!(q.group_by(), Some("ExecutionStatus"));
    assert!(err("WorkflowType = 'Foo' GROUP BY WorkflowType").contains("ExecutionStatus"));
    assert!(err("GROUP BY ExecutionStatus, WorkflowType").contains("single"));
    assert!(err("WorkflowType = 'Foo' ORDER BY StartTime DESC").contains("ORDER BY"));
    assert!(err("order by StartTime").contains("ORDER BY"));
    assert!(err("GROUP BY ExecutionStatus ORDER BY StartTime").contains("ORDER BY"));
    err("GROUP BY");
}

#[test]
fn syntax_errors() {
    for (q, needle) in [
        ("WorkflowType = 'Foo' LIMIT 10", "LIMIT"),
        ("WorkflowType", "expected an operator"),
        ("WorkflowType =", "expected a value"),
        ("WorkflowType LIKE 'F%'", "LIKE"),
        ("WorkflowType == 'Foo'", "expected a value"),
        ("'Foo' = WorkflowType", "search attribute name"),
        ("WorkflowType = RunId", "expected a value"),
        ("WorkflowType IN ()", "expected a value"),
        ("WorkflowType IN ('a'", "')'"),
        ("WorkflowType IN 'a'", "'('"),
        ("WorkflowType BETWEEN 'a' 'b'", "BETWEEN"),
        ("WorkflowType IS 'a'", "NULL"),
        ("WorkflowType NOT IS NULL", "expected an operator"),
        ("WorkflowType NOT = 'a'", "expected an operator"),
        ("(WorkflowType = 'a'", "')'"),
        ("WorkflowType = 'a')", "unexpected ')'"),
        ("WorkflowType = 'a' AND", "search attribute name"),
        ("AND WorkflowType = 'a'", "search attribute name"),
        (
            "WorkflowType = 'a' OR OR RunId = 'b'",
            "search attribute name",
        ),
        ("WorkflowType = 'abc", "unterminated string"),
        ("`WorkflowType = 'abc'", "unterminated quoted name"),
        ("WorkflowType = 'abc\\", "unterminated string"),
        ("WorkflowType = 'a'; DROP TABLE x", "';'"),
        ("WorkflowType ! 'a'", "'!'"),
    ] {
        let e = err(q);
        assert!(e.contains(needle), "{q}: {e}");
    }
}

#[test]
fn depth_is_limited() {
    let nest = |n: usize| format!("{}WorkflowType = 'Foo'{}", "(".repeat(n), ")".repeat(n));
    assert!(m(&nest(50)));
    assert!(err(&nest(150)).contains("nested"));
    assert!(err(&nest(30_000)).contains("nested"));
    assert!(err(&"(".repeat(60_000)).contains("nested"));
    assert!(m(&format!("{}WorkflowType = 'Foo'", "NOT NOT ".repeat(20))));
    assert!(err(&format!("{}WorkflowType = 'Foo'", "NOT ".repeat(15_000))).contains("nested"));
}

#[test]
fn long_flat_queries() {
    let terms = vec!["HistoryLength > 1"; 2_500];
    assert!(m(&terms.join(" AND ")));
    let mut ors = vec!["WorkflowType = 'x'"; 2_500];
    ors.push("WorkflowType = 'Foo'");
    assert!(m(&ors.join(" or ")));
    let list = vec!["'x'"; 1_000].join(",");
    assert!(!m(&format!("WorkflowType IN ({list})")));
    let long = "a".repeat(10_000);
    assert!(!m(&format!("WorkflowType = '{long}'")));
    err(&long);
}

#[test]
fn queries_and_in_lists_are_bounded() {
    let list = vec!["'x'"; 1_001].join(",");
    let e = err(&format!("WorkflowType IN ({list})"));
    assert!(e.contains("at most 1000 values"), "{e}");
    let huge = vec!["HistoryLength > 1"; 5_000].join(" AND ");
    let e = err(&huge);
    assert!(e.contains("at most 65536 are accepted"), "{e}");
}

#[test]
fn odd_inputs_never_panic() {
    let fixed =
        "' | \" | ` | ( | ) | () | ((( | ))) | \\ | '\\ | - | -- | - 1 | 1 | 1e | 1e+ | 1. \
        | 1..2 | 0x10 | .5 | = | < | <=> | ! | != | , | ,, | NOT | NOT NOT | AND | OR | IS | IN \
        | GROUP | GROUP BY | ORDER | BY | WorkflowType IN (,) | WorkflowType IN ('a',) \
        | WorkflowType BETWEEN | WorkflowType BETWEEN 'a' AND | StartTime BETWEEN 1 AND \
        | x\u{0}y | \u{feff} | WorkflowType = '\u{1F600}' | É = 1 | CustomIntField = - \
        | CustomIntField = --1 | CustomIntField = -9223372036854775808 \
        | CustomIntField = 9223372036854775808 | StartTime = -9223372036854775808 \
        | ExecutionStatus = -9223372036854775808 | ExecutionStatus = 'WORKFLOW_EXECUTION_STATUS_' \
        | ExecutionStatus = 'é' | ExecutionStatus = 'WORKFLOW_EXECUTION_STATUÉ' \
        | StartTime = '9999999-01-01T00:00:00Z'"
            .split(" | ");
    for q in fixed {
        if let Ok(parsed) = parse(q) {
            parsed.matches(&rec());
        }
    }
    // Pseudo-random token soup, deterministic.
    let alphabet: Vec<&str> = "WorkflowType HistoryLength StartTime CustomKeywordListField \
        CustomTextField ExecutionStatus CloseTime AND OR NOT IN IS NULL BETWEEN STARTS_WITH GROUP \
        BY ORDER ( ) , = != < >= 'a' 'Running' \" ' ` 1 - 2.5 true \\ é"
        .split_whitespace()
        .collect();
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..20_000 {
        let mut q = String::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        for _ in 0..(seed % 12) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            q.push_str(alphabet[(seed % alphabet.len() as u64) as usize]);
            if seed & 0x100 == 0 {
                q.push(' ');
            }
        }
        if let Ok(parsed) = parse(&q) {
            parsed.matches(&rec());
        }
    }
}

#[test]
fn mismatched_record_types_are_unknown() {
    let r = Rec(HashMap::from([
        ("HistoryLength".to_string(), Value::Str("12".into())),
        ("CustomDoubleField".to_string(), Value::Int(3)),
        ("CustomIntField".to_string(), Value::Double(f64::NAN)),
    ]));
    let check = |q: &str| parse(q).unwrap().matches(&r);
    assert!(!check("HistoryLength = 12"));
    assert!(!check("HistoryLength != 12"));
    assert!(check("HistoryLength IS NOT NULL"));
    assert!(check("CustomDoubleField = 3"));
    assert!(check("CustomDoubleField > 2.9"));
    assert!(!check("CustomIntField = 1"));
    assert!(!check("CustomIntField != 1"));
}
