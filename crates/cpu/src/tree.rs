//! The element access `<cpu>` reading needs, over two XML trees.
//!
//! [`parse_cpu_node`](crate::parse_cpu_node) interprets a `<cpu>` element
//! through the [`CpuElement`] trait, so there is one reading of the element
//! whatever tree it comes from:
//!
//! - [`RoxNode`]: a roxmltree node, for every document shape, with errors
//!   that point at the element's line and column;
//! - [`LightNode`]: an element of [`LightTree`], a minimal tree for files
//!   that are nothing but `<cpu>` elements (fleet dumps). It accepts only a
//!   strict subset of XML (ASCII, no comments, entities, CDATA, processing
//!   instructions, namespaces or carriage returns) in which it reads every
//!   document exactly as roxmltree does; for anything else, and for any
//!   invalid definition, the caller falls back to the roxmltree path, which
//!   then gives the exact error position.

use cpumodel_data::xml::Source;
use cpumodel_data::XmlError;
use roxmltree::Node;

/// One element, as the `<cpu>` reader sees it.
pub(crate) trait CpuElement<'a>: Copy {
    /// What a problem with the element turns into.
    type Error;
    /// The tag name (local name).
    fn name(self) -> &'a str;
    /// An attribute's value.
    fn attribute(self, name: &str) -> Option<&'a str>;
    /// The text when the element's first child is text (roxmltree's
    /// `Node::text`).
    fn text(self) -> Option<&'a str>;
    /// The first element child.
    fn first_element(self) -> Option<Self>;
    /// The next element sibling.
    fn next_element(self) -> Option<Self>;
    /// An error about this element.
    fn error(self, message: String) -> Self::Error;

    /// The element children.
    fn elements(self) -> impl Iterator<Item = Self> {
        std::iter::successors(self.first_element(), |e| e.next_element())
    }

    /// The first element child named `name`.
    fn child(self, name: &str) -> Option<Self> {
        self.elements().find(|c| c.name() == name)
    }

    /// The trimmed text of the first element child named `name`.
    fn child_text(self, name: &str) -> Option<&'a str> {
        self.child(name).map(|c| c.text().unwrap_or("").trim())
    }
}

/// A roxmltree element with the source name its errors carry.
#[derive(Clone, Copy)]
pub(crate) struct RoxNode<'a, 'i, 's> {
    pub src: Source<'s>,
    pub node: Node<'a, 'i>,
}

impl<'a, 'i: 'a> CpuElement<'a> for RoxNode<'a, 'i, '_> {
    type Error = XmlError;

    fn name(self) -> &'a str {
        self.node.tag_name().name()
    }

    fn attribute(self, name: &str) -> Option<&'a str> {
        self.node.attribute(name)
    }

    fn text(self) -> Option<&'a str> {
        self.node.text()
    }

    fn first_element(self) -> Option<Self> {
        self.node
            .first_element_child()
            .map(|node| RoxNode { node, ..self })
    }

    fn next_element(self) -> Option<Self> {
        self.node
            .next_sibling_element()
            .map(|node| RoxNode { node, ..self })
    }

    fn error(self, message: String) -> XmlError {
        self.src.error(self.node, message)
    }
}

/// No index: the end of a child list.
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Elem<'a> {
    name: &'a str,
    attrs: (u32, u32),
    text: Option<&'a str>,
    first_child: u32,
    next_sibling: u32,
}

/// A minimal element tree of one top-level element, reused from element to
/// element so that reading a fleet file allocates almost nothing.
#[derive(Debug, Default)]
pub(crate) struct LightTree<'a> {
    elems: Vec<Elem<'a>>,
    attrs: Vec<(&'a str, &'a str)>,
}

/// An element of a [`LightTree`]; its errors only tell that there was one.
#[derive(Clone, Copy)]
pub(crate) struct LightNode<'t, 'a> {
    tree: &'t LightTree<'a>,
    index: u32,
}

impl<'t, 'a: 't> CpuElement<'t> for LightNode<'t, 'a> {
    type Error = ();

    fn name(self) -> &'t str {
        self.elem().name
    }

    fn attribute(self, name: &str) -> Option<&'t str> {
        let (start, end) = self.elem().attrs;
        self.tree.attrs[start as usize..end as usize]
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn text(self) -> Option<&'t str> {
        self.elem().text
    }

    fn first_element(self) -> Option<Self> {
        self.at(self.elem().first_child)
    }

    fn next_element(self) -> Option<Self> {
        self.at(self.elem().next_sibling)
    }

    fn error(self, _message: String) {}
}

impl<'t, 'a> LightNode<'t, 'a> {
    fn elem(self) -> &'t Elem<'a> {
        &self.tree.elems[self.index as usize]
    }

