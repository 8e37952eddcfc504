//! Small helpers for reading libvirt-style XML with errors that point at the
//! exact file, line, column and element.
//!
//! Every cpumodel input format (cpu_map files, `<cpudata>` dumps, `<cpu>`
//! definitions, capabilities) is XML written by libvirt or by hand. A bad
//! value deep in a 300-line dump is only fixable if the message says where it
//! is, so all crates report XML problems through [`XmlError`].

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod prologue;
pub mod tree;

use std::fmt;
use std::path::Path;

use roxmltree::{Document, Node};

/// A problem at a specific place in an XML file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct XmlError {
    /// The file (or other source name) that was read.
    pub file: String,
    /// 1-based line of the element, 0 when unknown.
    pub line: u32,
    /// 1-based column of the element, 0 when unknown.
    pub col: u32,
    /// The element's name, empty when the document itself is malformed.
    pub element: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        if !self.element.is_empty() {
            write!(f, ": <{}>", self.element)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A source name for error messages, usually a file path.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a>(pub &'a str);

impl<'a> Source<'a> {
    /// The display form of a path.
    pub fn path(path: &'a Path) -> Source<'a> {
        Source(path.to_str().unwrap_or("<non-UTF-8 path>"))
    }

    /// An error about `node`.
    pub fn error(&self, node: Node<'_, '_>, message: impl Into<String>) -> XmlError {
        let pos = node.document().text_pos_at(node.range().start);
        XmlError {
            file: self.0.to_string(),
            line: pos.row,
            col: pos.col,
            element: if node.is_element() {
                node.tag_name().name().to_string()
            } else {
                String::new()
            },
            message: message.into(),
        }
    }

    /// An error about the whole file (no element).
    pub fn file_error(&self, message: impl Into<String>) -> XmlError {
        XmlError {
            file: self.0.to_string(),
            line: 0,
            col: 0,
            element: String::new(),
            message: message.into(),
        }
    }

    /// Parses `text` as XML; a syntax error names the line and column.
    ///
    /// # Errors
    /// Malformed XML, and documents beyond [`Source::check_limits`].
    pub fn parse<'t>(&self, text: &'t str) -> Result<Document<'t>, XmlError> {
        self.check_limits(text)?;
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        Document::parse_with_options(text, opts).map_err(|e| {
            let pos = match e {
                // roxmltree has no position for this one: the problem is at the end.
                roxmltree::Error::UnexpectedEndOfStream | roxmltree::Error::UnclosedRootNode => {
                    end_pos(text)
                }
                _ => e.pos(),
            };
            XmlError {
                file: self.0.to_string(),
                line: pos.row,
                col: pos.col,
                element: String::new(),
                message: format!("malformed XML: {e}"),
            }
        })
    }

    /// Refuses, before any parser sees them, the documents that would cost
    /// a parser more than their size: elements nested deeper than
    /// [`MAX_DEPTH`] (roxmltree reads nesting by recursion, so a deep enough
    /// document overflows the stack) and entity declarations (whose
    /// expansion can multiply a small file's size; libvirt never writes
    /// them). One linear scan.
    ///
    /// # Errors
    /// The first such element or declaration, with its position.
    pub fn check_limits(&self, text: &str) -> Result<(), XmlError> {
        match scan_limits(text.as_bytes()) {
            Ok(()) => Ok(()),
            Err((at, message)) => {
                let pos = text_pos(text, at);
                Err(XmlError {
                    file: self.0.to_string(),
                    line: pos.row,
                    col: pos.col,
                    element: String::new(),
                    message,
                })
            }
        }
    }

    /// A required attribute.
    pub fn req_attr<'n>(&self, node: Node<'n, '_>, name: &str) -> Result<&'n str, XmlError> {
        node.attribute(name)
            .ok_or_else(|| self.error(node, format!("missing attribute '{name}'")))
    }

    /// An optional unsigned attribute written as `0x` hex, or decimal.
    pub fn u32_attr(&self, node: Node<'_, '_>, name: &str) -> Result<Option<u32>, XmlError> {
        match node.attribute(name) {
            None => Ok(None),
            Some(v) => parse_u32(v).map(Some).ok_or_else(|| {
                self.error(
                    node,
                    format!("attribute {name}='{v}' is not a valid unsigned 32-bit number"),
                )
            }),
        }
    }

    /// A required unsigned attribute written as `0x` hex, or decimal.
    pub fn req_u32_attr(&self, node: Node<'_, '_>, name: &str) -> Result<u32, XmlError> {
        self.req_attr(node, name)?;
        Ok(self.u32_attr(node, name)?.unwrap_or_default())
    }
}

/// The deepest element nesting cpumodel reads (libxml2's default limit;
/// libvirt's documents nest at most 6 deep).
pub const MAX_DEPTH: usize = 256;

/// The end of the first `needle` in `b` from `i`, or `None`.
fn find_end(b: &[u8], i: usize, needle: &[u8]) -> Option<usize> {
    b.get(i..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| i + p + needle.len())
}

/// The scan of [`Source::check_limits`]: `Err` with the byte offset and the
/// message of the first element deeper than [`MAX_DEPTH`] or entity
/// declaration. Whatever it cannot follow (an unterminated comment, tag
/// or declaration) ends the scan: the parser reports that.
fn scan_limits(b: &[u8]) -> Result<(), (usize, String)> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(p) = b.get(i..).and_then(|r| r.iter().position(|&c| c == b'<')) {
        let at = i + p;
        let rest = &b[at..];
        let end = if rest.starts_with(b"<!--") {
            find_end(b, at + 4, b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            find_end(b, at + 9, b"]]>")
        } else if rest.starts_with(b"<?") {
            find_end(b, at + 2, b"?>")
        } else if rest.starts_with(b"<!ENTITY") {
            return Err((
                at,
                "entity declarations are not accepted (their expansion is unbounded)".into(),
            ));
        } else if rest.starts_with(b"<!DOCTYPE") {
            // Up to its internal subset, whose declarations are read one by one.
            let open = b[at..].iter().position(|&c| c == b'[' || c == b'>');
            open.map(|p| at + p + 1)
        } else if rest.starts_with(b"<!") {
            // The other declarations of a DTD.
            find_end(b, at + 2, b">")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            find_end(b, at + 2, b">")
        } else {
            // A start tag: its end is the first '>' outside quotes.
            let mut quote = None;
            let mut j = at + 1;
            let mut close = None;
            while let Some(&c) = b.get(j) {
                match (quote, c) {
                    (None, b'\'' | b'"') => quote = Some(c),
                    (Some(q), c) if c == q => quote = None,
                    (None, b'>') => {
                        close = Some(j);
                        break;
                    }
                    _ => {}
                }
                j += 1;
            }
            let close = close.map(|j| j + 1);
            if close.is_some_and(|j| b[j - 2] != b'/') {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err((
                        at,
                        format!(
                            "elements nested deeper than {MAX_DEPTH} levels (the XML depth limit)"
                        ),
                    ));
                }
            }
            close
        };
        match end {
            Some(e) => i = e,
            None => return Ok(()),
        }
    }
    Ok(())
}

