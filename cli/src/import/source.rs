//! The rows of an import file, one at a time: NDJSON (one JSON object per
//! line; blank lines skipped) or CSV (a header line naming the columns,
//! then one row per record; an empty cell is left out of the row, so it
//! does not overwrite a value with an empty string). A row that cannot be
//! read is handed out as such (it goes to the rejects file); only an I/O
//! error ends the read.

use std::io::BufRead;

use serde_json::{Map, Value};

/// The file's format: from `--format`, else from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Ndjson,
    Csv,
}

impl Format {
    pub fn of(path: &str, given: Option<Format>) -> Format {
        given.unwrap_or_else(|| {
            if path.to_ascii_lowercase().ends_with(".csv") {
                Format::Csv
            } else {
                Format::Ndjson
            }
        })
    }
}

/// One row of the file: its number (from 0, over the rows only) and its
/// columns, or why it cannot be a row.
pub type Item = (u64, Result<Map<String, Value>, String>);

/// Reads the rows of `input`.
pub struct Rows<R: BufRead> {
    inner: Inner<R>,
    next: u64,
}

enum Inner<R: BufRead> {
    Ndjson(std::io::Lines<R>),
    Csv {
        records: csv::StringRecordsIntoIter<R>,
        header: Vec<String>,
    },
}

impl<R: BufRead> Rows<R> {
    pub fn new(input: R, format: Format) -> Result<Rows<R>, String> {
        let inner = match format {
            Format::Ndjson => Inner::Ndjson(input.lines()),
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
                let header = reader
                    .headers()
                    .map_err(|e| format!("the CSV header cannot be read: {e}"))?
                    .iter()
                    .map(|h| h.trim().to_string())
                    .collect();
                Inner::Csv {
                    records: reader.into_records(),
                    header,
                }
            }
        };
        Ok(Rows { inner, next: 0 })
    }
}

impl<R: BufRead> Iterator for Rows<R> {
    type Item = Result<Item, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = match &mut self.inner {
            Inner::Ndjson(lines) => loop {
                match lines.next()? {
                    Err(e) => return Some(Err(format!("the file cannot be read: {e}"))),
                    Ok(line) if line.trim().is_empty() => continue,
                    Ok(line) => break ndjson_row(&line),
                }
            },
            Inner::Csv { records, header } => match records.next()? {
                Ok(record) => Ok(header
                    .iter()
                    .zip(record.iter())
                    .filter(|(_, cell)| !cell.is_empty())
                    .map(|(name, cell)| (name.clone(), Value::String(cell.to_string())))
                    .collect()),
                Err(e) if e.is_io_error() => {
                    return Some(Err(format!("the file cannot be read: {e}")));
                }
                // A record with another number of cells, bad UTF-8: this row only.
                Err(e) => Err(format!("not a CSV row: {e}")),
            },
        };
        let index = self.next;
        self.next += 1;
        Some(Ok((index, row)))
    }
}

/// The row a line holds. The error names the position, never the text
/// (a row may hold personal data; the rejects file keeps the line).
fn ndjson_row(line: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(row)) => Ok(row),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not JSON (column {})", e.column())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str, format: Format) -> Vec<Item> {
        Rows::new(text.as_bytes(), format)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn ndjson_rows_are_numbered_without_blank_lines_and_bad_ones_kept_as_such() {
        let rows = read(
            "{\"name\":\"A\"}\n\n  \n[1]\n{\"name\": \"B\", \"n\": 2}\n{\"secret\n",
            Format::Ndjson,
        );
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[0],
            (0, Ok(json!({"name": "A"}).as_object().unwrap().clone()))
        );
        assert_eq!(rows[1], (1, Err("not a JSON object".into())));
        assert_eq!(rows[2].0, 2);
        assert_eq!(rows[2].1.as_ref().unwrap()["n"], 2);
        let (index, error) = &rows[3];
        assert_eq!(*index, 3);
        let error = error.as_ref().unwrap_err();
        assert!(error.starts_with("not JSON"), "{error}");
        assert!(!error.contains("secret"));
        assert!(read("", Format::Ndjson).is_empty());
    }

    #[test]
    fn csv_rows_take_their_names_from_the_header_and_skip_empty_cells() {
        let rows = read(
            "name,accountnumber,description\nContoso,A-1,\"with, comma\"\nFabrikam,,\nshort\n",
            Format::Csv,
        );
        assert_eq!(
            rows[0].1,
            Ok(
                json!({"name": "Contoso", "accountnumber": "A-1", "description": "with, comma"})
                    .as_object()
                    .unwrap()
                    .clone()
            )
        );
        assert_eq!(
            rows[1].1,
            Ok(json!({"name": "Fabrikam"}).as_object().unwrap().clone())
        );
        assert!(rows[2].1.as_ref().unwrap_err().starts_with("not a CSV row"));
        assert_eq!(rows.len(), 3);
        assert!(read("name\n", Format::Csv).is_empty());
    }

    #[test]
    fn the_format_comes_from_the_flag_or_the_extension() {
        assert_eq!(Format::of("a.CSV", None), Format::Csv);
        assert_eq!(Format::of("a.ndjson", None), Format::Ndjson);
        assert_eq!(Format::of("a.txt", None), Format::Ndjson);
        assert_eq!(Format::of("a.csv", Some(Format::Ndjson)), Format::Ndjson);
    }
}