    fn at(self, index: u32) -> Option<Self> {
        (index != NONE).then_some(LightNode {
            tree: self.tree,
            index,
        })
    }
}

/// Deepest nesting the light tree reads (a `<cpu>` needs 2).
const MAX_DEPTH: usize = 8;

/// Byte classes, one bit each: XML white space.
const SPACE: u8 = 1;
/// A byte of a name (ASCII letters, digits, `_`, `-`, `.`).
const NAME: u8 = 2;
/// A byte that may start a name (ASCII letters, `_`).
const NAME_START: u8 = 4;
/// A text byte the light tree reads as roxmltree does: printable ASCII
/// without `<`, `&` (entities) and `]` (`]]>`), plus tab and newline.
const TEXT: u8 = 8;
/// An attribute value byte: as text, less tab and newline (which XML turns
/// into spaces) and quotes (checked separately).
const VALUE: u8 = 16;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let mut k = 0;
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            k |= SPACE;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.') {
            k |= NAME;
        }
        if b.is_ascii_alphabetic() || b == b'_' {
            k |= NAME_START;
        }
        let printable = matches!(b, b' '..=b'~') && !matches!(b, b'<' | b'&' | b']');
        if printable || matches!(b, b'\t' | b'\n') {
            k |= TEXT;
        }
        if printable && !matches!(b, b'\'' | b'"') {
            k |= VALUE;
        }
        t[c] = k;
        c += 1;
    }
    t
};

/// The first position from `i` whose byte is not of `class` (or the end).
fn skip(b: &[u8], i: usize, class: u8) -> usize {
    i + b[i..]
        .iter()
        .position(|&c| CLASS[c as usize] & class == 0)
        .unwrap_or(b.len() - i)
}

impl<'a> LightTree<'a> {
    /// The root element read by the last successful [`read`](Self::read).
    pub fn root(&self) -> LightNode<'_, 'a> {
        LightNode {
            tree: self,
            index: 0,
        }
    }

    /// Reads the element that starts at byte `pos` of `text` (a `<`).
    /// Returns the position just after it, or `None` when the element is
    /// outside the subset this tree reads (see the module documentation) or
    /// is not well-formed.
    pub fn read(&mut self, text: &'a str, pos: usize) -> Option<usize> {
        self.elems.clear();
        self.attrs.clear();
        let b = text.as_bytes();
        let mut i = pos;
        // Open elements and, for each, its last child so far.
        let mut stack = [(0u32, NONE); MAX_DEPTH];
        let mut depth = 0usize;
        loop {
            // At '<' of a start tag.
            let name_start = i + 1;
            i = name_end(b, name_start)?;
            let name = &text[name_start..i];
            let attrs_start = self.attrs.len() as u32;
            let empty = loop {
                let spaced = skip(b, i, SPACE);
                match *b.get(spaced)? {
                    b'>' => {
                        i = spaced;
                        break false;
                    }
                    b'/' => {
                        if b.get(spaced + 1) != Some(&b'>') {
                            return None;
                        }
                        i = spaced + 1;
                        break true;
                    }
                    // An attribute must follow white space.
                    _ if spaced == i => return None,
                    _ => {
                        let an_start = spaced;
                        i = name_end(b, an_start)?;
                        let an = &text[an_start..i];
                        if an.starts_with("xmlns") {
                            return None;
                        }
                        i = skip(b, i, SPACE);
                        if b.get(i) != Some(&b'=') {
                            return None;
                        }
                        i = skip(b, i + 1, SPACE);
                        let quote = *b.get(i)?;
                        if quote != b'\'' && quote != b'"' {
                            return None;
                        }
                        let v_start = i + 1;
                        i = skip(b, v_start, VALUE);
                        let other = if quote == b'\'' { b'"' } else { b'\'' };
                        while b.get(i) == Some(&other) {
                            i = skip(b, i + 1, VALUE);
                        }
                        if b.get(i) != Some(&quote) {
                            return None;
                        }
                        let value = &text[v_start..i];
                        i += 1;
                        let own = &self.attrs[attrs_start as usize..];
                        if own.iter().any(|(n, _)| *n == an) {
                            return None;
                        }
                        self.attrs.push((an, value));
                    }
                }
            };
            i += 1; // '>'
            let index = self.elems.len() as u32;
            self.elems.push(Elem {
                name,
                attrs: (attrs_start, self.attrs.len() as u32),
                text: None,
                first_child: NONE,
                next_sibling: NONE,
            });
            if depth > 0 {
                let (parent, last) = &mut stack[depth - 1];
                if *last == NONE {
                    self.elems[*parent as usize].first_child = index;
                } else {
                    self.elems[*last as usize].next_sibling = index;
                }
                *last = index;
            }
            if empty {
                if depth == 0 {
                    return Some(i);
                }
            } else {
                if depth == MAX_DEPTH {
                    return None;
                }
                stack[depth] = (index, NONE);
                depth += 1;
            }
            // Content of the innermost open element, up to a start tag or
            // the end of that element.
            loop {
                let t_start = i;
                i = skip(b, i, TEXT);
                if *b.get(i)? != b'<' {
                    return None;
                }
                let (open, last) = stack[depth - 1];
                if i > t_start && last == NONE {
                    // Text that is the first child.
                    self.elems[open as usize].text = Some(&text[t_start..i]);
                }
                match *b.get(i + 1)? {
                    b'/' => {
                        let close_start = i + 2;
                        i = name_end(b, close_start)?;
                        if &text[close_start..i] != self.elems[open as usize].name {
                            return None;
                        }
                        i = skip(b, i, SPACE);
                        if b.get(i) != Some(&b'>') {
                            return None;
                        }
                        i += 1;
                        depth -= 1;
                        if depth == 0 {
                            return Some(i);
                        }
                    }
                    b'!' | b'?' => return None,
                    _ => break,
                }
            }
        }
    }
}

