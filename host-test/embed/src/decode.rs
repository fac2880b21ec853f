//! Between the component's JSON text and the caller's serde types: rows
//! decoded into `T: DeserializeOwned` (`serde_json::Value` by default),
//! bodies encoded from `impl Serialize`, and [`Error`], the error of the
//! handle's calls that do either.
//!
//! A decoding error keeps no JSON text. Rows may carry personal data, and
//! serde's own messages quote the value they refused (`invalid type: string
//! "Jane Doe", expected u32`), so a [`JsonError`] keeps serde's category and
//! position, the index of the row, and the name of a missing field (a name
//! of the caller's type, not of the data).

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use serde_json::value::RawValue;

use crate::session::CallError;

/// Why a call of the [`crate::Dataverse`] handle failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The call itself failed: Dataverse's or Entra ID's answer, a trap, or
    /// the host.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The call succeeded, but its JSON does not decode into the type asked
    /// for. Nothing was retried or discarded.
    #[error("decoding the answer: {0}")]
    Decode(JsonError),
    /// The body given to the call does not encode as JSON; nothing was sent.
    #[error("encoding the body: {0}")]
    Encode(JsonError),
}

impl Error {
    /// The component's error kind, if the call failed with one.
    pub fn kind(&self) -> Option<&crate::ErrorKind> {
        match self {
            Error::Call(error) => error.kind(),
            Error::Decode(_) | Error::Encode(_) => None,
        }
    }
}

/// JSON that did not become (or come from) the type asked for: where and
/// why, never the text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    type_name: &'static str,
    row: Option<usize>,
    category: Category,
    line: usize,
    column: usize,
    missing_field: Option<String>,
}

impl JsonError {
    fn new<T: ?Sized>(error: &serde_json::Error, row: Option<usize>) -> JsonError {
        let message = error.to_string();
        // serde's fixed wording; the name between the backticks is a field of
        // `T` (what was expected), not something read from the row.
        let missing_field = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_string());
        JsonError {
            type_name: std::any::type_name::<T>(),
            row,
            category: error.classify(),
            line: error.line(),
            column: error.column(),
            missing_field,
        }
    }

    /// The Rust type that was asked for, e.g. `my_app::Account`.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The row's index in its page (0 for the first), when the JSON was one
    /// row of a page.
    pub fn row(&self) -> Option<usize> {
        self.row
    }

    /// serde_json's category: `Data` (the JSON does not fit the type),
    /// `Syntax` or `Eof` (not JSON), `Io`.
    pub fn category(&self) -> Category {
        self.category
    }

    /// Line of the error in the row's (or answer's) JSON text, from 1; 0
    /// when encoding.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Column of the error in that line, from 1; 0 when encoding.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The field of the type that the JSON lacks, for a missing field.
    pub fn missing_field(&self) -> Option<&str> {
        self.missing_field.as_deref()
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(row) = self.row {
            write!(f, "row {row} of the page: ")?;
        }
        write!(f, "`{}`: ", self.type_name)?;
        match (&self.missing_field, self.category) {
            (Some(field), _) => write!(f, "missing field `{field}`")?,
            (None, Category::Data) => write!(f, "a value does not fit the type")?,
            (None, Category::Syntax | Category::Eof) => write!(f, "not valid JSON")?,
            (None, Category::Io) => write!(f, "could not be written")?,
        }
        if self.line > 0 {
            write!(f, " at line {} column {}", self.line, self.column)?;
        }
        Ok(())
    }
}

impl std::error::Error for JsonError {}

/// One JSON value (an answer, a row) into `T`.
pub(crate) fn value<T: DeserializeOwned>(json: &str) -> Result<T, JsonError> {
    serde_json::from_str(json).map_err(|e| JsonError::new::<T>(&e, None))
}

/// A page's JSON array, cut into its rows (not decoded yet), so a row
/// stream decodes one row at a time and a failure names its row.
pub(crate) fn split_rows(page: &str) -> Result<Vec<Box<RawValue>>, JsonError> {
    serde_json::from_str(page).map_err(|e| JsonError::new::<Vec<Box<RawValue>>>(&e, None))
}

/// Row `index` of its page into `T`.
pub(crate) fn row<T: DeserializeOwned>(raw: &RawValue, index: usize) -> Result<T, JsonError> {
    serde_json::from_str(raw.get()).map_err(|e| JsonError::new::<T>(&e, Some(index)))
}

/// Every row of a page into `T`.
pub(crate) fn rows<T: DeserializeOwned>(page: &str) -> Result<Vec<T>, JsonError> {
    split_rows(page)?
        .iter()
        .enumerate()
        .map(|(index, raw)| row(raw, index))
        .collect()
}

/// A body for the component (which takes JSON text).
pub(crate) fn body<B: Serialize + ?Sized>(body: &B) -> Result<String, JsonError> {
    serde_json::to_string(body).map_err(|e| JsonError::new::<B>(&e, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Account {
        name: String,
        revenue: u32,
    }

    const PERSONAL: &str = "Jane Doe";

    fn decode_error(result: Result<Vec<Account>, JsonError>) -> JsonError {
        result.expect_err("expected a decode error")
    }

    #[test]
    fn a_type_mismatch_names_the_row_and_position_but_not_the_value() {
        let page =
            format!(r#"[{{"name":"Contoso","revenue":1}},{{"name":"x","revenue":"{PERSONAL}"}}]"#);
        let error = decode_error(rows::<Account>(&page));
        assert_eq!(error.row(), Some(1));
        assert_eq!(error.category(), Category::Data);
        assert_eq!((error.line(), error.column()), (1, 32));
        let shown = format!("{error} {error:?} {}", Error::Decode(error.clone()));
        assert!(!shown.contains(PERSONAL), "{shown}");
        assert!(shown.contains("row 1 of the page"), "{shown}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let page = format!(r#"[{{"fullname":"{PERSONAL}"}}]"#);
        let error = decode_error(rows::<Account>(&page));
        assert_eq!(error.missing_field(), Some("name"));
        assert!(
            error.to_string().contains("missing field `name`"),
            "{error}"
        );
        assert!(!error.to_string().contains(PERSONAL));
    }

    #[test]
    fn text_that_is_not_json_is_a_syntax_error_without_the_text() {
        let error = decode_error(rows::<Account>(&format!("[{{{PERSONAL}")));
        assert_eq!(error.category(), Category::Syntax);
        assert_eq!(error.row(), None);
        assert!(!error.to_string().contains(PERSONAL), "{error}");
    }

    #[test]
    fn a_body_that_cannot_be_json_is_an_encode_error() {
        let keys_are_not_strings = std::collections::HashMap::from([((1, 2), "x")]);
        let error = body(&keys_are_not_strings).expect_err("map keys must be strings");
        assert_eq!((error.line(), error.row()), (0, None));
        assert!(error.to_string().contains("HashMap"), "{error}");
    }
}
