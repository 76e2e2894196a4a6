//! SQL text the store builds at run time: the VALUES lists of its multi-row inserts.
//!
//! Public because the load test's SQLite baseline (the fastest plain insert the
//! gateway's ingest is measured against) must build its statements exactly as the
//! store does; a copy there could drift from the store's and flatter the ratio.

/// How a multi-row statement names its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholders {
    /// `?` (SQLite). sqlx asks SQLite for every parameter's name before binding it,
    /// and SQLite finds a name by walking a list of the named ones: with `$N` names a
    /// 1,900-parameter INSERT cost time quadratic in its size (half the gateway's CPU
    /// at ingest). Anonymous parameters are not in that list.
    Anonymous,
    /// `$1, $2, …` (PostgreSQL, which has no anonymous form).
    Numbered,
}

/// `(?, ?, …), (…), …` or `($1, $2, …), (…), …` for `rows` rows of `cols` columns:
/// the VALUES of the store's multi-row inserts.
pub fn values_list(rows: usize, cols: usize, style: Placeholders) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            match style {
                Placeholders::Anonymous => out.push('?'),
                Placeholders::Numbered => {
                    out.push('$');
                    out.push_str(&(r * cols + c + 1).to_string());
                }
            }
        }
        out.push(')');
    }
    out
}

/// `column IN (…)` over a whole list bound as ONE parameter (`$n`): on SQLite a JSON
/// array read with `json_each`, on PostgreSQL an array compared with `= ANY`. Why one
/// parameter: the statement's text is the same for every list length, so it stays in
/// the connection's prepared-statement cache, and a lookup of thousands of values is
/// still one statement (one round trip) that probes the index once per value — the
/// group commit's officer and replay lookups use it so that no push can turn into
/// one statement per value. Bind the list with [`json_list`] on SQLite and as a
/// slice on PostgreSQL.
pub(crate) fn in_bound_list(column: &str, n: usize, style: Placeholders) -> String {
    match style {
        Placeholders::Anonymous => format!("{column} IN (SELECT value FROM json_each(${n}))"),
        Placeholders::Numbered => format!("{column} = ANY(${n})"),
    }
}

/// A list as the JSON array that [`in_bound_list`] reads on SQLite.
pub(crate) fn json_list<T: serde::Serialize>(values: &[T]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_lists_number_every_parameter() {
        assert_eq!(
            values_list(2, 3, Placeholders::Numbered),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(values_list(2, 2, Placeholders::Anonymous), "(?, ?), (?, ?)");
    }

    #[test]
    fn a_bound_list_is_one_parameter_on_either_backend() {
        assert_eq!(
            in_bound_list("sequence", 2, Placeholders::Anonymous),
            "sequence IN (SELECT value FROM json_each($2))"
        );
        assert_eq!(
            in_bound_list("sequence", 2, Placeholders::Numbered),
            "sequence = ANY($2)"
        );
        assert_eq!(json_list(&["a", "b"]), r#"["a","b"]"#);
        assert_eq!(json_list(&[1_i64, 7]), "[1,7]");
    }
}
