//! Printing listings as an aligned table, a JSON array or CSV with a header line.

use crate::cli::Format;
use crate::error::ToolError;
use serde::Serialize;
use std::io::Write;

/// A listing's row: its cells in the order of the headers. JSON uses `Serialize` instead, so
/// it keeps numbers and nulls typed.
pub trait Tabular: Serialize {
    const HEADERS: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

/// Writes `rows` to `out` in `format`.
pub fn write<T: Tabular>(out: &mut dyn Write, format: Format, rows: &[T]) -> Result<(), ToolError> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)
                .map_err(|e| ToolError::Failed(format!("cannot write JSON: {e}")))?;
            writeln!(out)?;
        }
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(&mut *out);
            let fail = |e: csv::Error| ToolError::Failed(format!("cannot write CSV: {e}"));
            csv.write_record(T::HEADERS).map_err(fail)?;
            for row in rows {
                csv.write_record(row.cells()).map_err(fail)?;
            }
            csv.flush()?;
        }
        Format::Table => {
            let cells: Vec<Vec<String>> = rows.iter().map(Tabular::cells).collect();
            let mut widths: Vec<usize> = T::HEADERS.iter().map(|h| h.chars().count()).collect();
            for row in &cells {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            let line = |out: &mut dyn Write, row: &[String]| -> std::io::Result<()> {
                let padded: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(cell, width)| format!("{cell:<width$}"))
                    .collect();
                writeln!(out, "{}", padded.join("  ").trim_end())
            };
            let headers: Vec<String> = T::HEADERS.iter().map(|h| h.to_string()).collect();
            line(out, &headers)?;
            for row in &cells {
                line(out, row)?;
            }
            if rows.is_empty() {
                writeln!(out, "(none)")?;
            }
        }
    }
    Ok(())
}