/// The line and column of byte `at` of `text` (columns count characters).
fn text_pos(text: &str, at: usize) -> roxmltree::TextPos {
    let before = &text.as_bytes()[..at];
    let row = before.iter().filter(|&&c| c == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i + 1);
    let col = text[line_start..at].chars().count() + 1;
    roxmltree::TextPos::new(
        u32::try_from(row).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// The line and column just after the last non-blank character of `text`.
fn end_pos(text: &str) -> roxmltree::TextPos {
    let text = text.trim_end();
    let last_line = text.rsplit('\n').next().unwrap_or("");
    let row = text.matches('\n').count() + 1;
    let col = last_line.chars().count() + 1;
    roxmltree::TextPos::new(
        u32::try_from(row).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// Parses `0x`-prefixed hex or plain decimal, as libvirt's `strtoul(.., 0)` does
/// for the values it writes.
pub fn parse_u32(s: &str) -> Option<u32> {
    parse_plain_u32(s.as_bytes()).or_else(|| parse_u32_general(s))
}

/// [`parse_u32`] on what dumps are made of: `0x` and one to eight hex
/// digits, or one to nine decimal digits, which always fit. `None` for
/// anything else (which [`parse_u32_general`] then decides).
fn parse_plain_u32(b: &[u8]) -> Option<u32> {
    match b {
        [b'0', b'x' | b'X', hex @ ..] if (1..=8).contains(&hex.len()) => {
            hex.iter().try_fold(0u32, |v, &c| {
                let d = match c {
                    b'0'..=b'9' => c - b'0',
                    b'a'..=b'f' => c - b'a' + 10,
                    b'A'..=b'F' => c - b'A' + 10,
                    _ => return None,
                };
                Some(v << 4 | u32::from(d))
            })
        }
        _ if (1..=9).contains(&b.len()) => b.iter().try_fold(0u32, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
        }),
        _ => None,
    }
}

/// [`parse_u32`] on any text.
fn parse_u32_general(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() {
            return None;
        }
        u32::from_str_radix(hex, 16).ok()
    } else {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
}

/// Element children of `node`.
pub fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(|n| n.is_element())
}

/// The first element child named `name`.
pub fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    elements(node).find(|n| n.has_tag_name(name))
}

/// The trimmed text of the first element child named `name`.
pub fn child_text<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).map(|c| c.text().unwrap_or("").trim())
}