/// The end of an ASCII XML name without a namespace prefix starting at `i`.
fn name_end(b: &[u8], i: usize) -> Option<usize> {
    if CLASS[*b.get(i)? as usize] & NAME_START == 0 {
        return None;
    }
    Some(skip(b, i + 1, NAME))
}

/// Skips XML white space from `i`.
pub(crate) fn skip_space(b: &[u8], i: usize) -> usize {
    skip(b, i.min(b.len()), SPACE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `text` with both trees and describes each the same way.
    fn both(text: &str) -> (Option<String>, Option<String>) {
        fn describe<'a, E: CpuElement<'a>>(e: E, out: &mut String) {
            out.push_str(&format!("<{}", e.name()));
            for a in ["name", "policy", "x", "y"] {
                if let Some(v) = e.attribute(a) {
                    out.push_str(&format!(" {a}={v:?}"));
                }
            }
            out.push_str(&format!(" text={:?}>", e.text()));
            for c in e.elements() {
                describe(c, out);
            }
            out.push('/');
        }
        let rox = roxmltree::Document::parse(text).ok().map(|d| {
            let mut s = String::new();
            describe(
                RoxNode {
                    src: Source("t"),
                    node: d.root_element(),
                },
                &mut s,
            );
            s
        });
        let mut tree = LightTree::default();
        let start = skip_space(text.as_bytes(), 0);
        let light = tree
            .read(text, start)
            .filter(|end| skip_space(text.as_bytes(), *end) == text.len())
            .map(|_| {
                let mut s = String::new();
                describe(tree.root(), &mut s);
                s
            });
        (rox, light)
    }

    #[test]
    fn reads_what_it_accepts_as_roxmltree_does() {
        for text in [
            "<cpu/>",
            "<cpu />",
            "<cpu></cpu >",
            "  <cpu>\n  <model  fallback = 'allow' >Haswell</model>\n<feature name=\"a>b\" policy='x'/></cpu>\n",
            "<cpu><model></model><vendor>  </vendor><x><y/>t</x>tail</cpu>",
            "<cpu>text<a/>more</cpu>",
            "<a><b><c><d/></c></b></a>",
        ] {
            let (rox, light) = both(text);
            assert!(light.is_some(), "{text}");
            assert_eq!(rox, light, "{text}");
        }
    }

    #[test]
    fn steps_aside_outside_its_subset() {
        for text in [
            // Not well-formed: roxmltree rejects these too.
            "<cpu>",
            "<cpu></cpux>",
            "<cpu x='1'x='2'/>",
            "<cpu x='1' x='2'/>",
            "<cpu x=1/>",
            "<cpu x='<'/>",
            "<cpu>a]]>b</cpu>",
            "<1cpu/>",
            // Well-formed, but read by roxmltree only.
            "<cpu>&amp;</cpu>",
            "<cpu x='&apos;'/>",
            "<cpu><!-- c --></cpu>",
            "<cpu><![CDATA[x]]></cpu>",
            "<cpu><?pi x?></cpu>",
            "<cpu xmlns='urn:x'/>",
            "<n:cpu xmlns:n='urn:x'/>",
            "<cpu x='a\tb'/>",
            "<cpu>a\r\nb</cpu>",
            "<cpu>é</cpu>",
            "<a><b><c><d><e><f><g><h><i>x</i></h></g></f></e></d></c></b></a>",
        ] {
            assert_eq!(both(text).1, None, "{text}");
        }
    }
}
