//! What comes before a document's root element.
//!
//! cpumodel writes notes about a document (which host it was read on, which
//! view of the CPU it holds) as XML comments ahead of the root element, where
//! libvirt and every other XML reader ignore them. Reading them back must not
//! cost a parse of the whole document, so this scans only the prologue.

/// The comments before the root element and the root element's name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prologue<'a> {
    /// The text of each comment, trimmed, in document order.
    pub comments: Vec<&'a str>,
    /// The root element's name (empty when the text has no element).
    pub root: &'a str,
    /// The byte offset of the root element's `<` (the text's length when
    /// it has no element): what follows is the document without its
    /// prologue.
    pub body_start: usize,
}

impl<'a> Prologue<'a> {
    /// Scans `text` up to its first element. Anything that is not a
    /// declaration, comment, processing instruction, DOCTYPE or white space
    /// ends the scan; the document's own parse reports what is wrong with it.
    pub fn scan(text: &'a str) -> Prologue<'a> {
        let mut out = Prologue {
            body_start: text.len(),
            ..Prologue::default()
        };
        let mut rest = text.trim_start_matches('\u{feff}');
        loop {
            rest = rest.trim_start();
            if let Some(body) = rest.strip_prefix("<!--") {
                let Some(end) = body.find("-->") else {
                    return out;
                };
                out.comments.push(body[..end].trim());
                rest = &body[end + 3..];
            } else if rest.starts_with("<?") || rest.starts_with("<!") {
                let Some(end) = rest.find('>') else {
                    return out;
                };
                rest = &rest[end + 1..];
            } else if let Some(body) = rest.strip_prefix('<') {
                out.body_start = text.len() - rest.len();
                let end = body
                    .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                    .unwrap_or(body.len());
                out.root = &body[..end];
                return out;
            } else {
                return out;
            }
        }
    }

    /// The value of the first `KEY: value` comment, trimmed.
    pub fn note(&self, key: &str) -> Option<&'a str> {
        self.comments.iter().find_map(|c| {
            let (k, v) = c.split_once(':')?;
            (k.trim() == key).then(|| v.trim())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Prologue;

    #[test]
    fn reads_comments_and_root() {
        let p = Prologue::scan(
            "<?xml version='1.0'?>\n<!-- host: node-1 -->\n<!--view: kvm /dev/kvm-->\n<cpudata arch='x86'/>",
        );
        assert_eq!(p.comments, ["host: node-1", "view: kvm /dev/kvm"]);
        assert_eq!(p.root, "cpudata");
        assert_eq!(p.note("host"), Some("node-1"));
        assert_eq!(p.note("view"), Some("kvm /dev/kvm"));
        assert_eq!(p.note("other"), None);
    }

    #[test]
    fn stops_at_anything_else() {
        assert_eq!(Prologue::scan("text <cpu/>").root, "");
        assert_eq!(Prologue::scan("<!-- open").comments, Vec::<&str>::new());
        assert_eq!(Prologue::scan("<cpu>").root, "cpu");
        assert_eq!(Prologue::scan("<cpu/>").root, "cpu");
        assert_eq!(Prologue::scan("").root, "");
    }
}
