//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Each target feeds libFuzzer's bytes to one of cpumodel's parsers and
//! checks what must hold whatever the input: no panic, the light reader and
//! roxmltree agree, and what cpumodel writes reads back to what it wrote.
//! `scripts/fuzz.sh` builds and runs them.

#![deny(missing_docs)]

use std::sync::OnceLock;

use cpumodel_map::Database;
use cpumodel_xml::tree::Element;

/// The embedded model database, built once per process.
pub fn db() -> &'static Database {
    static DB: OnceLock<Database> = OnceLock::new();
    DB.get_or_init(Database::embedded)
}

/// The input as text, or `None` when it is not UTF-8 (every parser takes
/// `&str`; the command line rejects other bytes before parsing).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Describes an element and everything below it through the [`Element`]
/// interface, so that two trees can be compared as their readers see them.
pub fn describe<'a, E: Element<'a>>(e: E, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(out, "<{}", e.name());
    for (n, v) in e.attributes() {
        assert_eq!(e.attribute(n), Some(v), "attribute lookup of {n:?}");
        let _ = write!(out, " {n}={v:?}");
    }
    let _ = write!(out, " text={:?}>", e.text());
    for c in e.elements() {
        describe(c, out);
    }
    out.push('/');
}

/// Splits `text` into named parts: each part starts at a line
/// `%%%% NAME` and runs to the next such line. Text before the first marker
/// is the part named `first`.
pub fn split_parts<'t>(text: &'t str, first: &'t str) -> Vec<(&'t str, &'t str)> {
    let mut parts = Vec::new();
    let mut name = first;
    let mut rest = text;
    loop {
        let next = if rest.starts_with("%%%% ") {
            Some(0)
        } else {
            rest.find("\n%%%% ").map(|i| i + 1)
        };
        match next {
            Some(at) => {
                if at > 0 || !std::ptr::eq(rest, text) {
                    parts.push((name, &rest[..at.saturating_sub(1)]));
                }
                let line = &rest[at + 5..];
                let end = line.find('\n').unwrap_or(line.len());
                name = line[..end].trim();
                rest = line.get(end + 1..).unwrap_or("");
            }
            None => {
                parts.push((name, rest));
                return parts;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_split_at_marker_lines() {
        assert_eq!(split_parts("a\nb", "index.xml"), [("index.xml", "a\nb")]);
        assert_eq!(
            split_parts("x\n%%%% f.xml\ny\n%%%% g.xml\n", "index.xml"),
            [("index.xml", "x"), ("f.xml", "y"), ("g.xml", "")]
        );
        assert_eq!(split_parts("%%%% f.xml\ny", "i"), [("f.xml", "y")]);
    }
}
