//! Plain text tables for people: left-aligned columns, two spaces apart.

/// Renders `rows` under `header`, each column as wide as its widest cell.
/// Trailing spaces are trimmed; every line ends with a line feed.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, w) in cells.zip(&widths) {
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', w + 2 - cell.chars().count()));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `items` joined by commas, or `-` when empty.
pub fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns() {
        let t = super::render(
            &["NAME", "MODEL"],
            &[
                vec!["a".into(), "Westmere".into()],
                vec!["long-name".into(), "-".into()],
            ],
        );
        assert_eq!(t, "NAME       MODEL\na          Westmere\nlong-name  -\n");
    }
}
