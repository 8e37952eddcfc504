//! One element interface over two XML trees, so that each input format has
//! one interpretation whatever tree it is read from.
//!
//! - [`RoxNode`]: a roxmltree node, for every document, with errors that
//!   point at the element's line and column;
//! - [`LightNode`]: an element of a [`LightTree`], a minimal tree for the
//!   plain XML that fleet files of `<cpu>` elements and CPU maps are made of.
//!   It reads only a strict subset of XML (ASCII, no entities, CDATA,
//!   processing instructions, document types, namespaces or carriage
//!   returns) in which it reads every document exactly as roxmltree does,
//!   with about a sixth of roxmltree's instructions on such files. Its
//!   errors only tell that there was one: on any, and on anything outside
//!   its subset, callers read the document again with roxmltree, which then
//!   gives the exact error position.

use roxmltree::Node;

use crate::{parse_u32, Source, XmlError};

/// One element, as the readers of cpumodel's input formats see it.
pub trait Element<'a>: Copy {
    /// What a problem with the element turns into.
    type Error;
    /// The tag name (local name).
    fn name(self) -> &'a str;
    /// An attribute's value.
    fn attribute(self, name: &str) -> Option<&'a str>;
    /// The attributes [`Element::attribute`] finds (those without a
    /// namespace), as `(name, value)` in document order: a reader that wants
    /// several of them takes them in one pass.
    fn attributes(self) -> impl Iterator<Item = (&'a str, &'a str)>;
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

    /// The element and all elements below it, in document order.
    fn descendants(self) -> impl Iterator<Item = Self> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            let next = stack.pop()?;
            let mut children: Vec<Self> = next.elements().collect();
            children.reverse();
            stack.extend(children);
            Some(next)
        })
    }

    /// The first element child named `name`.
    fn child(self, name: &str) -> Option<Self> {
        self.elements().find(|c| c.name() == name)
    }

    /// The trimmed text of the first element child named `name`.
    fn child_text(self, name: &str) -> Option<&'a str> {
        self.child(name).map(|c| c.text().unwrap_or("").trim())
    }

    /// A required attribute (as [`Source::req_attr`]).
    ///
    /// # Errors
    /// The attribute is missing.
    fn req_attr(self, name: &str) -> Result<&'a str, Self::Error> {
        self.required(name, self.attribute(name))
    }

    /// `value`, the attribute `name` already looked up, which is required
    /// (as [`Element::req_attr`]).
    ///
    /// # Errors
    /// `value` is `None`.
    fn required(self, name: &str, value: Option<&'a str>) -> Result<&'a str, Self::Error> {
        value.ok_or_else(|| self.error(format!("missing attribute '{name}'")))
    }

    /// `value`, the attribute `name` already looked up, as an optional
    /// unsigned number (as [`Element::u32_attr`]).
    ///
    /// # Errors
    /// The value is not such a number.
    fn u32_value(self, name: &str, value: Option<&str>) -> Result<Option<u32>, Self::Error> {
        match value {
            None => Ok(None),
            Some(v) => parse_u32(v).map(Some).ok_or_else(|| {
                self.error(format!(
                    "attribute {name}='{v}' is not a valid unsigned 32-bit number"
                ))
            }),
        }
    }

    /// `value`, the attribute `name` already looked up, as a required
    /// unsigned number (as [`Element::req_u32_attr`]).
    ///
    /// # Errors
    /// `value` is missing or not such a number.
    fn req_u32_value(self, name: &str, value: Option<&str>) -> Result<u32, Self::Error> {
        let v = value.ok_or_else(|| self.error(format!("missing attribute '{name}'")))?;
        Ok(self.u32_value(name, Some(v))?.unwrap_or_default())
    }

    /// An optional unsigned attribute, `0x` hex or decimal (as
    /// [`Source::u32_attr`]).
    ///
    /// # Errors
    /// The value is not such a number.
    fn u32_attr(self, name: &str) -> Result<Option<u32>, Self::Error> {
        self.u32_value(name, self.attribute(name))
    }

    /// A required unsigned attribute (as [`Source::req_u32_attr`]).
    ///
    /// # Errors
    /// The attribute is missing or not such a number.
    fn req_u32_attr(self, name: &str) -> Result<u32, Self::Error> {
        self.req_attr(name)?;
        Ok(self.u32_attr(name)?.unwrap_or_default())
    }
}

/// A roxmltree element with the source name its errors carry.
#[derive(Clone, Copy, Debug)]
pub struct RoxNode<'a, 'i, 's> {
    /// Where the document came from.
    pub src: Source<'s>,
    /// The element.
    pub node: Node<'a, 'i>,
}