/// Escapes text for an XML attribute or element body.
///
/// Tab, line feed and carriage return are written as character references:
/// a parser turns them into spaces in an attribute value (and a carriage
/// return into a line feed anywhere), so written literally they would not
/// read back as they were.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_number_path_reads_as_the_general_one() {
        let mut cases: Vec<String> = [
            "",
            "0",
            "0x",
            "0X",
            "0x0",
            "0XaB",
            "0xfffffffF",
            "0x100000000",
            "0x000000001",
            "999999999",
            "4294967295",
            "4294967296",
            "0000000000",
            " 1",
            "1 ",
            "+1",
            "0x+1",
            "-0",
            "0x-1",
            "0xg",
            "1a",
            "0b1",
            "x1",
            "00x1",
            "\u{a0}7",
        ]
        .map(String::from)
        .to_vec();
        let alphabet = b"0x9aFfgX +-";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // cast: a few random bits.
            #[allow(clippy::cast_possible_truncation)]
            let len = (state % 12) as usize;
            // cast: random bits, reduced modulo the alphabet's length.
            #[allow(clippy::cast_possible_truncation)]
            let s: String = (0..len)
                .map(|i| char::from(alphabet[(state >> (4 * i + 4)) as usize % alphabet.len()]))
                .collect();
            cases.push(s.clone());
            cases.push(format!("0x{s}"));
        }
        for s in &cases {
            assert_eq!(parse_u32(s), parse_u32_general(s), "{s:?}");
        }
    }

    #[test]
    fn numbers_accept_hex_and_decimal_only() {
        assert_eq!(parse_u32("0x0000000b"), Some(11));
        assert_eq!(parse_u32("42"), Some(42));
        assert_eq!(parse_u32("0xzz"), None);
        assert_eq!(parse_u32("0x"), None);
        assert_eq!(parse_u32("-1"), None);
        assert_eq!(parse_u32("0x100000000"), None);
    }

    #[test]
    fn errors_name_file_line_column_and_element() {
        let src = Source("t.xml");
        let doc = src.parse("<a>\n  <b x='q'/>\n</a>").unwrap();
        let b = doc.root_element().first_element_child().unwrap();
        let e = src.u32_attr(b, "x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.xml:2:3: <b>: attribute x='q' is not a valid unsigned 32-bit number"
        );
        let e = src.parse("<a><b></a>").unwrap_err();
        assert!(e.to_string().starts_with("t.xml:1:"), "{e}");
        let e = src.parse("<a>\n  <b/>\n").unwrap_err();
        assert!(e.to_string().starts_with("t.xml:2:7:"), "{e}");
    }

    #[test]
    fn deep_nesting_and_entities_are_refused_before_parsing() {
        let src = Source("t.xml");
        let deep = "<a>".repeat(100_000);
        let e = src.parse(&deep).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.xml:1:769: elements nested deeper than 256 levels (the XML depth limit)"
        );
        let ok = format!("{}{}", "<a x='>'>".repeat(256), "</a>".repeat(256));
        src.parse(&ok).unwrap();
        let e = src
            .parse("<!DOCTYPE a [\n<!ENTITY e 'x'>\n]><a>&e;</a>")
            .unwrap_err();
        assert!(
            e.to_string().starts_with("t.xml:2:1: entity declarations"),
            "{e}"
        );
        let e = src
            .parse("<!DOCTYPE a [<!ENTITY e 'x>'>]><a>&e;</a>")
            .unwrap_err();
        assert!(
            e.to_string().starts_with("t.xml:1:14: entity declarations"),
            "{e}"
        );
        src.parse("<!DOCTYPE a><!-- <!ENTITY --><a><![CDATA[<b><c>]]></a>")
            .unwrap();
    }

    #[test]
    fn escaped_values_read_back_unchanged_in_attributes_and_text() {
        // Found by the `cpu` fuzz target: a feature name with a tab (from
        // `&#9;`) was written literally and read back as a space.
        let value = "a\tb\nc\r\nd &<>'\" e";
        let text = format!("<x a='{0}' b=\"{0}\">{0}</x>", escape(value));
        let doc = roxmltree::Document::parse(&text).unwrap();
        let x = doc.root_element();
        assert_eq!(x.attribute("a"), Some(value));
        assert_eq!(x.attribute("b"), Some(value));
        assert_eq!(x.text(), Some(value));
    }
}
