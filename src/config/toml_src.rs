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
pub fn de_table<T: DeserializeOwned>(src: &Source, table: &Table, what: &str, diags: &mut Diagnostics) -> Option<T> {
    let value = toml_edit::Value::InlineTable(table.clone().into_inline_table());
    match T::deserialize(value.into_deserializer()) {
        Ok(t) => Some(t),
        Err(e) => {
            let span = e.span().or_else(|| table.span());
            diags.push(src.diag(span, format!("{what}: {}", clean_serde_message(e.message()))));
            None
        }
    }
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
