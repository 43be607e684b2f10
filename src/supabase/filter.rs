//! Server-side conditions: the tool's own, in PostgREST's logic-tree
//! syntax (`a.eq.1,or(b.gt.2,…)`) built for one query, and the operator's
//! `--filter`, one query parameter each.

/// Conditions all of which must hold.
pub(crate) type Filters = Vec<String>;

/// A value quoted for PostgREST's logic-tree syntax.
pub(crate) fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The condition that auto refresh is on. Written `IS TRUE`, which takes no parameter and is
/// what the partial indexes' predicate says, so the planner matches them
/// in every plan, generic ones too.
pub(crate) fn enabled() -> String {
    "auto_refresh_enabled.is.true".into()
}

/// The condition that `column` is less than `value`.
pub(crate) fn lt(column: &str, value: &str) -> String {
    format!("{column}.lt.{}", quote(value))
}

/// The condition that `column` is at least `value`.
pub(crate) fn gte(column: &str, value: &str) -> String {
    format!("{column}.gte.{}", quote(value))
}

/// The condition that `column` is null.
pub(crate) fn is_null(column: &str) -> String {
    format!("{column}.is.null")
}

/// The condition that `column` is not null.
pub(crate) fn not_null(column: &str) -> String {
    format!("{column}.not.is.null")
}

/// The condition that at least one of `conds` holds.
pub(crate) fn or(conds: &[String]) -> String {
    format!("or({})", conds.join(","))
}

/// A condition the operator put on one column (`--filter`), sent as its
/// own query parameter, `column=op.value`, next to the tool's conditions:
/// every row the tool reads or counts must meet it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnFilter {
    pub(crate) column: String,
    /// The operator, with its `not.` if negated: `eq`, `not.in`.
    pub(crate) op: String,
    /// As PostgREST reads it: `background`, `(a,b)`, `null`.
    pub(crate) value: String,
}

impl std::fmt::Display for ColumnFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}.{}", self.column, self.op, self.value)
    }
}