impl<'a, 'i: 'a> Element<'a> for RoxNode<'a, 'i, '_> {
    type Error = XmlError;

    fn name(self) -> &'a str {
        self.node.tag_name().name()
    }

    fn attribute(self, name: &str) -> Option<&'a str> {
        self.node.attribute(name)
    }

    fn attributes(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.node
            .attributes()
            .filter(|a| a.namespace().is_none())
            .map(|a| (a.name(), a.value()))
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

/// A minimal element tree of one element, reusable from element to element
/// so that reading a fleet file allocates almost nothing.
#[derive(Debug, Default)]
pub struct LightTree<'a> {
    elems: Vec<Elem<'a>>,
    attrs: Vec<(&'a str, &'a str)>,
}

/// An element of a [`LightTree`].
#[derive(Clone, Copy, Debug)]
pub struct LightNode<'t, 'a> {
    tree: &'t LightTree<'a>,
    index: u32,
}

impl<'t, 'a: 't> Element<'t> for LightNode<'t, 'a> {
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

    fn attributes(self) -> impl Iterator<Item = (&'t str, &'t str)> {
        let (start, end) = self.elem().attrs;
        self.tree.attrs[start as usize..end as usize]
            .iter()
            .copied()
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

/// Deepest nesting the light tree reads (a `<cpu>` needs 2, a CPU map 4).
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
/// A comment byte: printable ASCII, tab and newline.
const COMMENT: u8 = 32;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        // cast: c < 256.
        #[allow(clippy::cast_possible_truncation)]
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
        let printable = matches!(b, b' '..=b'~');
        let plain = printable && !matches!(b, b'<' | b'&' | b']');
        if plain || matches!(b, b'\t' | b'\n') {
            k |= TEXT;
        }
        if plain && !matches!(b, b'\'' | b'"') {
            k |= VALUE;
        }
        if printable || matches!(b, b'\t' | b'\n') {
            k |= COMMENT;
        }
        t[c] = k;
        c += 1;
    }
    t
};

/// The first position from `i` whose byte is not of `class` (or the end).
fn skip(b: &[u8], mut i: usize, class: u8) -> usize {
    while let Some(&c) = b.get(i) {
        if CLASS[c as usize] & class == 0 {
            break;
        }
        i += 1;
    }
    i
}

/// Skips XML white space from `i`.
pub fn skip_space(b: &[u8], i: usize) -> usize {
    skip(b, i, SPACE)
}

/// The end of the comment starting at `i` (at `<!--`), when roxmltree reads
/// it the same way: printable ASCII, tab and newline, no `--` inside and no
/// `-` before the end.
fn comment_end(b: &[u8], i: usize) -> Option<usize> {
    let start = i + 4;
    let len = b.get(start..)?.windows(3).position(|w| w == b"-->")?;
    let body = &b[start..start + len];
    let plain = body.iter().all(|&c| CLASS[c as usize] & COMMENT != 0);
    if !plain || body.windows(2).any(|w| w == b"--") || body.last() == Some(&b'-') {
        return None;
    }
    Some(start + len + 3)
}

/// Skips white space and comments from `i`.
fn skip_misc(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i = skip_space(b, i);
        if b[i..].starts_with(b"<!--") {
            i = comment_end(b, i)?;
        } else {
            return Some(i);
        }
    }
}

/// Where the root element of `text` starts: after the white space and
/// comments [`LightTree::read_document`] reads before it. `None` when a
/// comment there is outside this tree's subset.
pub fn document_start(text: &str) -> Option<usize> {
    skip_misc(text.as_bytes(), 0)
}

impl<'a> LightTree<'a> {
    /// The root element read by the last successful read.
    pub fn root(&self) -> LightNode<'_, 'a> {
        LightNode {
            tree: self,
            index: 0,
        }
    }

    /// Reads `text` as a whole document: white space and comments around
    /// one root element. `None` when the document is outside the subset
    /// this tree reads or is not well-formed.
    pub fn read_document(&mut self, text: &'a str) -> Option<()> {
        let b = text.as_bytes();
        let start = skip_misc(b, 0)?;
        let end = self.read(text, start)?;
        (skip_misc(b, end)? == b.len()).then_some(())
    }

