//! How the CLI prints answers: the API's JSON as it came (`--json`, for scripts), or an
//! aligned table of chosen columns (for people).

use serde_json::Value;

/// One table column: its heading and how to get the cell from a row.
pub struct Col {
    pub head: &'static str,
    pub cell: fn(&Value) -> String,
}

/// A column showing field `key` of each row.
#[macro_export]
macro_rules! col {
    ($head:literal, $key:literal) => {
        $crate::cli::output::Col {
            head: $head,
            cell: |row| $crate::cli::output::cell(&row[$key]),
        }
    };
    ($head:literal, $f:expr) => {
        $crate::cli::output::Col {
            head: $head,
            cell: $f,
        }
    };
}

/// A JSON value as a table cell: `-` for null, `yes`/`no`, lists comma-separated.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// The rows and columns as aligned text (two spaces between columns), headings first.
pub fn table(rows: &[Value], cols: &[Col]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|c| sanitize(&(c.cell)(r))).collect())
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.head.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let heads: Vec<String> = cols.iter().map(|c| c.head.to_string()).collect();
    for line in std::iter::once(&heads).chain(cells.iter()) {
        let mut text = String::new();
        for (i, v) in line.iter().enumerate() {
            if i + 1 == line.len() {
                text.push_str(v);
            } else {
                text.push_str(&format!("{v:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// One object as `key: value` lines, keys aligned.
pub fn record(row: &Value, cols: &[Col]) -> String {
    let w = cols.iter().map(|c| c.head.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for c in cols {
        let head = format!("{}:", c.head);
        out.push_str(&format!("{head:<w$} {}\n", sanitize(&(c.cell)(row))));
    }
    out
}

/// Terminal control characters from the server (a path in the access log, a name) are
/// shown escaped, never interpreted.
fn sanitize(s: &str) -> String {
    if s.chars().any(char::is_control) {
        s.chars().flat_map(char::escape_default).collect()
    } else {
        s.to_string()
    }
}

/// Prints `value` as pretty JSON (what `--json` prints).
pub fn json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// The rows of a list answer: a JSON array, or the `items` of `{items, total}`.
pub fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(a) => a,
        Value::Object(o) => o
            .get("items")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice),
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_show_nulls() {
        let rows = [
            json!({"id": 1, "name": "a", "on": true}),
            json!({"id": 22, "name": null, "on": false}),
        ];
        let cols = [col!("ID", "id"), col!("NAME", "name"), col!("ON", "on")];
        assert_eq!(
            table(&rows, &cols),
            "ID  NAME  ON\n1   a     yes\n22  -     no\n"
        );
        assert_eq!(cell(&json!(["a", "b"])), "a,b");
        assert_eq!(sanitize("a\x1b[2Jb"), "a\\u{1b}[2Jb");
    }
}
