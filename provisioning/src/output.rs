//! How results are shown: a table for people, or the gateway's JSON as it is
//! (`--json`) for scripts.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::Value;

/// One cell's text: strings as they are, `null` as empty, the rest as JSON.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A table of `rows` (JSON objects) showing `columns`.
pub fn table(rows: &[Value], columns: &[&str]) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(columns.iter().copied());
    for row in rows {
        table.add_row(columns.iter().map(|c| cell(row.get(*c))));
    }
    table.to_string()
}

/// A two-column table of one object's fields.
pub fn record(value: &Value, fields: &[&str]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    for field in fields {
        table.add_row(vec![(*field).to_owned(), cell(value.get(*field))]);
    }
    table.to_string()
}

/// Pretty JSON.
pub fn json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_show_the_asked_columns() {
        let rows = [json!({"id": "dev-1", "status": "in_service", "agency": null})];
        let text = table(&rows, &["id", "status", "agency"]);
        assert!(
            text.contains("dev-1") && text.contains("in_service"),
            "{text}"
        );
        assert_eq!(cell(Some(&json!(3))), "3");
        assert_eq!(cell(None), "");
    }
}