    /// Reads the element that starts at byte `pos` of `text` (a `<`).
    /// Returns the position just after it, or `None` when the element is
    /// outside the subset this tree reads or is not well-formed.
    pub fn read(&mut self, text: &'a str, pos: usize) -> Option<usize> {
        self.elems.clear();
        self.attrs.clear();
        let b = text.as_bytes();
        let mut i = pos;
        if b.get(i) != Some(&b'<') {
            return None;
        }
        // Open elements: the element, its last element child so far, and
        // whether it has any child node yet (text, element or comment).
        let mut stack = [(0u32, NONE, false); MAX_DEPTH];
        let mut depth = 0usize;
        loop {
            // At '<' of a start tag.
            let name_start = i + 1;
            i = name_end(b, name_start)?;
            let name = &text[name_start..i];
            let attrs_start = u32::try_from(self.attrs.len()).ok()?;
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
            let index = u32::try_from(self.elems.len()).ok()?;
            self.elems.push(Elem {
                name,
                attrs: (attrs_start, u32::try_from(self.attrs.len()).ok()?),
                text: None,
                first_child: NONE,
                next_sibling: NONE,
            });
            if depth > 0 {
                let (parent, last, seen) = &mut stack[depth - 1];
                if *last == NONE {
                    self.elems[*parent as usize].first_child = index;
                } else {
                    self.elems[*last as usize].next_sibling = index;
                }
                *last = index;
                *seen = true;
            }
            if empty {
                if depth == 0 {
                    return Some(i);
                }
            } else {
                if depth == MAX_DEPTH {
                    return None;
                }
                stack[depth] = (index, NONE, false);
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
                let (open, _, seen) = &mut stack[depth - 1];
                if i > t_start {
                    if !*seen {
                        // Text that is the first child.
                        self.elems[*open as usize].text = Some(&text[t_start..i]);
                    }
                    *seen = true;
                }
                let open = *open as usize;
                match *b.get(i + 1)? {
                    b'/' => {
                        let close_start = i + 2;
                        i = name_end(b, close_start)?;
                        if &text[close_start..i] != self.elems[open].name {
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
                    b'!' if b[i..].starts_with(b"<!--") => {
                        i = comment_end(b, i)?;
                        stack[depth - 1].2 = true;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Describes an element and its children.
    fn describe<'a, E: Element<'a>>(e: E, out: &mut String) {
        out.push_str(&format!("<{}", e.name()));
        for a in ["name", "policy", "x", "y", "mode", "fallback", "eax_in"] {
            if let Some(v) = e.attribute(a) {
                out.push_str(&format!(" {a}={v:?}"));
            }
        }
        for (n, v) in e.attributes() {
            assert_eq!(e.attribute(n), Some(v));
            out.push_str(&format!(" @{n}={v:?}"));
        }
        out.push_str(&format!(" text={:?}>", e.text()));
        for c in e.elements() {
            describe(c, out);
        }
        out.push('/');
    }

    /// Reads `text` with roxmltree and describes it as [`describe`] does.
    fn rox_description(text: &str) -> Option<String> {
        roxmltree::Document::parse(text).ok().map(|d| {
            let mut s = String::new();
            describe(
                RoxNode {
                    src: Source("t"),
                    node: d.root_element(),
                },
                &mut s,
            );
            s
        })
    }

    /// Reads `text` with both trees and describes each the same way.
    fn both(text: &str) -> (Option<String>, Option<String>) {
        let rox = rox_description(text);
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
            "<cpu><!-- c --></cpu>",
            "<cpu><!-- a <b> & ]]> c --><model>x</model></cpu>",
            "<cpu><model><!-- c -->Haswell</model></cpu>",
            "<cpu><model>Has<!-- c -->well</model></cpu>",
            "<cpu><model>Has<!---->well</model>\n<!-- a - b -->\n</cpu>",
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
            "<cpu><!-- a -- b --></cpu>",
            "<cpu><!-- a ---></cpu>",
            "<cpu><!-- a --</cpu>",
            "<cpu><!-- \u{e9} --></cpu>",
            "<cpu><!DOCTYPE x></cpu>",
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

    #[test]
    fn agrees_with_roxmltree_on_mutated_documents() {
        let seeds = [
            "<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>Haswell</model>\n  <vendor>Intel</vendor>\n  <!-- c -->\n  <feature policy='require' name='vmx'/>\n</cpu>\n",
            "<!-- x -->\n<cpus>\n  <feature name=\"fpu\">\n    <cpuid eax_in='0x01' edx='0x00000001'/>\n  </feature>\n</cpus>\n",
        ];
        let alphabet = b"<>/='\"!-?&;]x :\t\n\ra";
        let mut mutator = cpumodel_testenv::Mutator::new(0x2545_f491_4f6c_dd1d);
        let mut read = 0;
        for i in 0..20_000 {
            let doc = mutator.mutate(seeds[i % seeds.len()].as_bytes(), alphabet, 3);
            let text = String::from_utf8(doc).expect("ASCII");
            let rox = rox_description(&text);
            let mut tree = LightTree::default();
            if tree.read_document(&text).is_some() {
                read += 1;
                let mut light = String::new();
                describe(tree.root(), &mut light);
                assert_eq!(rox, Some(light), "{text:?}");
            }
        }
        assert!(read > 2_000, "{read}");
    }

    #[test]
    fn reads_documents_with_comments_around_the_root() {
        let mut tree = LightTree::default();
        for (text, ok) in [
            (
                "<!-- licence -->\n<cpus>\n  <!-- x -->\n  <a/>\n</cpus>\n<!-- end -->\n",
                true,
            ),
            ("\n <cpus/> ", true),
            ("<?xml version='1.0'?><cpus/>", false),
            ("<cpus/><cpus/>", false),
            ("<cpus/>x", false),
            ("<!-- a -- b --><cpus/>", false),
        ] {
            assert_eq!(tree.read_document(text).is_some(), ok, "{text}");
            if ok {
                assert!(roxmltree::Document::parse(text).is_ok(), "{text}");
                assert_eq!(tree.root().name(), "cpus");
            }
        }
    }
}
