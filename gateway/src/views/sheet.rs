//! CSV exports that are safe to open in a spreadsheet. Finance opens the reports in
//! Excel or WPS, and some cells carry text a device or an operator typed (an
//! officer number announced by a terminal, an agency name): a cell that begins with
//! `=`, `+`, `-` or `@` (or a tab or carriage return, which some spreadsheets skip
//! before reading a formula) would run as a formula there. Such a cell is written
//! with a leading `'`, which spreadsheets show as text and do not display.

use std::borrow::Cow;

/// The characters that make a spreadsheet read a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell as a spreadsheet will read it as text (pure).
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_START) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A CSV document built in memory, every cell neutralised.
pub struct Sheet {
    out: csv::Writer<Vec<u8>>,
}

impl Default for Sheet {
    fn default() -> Self {
        Sheet {
            out: csv::Writer::from_writer(Vec::new()),
        }
    }
}

impl Sheet {
    /// Appends one line.
    pub fn row<I, T>(&mut self, cells: I)
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let cells: Vec<String> = cells
            .into_iter()
            .map(|c| neutralise(c.as_ref()).into_owned())
            .collect();
        // Writing to a Vec cannot fail.
        let _ = self.out.write_record(&cells);
    }

    /// The document.
    pub fn finish(self) -> String {
        String::from_utf8(self.out.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_written_as_text() {
        for bad in ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x", "\r=x"] {
            assert_eq!(neutralise(bad), format!("'{bad}"));
        }
        for good in ["ZF-001", "东城区", "", "12"] {
            assert_eq!(neutralise(good), good);
        }
        let mut sheet = Sheet::default();
        sheet.row(["name", "n"]);
        sheet.row(["=HYPERLINK(\"http://x\")", "3"]);
        assert_eq!(
            sheet.finish(),
            "name,n\n\"'=HYPERLINK(\"\"http://x\"\")\",3\n"
        );
    }
}
