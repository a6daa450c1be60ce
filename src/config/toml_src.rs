//! Reading TOML with positions. Every config, profile and scene file goes
//! through here so that each problem can be reported as `file:line:col`.
//!
//! We parse with `toml_edit` (which keeps byte spans for every key and value)
//! and deserialize *one table at a time* into `deny_unknown_fields` raw
//! structs. A serde error then spoils only that table, so one bad entry does
//! not hide the problems in the others: we collect all of them.

use std::ops::Range;

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml_edit::{ImDocument, Item, Table};

use crate::diag::{Diagnostic, Diagnostics, Source};

/// Parse a whole file; a syntax error is one diagnostic at its position.
pub fn parse(src: &Source) -> Result<ImDocument<String>, Diagnostic> {
    ImDocument::parse(src.text.clone()).map_err(|e| src.diag(e.span(), format!("invalid TOML: {}", one_line(e.message()))))
}

/// Deserialize one table (a `[section]` or one `[[entry]]`) into a raw struct.
/// `what` names the table in messages, e.g. "[[camera]] #2".
///
/// A key serde rejects (unknown, or of the wrong type) is reported and taken
/// out, and the rest of the table is tried again, so that one misspelt key
/// does not hide the table's other problems (an unknown profile, an address
/// out of range) from stage two. The caller still fails: a diagnostic was
/// pushed, so no `Config` is built from the partial table.
pub fn de_table<T: DeserializeOwned>(src: &Source, table: &Table, what: &str, diags: &mut Diagnostics) -> Option<T> {
    let mut table = table.clone();
    let mut removed: Vec<String> = Vec::new();
    // Each round removes one key, so the loop ends.
    loop {
        let value = toml_edit::Value::InlineTable(table.clone().into_inline_table());
        let e = match T::deserialize(value.into_deserializer()) {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let message = e.message();
        // A required key we took out ourselves, or one misspelt (`adress`
        // for `address`), was already reported.
        if let Some(missing) = quoted_after(message, "missing field ") {
            if removed.iter().any(|k| k == missing || edit_distance(k, missing) <= 2) {
                return None;
            }
        }
        let span = e.span().or_else(|| table.span());
        diags.push(src.diag(span.clone(), format!("{what}: {}", clean_serde_message(message))));
        let culprit = quoted_after(message, "unknown field ").map(str::to_string).or_else(|| key_at(&table, span?));
        match culprit {
            Some(key) if table.contains_key(&key) => {
                table.remove(&key);
                removed.push(key);
            }
            _ => return None,
        }
    }
}

/// The text between the backticks that follow `prefix` in a serde message.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    rest.strip_prefix('`')?.split('`').next()
}

/// Levenshtein distance, for telling a misspelt key from a missing one.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The key of `table` whose key or value covers `span`.
fn key_at(table: &Table, span: Range<usize>) -> Option<String> {
    table.iter().find_map(|(k, item)| {
        let key_span = table.key(k).and_then(|k| k.span());
        let covers = |s: Option<Range<usize>>| s.is_some_and(|s| s.start <= span.start && span.end <= s.end.max(s.start + 1));
        (covers(key_span) || covers(item.span())).then(|| k.to_string())
    })
}

/// Deserialize any item (value, inline table or table) into a raw struct.
pub fn de_item<T: DeserializeOwned>(src: &Source, item: &Item, what: &str, diags: &mut Diagnostics) -> Option<T> {
    match item {
        Item::Table(t) => de_table(src, t, what, diags),
        Item::Value(v) => match T::deserialize(v.clone().into_deserializer()) {
            Ok(t) => Some(t),
            Err(e) => {
                diags.push(src.diag(e.span().or_else(|| v.span()), format!("{what}: {}", clean_serde_message(e.message()))));
                None
            }
        },
        _ => {
            diags.push(src.diag(item.span(), format!("{what}: expected a table")));
            None
        }
    }
}

/// The tables of an array of tables (`[[camera]]`), or an error if the key
/// holds something else.
pub fn tables<'a>(src: &Source, key_span: Option<Range<usize>>, item: &'a Item, name: &str, diags: &mut Diagnostics) -> Vec<&'a Table> {
    match item {
        Item::ArrayOfTables(a) => a.iter().collect(),
        _ => {
            diags.push(src.diag(key_span, format!("`{name}` must be written as [[{name}]] entries")));
            Vec::new()
        }
    }
}

/// serde's messages carry a trailing newline and backticks; keep them short.
fn clean_serde_message(m: &str) -> String {
    one_line(m)
}

/// Diagnostics are one line each (`file:line:col: message`), so multi-line
/// parser messages are joined.
fn one_line(m: &str) -> String {
    m.trim().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cam {
        name: String,
        address: i64,
        baud: Option<i64>,
    }

    fn run(text: &str) -> (Option<Cam>, Vec<String>) {
        let src = Source::new(std::path::Path::new("t.toml"), text);
        let doc = parse(&src).unwrap();
        let mut d = Diagnostics::default();
        let t = doc.get("camera").and_then(|i| i.as_table()).unwrap();
        let out = de_table::<Cam>(&src, t, "[camera]", &mut d);
        (out, d.0.iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn every_bad_key_of_a_table_is_reported_and_the_rest_still_read() {
        let (cam, d) = run("[camera]\nname = \"a\"\naddress = 9\nzoom = 1\nfocus = 2\nbaud = \"fast\"\n");
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].contains("unknown field `zoom`") && d[0].starts_with("t.toml:4:"), "{d:?}");
        assert!(d[1].contains("unknown field `focus`"), "{d:?}");
        assert!(d[2].starts_with("t.toml:6:") && d[2].contains("invalid type"), "{d:?}");
        // Stage two still sees the valid keys (to check `address` itself).
        assert_eq!(cam.map(|c| c.address), Some(9));
    }

    #[test]
    fn a_misspelt_required_key_is_one_problem_not_two() {
        let (cam, d) = run("[camera]\nname = \"a\"\nadress = 2\n");
        assert!(cam.is_none());
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("unknown field `adress`"), "{d:?}");
    }

    #[test]
    fn a_truly_missing_key_is_reported() {
        let (cam, d) = run("[camera]\nname = \"a\"\n");
        assert!(cam.is_none());
        assert_eq!(d.len(), 1);
        assert!(d[0].contains("missing field `address`"), "{d:?}");
    }
}
