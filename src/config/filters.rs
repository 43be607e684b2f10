//! `--filter COLUMN=OP.VALUE`: conditions that narrow every walk and count
//! to matching rows, checked here for their form; whether the table has
//! the column is asked of the server before the first call.

use crate::config::error::ConfigError;
use crate::supabase::filter::ColumnFilter;

const SETTING: &str = "--filter (AIMHARDER_FILTER)";

/// PostgREST's operators the filter takes; each may follow `not.`.
const OPERATORS: [&str; 10] = [
    "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "is",
];

/// What `is` compares with.
const IS_VALUES: [&str; 4] = ["null", "true", "false", "unknown"];

/// Query parameters PostgREST reads as something other than a column: a
/// filter on a column of that name would change the query instead.
const RESERVED: [&str; 8] = [
    "select",
    "order",
    "limit",
    "offset",
    "and",
    "or",
    "not",
    "on_conflict",
];

/// Every filter given, in order; empty pieces (a trailing `&`) are none.
pub(crate) fn parse(raw: &[String]) -> Result<Vec<ColumnFilter>, ConfigError> {
    raw.iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(parse_one)
        .collect()
}

fn parse_one(raw: &str) -> Result<ColumnFilter, ConfigError> {
    let bad = |why: String| {
        ConfigError::Config(format!(
            "{SETTING} {raw:?} {why}: write COLUMN=OPERATOR.VALUE, e.g. session_type=eq.background"
        ))
    };
    let (column, condition) = raw.split_once('=').ok_or_else(|| bad("has no =".into()))?;
    let plain = column
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && column
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain {
        return Err(bad(format!(
            "names column {column:?}, not a plain column name (letters, digits, _)"
        )));
    }
    if RESERVED.contains(&column) {
        return Err(bad(format!(
            "names column {column:?}, which PostgREST reads as its own parameter"
        )));
    }
    let (negated, rest) = match condition.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, condition),
    };
    let (op, value) = rest
        .split_once('.')
        .ok_or_else(|| bad("has no .VALUE after its operator".into()))?;
    if !OPERATORS.contains(&op) {
        return Err(bad(format!(
            "has operator {op:?}, not one of {} (each may follow not.)",
            OPERATORS.join(", ")
        )));
    }
    if op == "is" && !IS_VALUES.contains(&value) {
        return Err(bad(format!(
            "compares with is.{value}: is takes {}",
            IS_VALUES.join(", ")
        )));
    }
    if op == "in" && !(value.starts_with('(') && value.ends_with(')')) {
        return Err(bad(format!(
            "has in.{value}: in takes a list in parentheses, e.g. in.(a,b)"
        )));
    }
    Ok(ColumnFilter {
        column: column.to_string(),
        op: if negated {
            format!("not.{op}")
        } else {
            op.into()
        },
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(raw: &str) -> Result<ColumnFilter, ConfigError> {
        parse(&[raw.to_string()]).map(|mut f| f.remove(0))
    }

    #[test]
    fn operators_values_and_negation_are_read() {
        let f = one("session_type=eq.background").unwrap();
        assert_eq!(
            (f.column.as_str(), f.op.as_str(), f.value.as_str()),
            ("session_type", "eq", "background")
        );
        assert_eq!(one("session_type=not.in.(device,x)").unwrap().op, "not.in");
        assert_eq!(one("fingerprint=not.is.null").unwrap().value, "null");
        // The value is the rest, dots and = included.
        assert_eq!(
            one("user_email=like.*.example.com").unwrap().value,
            "*.example.com"
        );
        assert_eq!(one("note=eq.a=b").unwrap().value, "a=b");
        assert_eq!(one("note=eq.").unwrap().value, "");
        for op in OPERATORS {
            let value = match op {
                "is" => "null",
                "in" => "(a)",
                _ => "x",
            };
            assert!(one(&format!("c={op}.{value}")).is_ok(), "{op}");
        }
    }

    #[test]
    fn empty_pieces_are_none() {
        let raw = vec!["a=eq.1".to_string(), " ".to_string(), String::new()];
        assert_eq!(parse(&raw).unwrap().len(), 1);
    }

    #[test]
    fn a_bad_form_is_refused_naming_the_filter() {
        for (bad, says) in [
            ("session_type", "has no ="),
            ("session_type=background", "has no .VALUE"),
            ("session_type=equals.background", "\"equals\", not one of"),
            ("session_type=not.not.eq.x", "\"not\", not one of"),
            ("type;drop=eq.x", "not a plain column name"),
            ("s.type=eq.x", "not a plain column name"),
            ("1st=eq.x", "not a plain column name"),
            ("=eq.x", "not a plain column name"),
            ("limit=eq.5", "its own parameter"),
            ("or=eq.x", "its own parameter"),
            ("fingerprint=is.nothing", "is takes null"),
            ("session_type=in.device", "in parentheses"),
        ] {
            let message = one(bad).unwrap_err().to_string();
            assert!(
                message.contains(says) && message.contains(&format!("{bad:?}")),
                "{bad}: {message}"
            );
            assert!(message.contains("AIMHARDER_FILTER"), "{message}");
        }
    }
}
