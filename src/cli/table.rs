//! Plain-text tables for the terminal: a header, columns padded to their widest cell.

use serde_json::Value;

/// One column: its header and the JSON field it shows.
pub struct Column {
    pub header: &'static str,
    pub field: &'static str,
}

pub const fn col(header: &'static str, field: &'static str) -> Column {
    Column { header, field }
}

/// Renders `rows` (JSON objects) under `columns`.
pub fn render(columns: &[Column], rows: &[Value]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| cell(&row[c.field], c.field))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<&str>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(columns.iter().map(|c| c.header).collect());
    for row in &cells {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Renders one object as `field: value` lines.
pub fn record(columns: &[Column], row: &Value) -> String {
    let width = columns.iter().map(|c| c.header.len()).max().unwrap_or(0);
    columns
        .iter()
        .map(|c| format!("{:<width$}  {}\n", c.header, cell(&row[c.field], c.field)))
        .collect()
}

/// A JSON value as a cell: times (`…_at`) as RFC 3339, lists space-separated, null `-`.
fn cell(value: &Value, field: &str) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Number(n) if field.ends_with("_at") => n
            .as_u64()
            .map(|secs| {
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
                )
                .to_string()
            })
            .unwrap_or_else(|| n.to_string()),
        Value::Array(items) => items
            .iter()
            .map(|i| cell(i, ""))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_are_padded_and_times_readable() {
        let rows = [
            json!({"id": "g1", "created_at": 0, "revoked": false}),
            json!({"id": "grant-22", "created_at": null, "revoked": true}),
        ];
        let text = render(
            &[
                col("ID", "id"),
                col("CREATED", "created_at"),
                col("REVOKED", "revoked"),
            ],
            &rows,
        );
        assert_eq!(
            text,
            "ID        CREATED               REVOKED\n\
             g1        1970-01-01T00:00:00Z  false\n\
             grant-22  -                     true\n"
        );
    }
}
