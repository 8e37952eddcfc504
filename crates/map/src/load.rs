//! Loading a libvirt `cpu_map` directory.
//!
//! The directory's `index.xml` names, under `<arch name='x86'>`, the files
//! that define vendors, features and models (directly or inside `<group>`
//! elements). Files are read in that order and a model may only refer to
//! features, vendors and ancestor models defined before it, exactly as libvirt
//! loads them, so the same directory gives the same answers in both.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use cpumodel_cpudata::{read_item, CpuData, ItemKey};
use cpumodel_xml::tree::{Element, LightTree, RoxNode};
use cpumodel_xml::{elements, Source};

use crate::db::{Alias, Database, Feature, Model, ModelId, ModelSignature, Vendor, VendorId};
use crate::error::LoadMapError;
use crate::featureset::{FeatureId, FeatureSet, MAX_FEATURES};

/// Loads the x86 part of a libvirt cpu_map directory.
///
/// # Errors
/// A missing or unreadable file, malformed XML, a duplicate or undefined
/// vendor, feature or model, features sharing a CPUID/MSR bit, or more than
/// [`MAX_FEATURES`] features. The error names the file, line and element.
pub fn load_cpu_map(dir: &Path) -> Result<Database, LoadMapError> {
    // Plain files are read with the light tree and the others with
    // roxmltree, both through the same `Builder`. On any problem the map is
    // loaded again with roxmltree alone, which reports it with its position.
    match load_fast(dir) {
        Some(db) => Ok(db),
        None => load_exact(dir),
    }
}

/// [`load_cpu_map`] with the light tree where it reads a file; `None` on any
/// error.
fn load_fast(dir: &Path) -> Option<Database> {
    let index_text = read_limited(&dir.join("index.xml")).ok()?;
    let mut index = LightTree::default();
    index.read_document(&index_text)?;
    let arch = index
        .root()
        .elements()
        .find(|n| n.name() == "arch" && n.attribute("name") == Some("x86"))?;
    let mut b = Builder::default();
    b.load_definitions(arch).ok()?;
    let files = arch
        .descendants()
        .filter(|n| n.name() == "include")
        .map(|include| {
            let file = include.req_attr("filename").ok()?;
            inside_map(file).ok()?;
            let path = dir.join(file);
            let text = read_limited(&path).ok()?;
            Some((path, text))
        })
        .collect::<Option<Vec<_>>>()?;
    // One tree for every file, so that its arrays are allocated once.
    let mut tree = LightTree::default();
    for (path, text) in &files {
        if tree.read_document(text).is_some() {
            b.load_definitions(tree.root()).ok()?;
        } else {
            let name = path.display().to_string();
            let src = Source(&name);
            let doc = src.parse(text).ok()?;
            let root = RoxNode {
                src,
                node: doc.root_element(),
            };
            b.load_definitions(root).ok()?;
        }
    }
    Some(b.finish())
}

/// [`load_cpu_map`] with roxmltree alone, for exact error positions.
fn load_exact(dir: &Path) -> Result<Database, LoadMapError> {
    let index_path = dir.join("index.xml");
    let index_text = read(&index_path)?;
    let index_name = index_path.display().to_string();
    let src = Source(&index_name);
    let doc = src.parse(&index_text)?;
    let root = doc.root_element();
    let arch = elements(root)
        .find(|n| n.has_tag_name("arch") && n.attribute("name") == Some("x86"))
        .ok_or_else(|| src.error(root, "no <arch name='x86'> element"))?;

    let mut b = Builder::default();
    b.load_definitions(RoxNode { src, node: arch })?;
    for include in arch.descendants().filter(|n| n.has_tag_name("include")) {
        let file = src.req_attr(include, "filename")?;
        inside_map(file).map_err(|m| src.error(include, m))?;
        let path = dir.join(file);
        let text = read_limited(&path).map_err(|e| {
            src.error(
                include,
                format!("cannot read included file '{}': {e}", path.display()),
            )
        })?;
        let name = path.display().to_string();
        let isrc = Source(&name);
        let idoc = isrc.parse(&text)?;
        b.load_definitions(RoxNode {
            src: isrc,
            node: idoc.root_element(),
        })?;
    }
    Ok(b.finish())
}

/// The largest CPU map file read (libvirt's are under 100 KB).
pub const MAX_MAP_FILE_BYTES: u64 = 16 << 20;

/// Reads a map file of at most [`MAX_MAP_FILE_BYTES`].
fn read_limited(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_MAP_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_MAP_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the CPU map file limit of {MAX_MAP_FILE_BYTES} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8: invalid byte 0x{:02x} at byte offset {offset}",
                e.as_bytes()[offset]
            ),
        )
    })
}

/// Refuses an include path that could name a file outside the map
/// directory: absolute, or with a `..` (or any other non-plain) component.
fn inside_map(file: &str) -> Result<(), String> {
    let plain = !file.is_empty()
        && Path::new(file)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(format!(
            "included file '{file}' is not inside the map directory (only relative paths without '..' are followed)"
        ))
    }
}

fn read(path: &Path) -> Result<String, LoadMapError> {
    read_limited(path).map_err(|source| LoadMapError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A fast hash for the loader's small trusted keys (FNV-1a).
#[derive(Clone, Copy, Debug, Default)]
struct Fnv;

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[derive(Default)]
struct Builder {
    vendors: Vec<Vendor>,
    features: Vec<Feature>,
    models: Vec<Model>,
    feature_names: HashMap<String, FeatureId, Fnv>,
    model_names: HashMap<String, ModelId, Fnv>,
    bit_owner: HashMap<(ItemKey, usize, u32), FeatureId, Fnv>,
}

impl Builder {
    fn finish(self) -> Database {
        Database::from_parts(self.vendors, self.features, self.models)
    }

    /// Loads the vendors, then the features, then the models of one element,
    /// which is libvirt's order within a file.
    fn load_definitions<'a, E: Element<'a>>(&mut self, node: E) -> Result<(), E::Error> {
        for n in node.elements().filter(|n| n.name() == "vendor") {
            self.vendor(n)?;
        }
        for n in node.elements().filter(|n| n.name() == "feature") {
            self.feature(n)?;
        }
        for n in node.elements().filter(|n| n.name() == "model") {
            self.model(n)?;
        }
        Ok(())
    }

    fn vendor<'a, E: Element<'a>>(&mut self, n: E) -> Result<(), E::Error> {
        let name = n.req_attr("name")?;
        if self.vendors.iter().any(|v| v.name == name) {
            return Err(n.error(format!("CPU vendor '{name}' is defined twice")));
        }
        let string = n.req_attr("string")?;
        let bytes: [u8; 12] = string.as_bytes().try_into().map_err(|_| {
            n.error(format!(
                "vendor string '{string}' must be exactly 12 characters"
            ))
        })?;
        if self.vendors.len() >= u8::MAX as usize {
            return Err(n.error("too many vendors".into()));
        }
        self.vendors.push(Vendor {
            name: Cow::Owned(name.to_string()),
            string: bytes,
        });
        Ok(())
    }

    fn feature<'a, E: Element<'a>>(&mut self, n: E) -> Result<(), E::Error> {
        let name = n.req_attr("name")?;
        if self.feature_names.contains_key(name) {
            return Err(n.error(format!("CPU feature '{name}' is defined twice")));
        }
        if self.features.len() >= MAX_FEATURES {
            return Err(n.error(format!(
                "more than {MAX_FEATURES} features are not supported"
            )));
        }
        let id = FeatureId::from_index(self.features.len());
        let mut aliases = Vec::new();
        let mut data = CpuData::new();
        for child in n.elements() {
            if child.name() == "alias" {
                aliases.push(Alias {
                    name: Cow::Owned(child.req_attr("name")?.to_string()),
                    source: Cow::Owned(child.attribute("source").unwrap_or("").to_string()),
                });
                continue;
            }
            let item = read_item(child)?;
            for (reg, value) in item.regs.iter().enumerate() {
                for bit in (0..32).filter(|b| value & (1 << b) != 0) {
                    if let Some(other) = self.bit_owner.insert((item.key, reg, bit), id) {
                        return Err(child.error(format!(
                            "feature '{name}' uses bit {bit} of {} {}, already used by feature '{}'",
                            item.key,
                            item.key.register_names()[reg],
                            self.features[other.index()].name
                        )));
                    }
                }
            }
            data.add(item);
        }
        if data.is_empty() {
            return Err(n.error(format!("feature '{name}' has no CPUID or MSR bits")));
        }
        let migratable = n.attribute("migratable") != Some("no");
        self.feature_names.insert(name.to_string(), id);
        self.features.push(Feature {
            name: Cow::Owned(name.to_string()),
            aliases,
            migratable,
            data,
        });
        Ok(())
    }

    fn model<'a, E: Element<'a>>(&mut self, n: E) -> Result<(), E::Error> {
        let name = n.req_attr("name")?;
        if self.model_names.contains_key(name) {
            return Err(n.error(format!("CPU model '{name}' is defined twice")));
        }
        let mut model = Model {
            name: Cow::Owned(name.to_string()),
            vendor: None,
            ancestor: None,
            signatures: Vec::new(),
            features: FeatureSet::new(),
            removed: Vec::new(),
            added: Vec::new(),
            decode_host: true,
            decode_guest: true,
        };

        if let Some(d) = n.child("decode") {
            model.decode_host = on_off(d, "host")?;
            model.decode_guest = on_off(d, "guest")?;
        }
        if let Some(a) = n.child("model") {
            let aname = a.req_attr("name")?;
            let aid = *self.model_names.get(aname).ok_or_else(|| {
                a.error(format!(
                    "ancestor model '{aname}' of CPU model '{name}' is not defined before it"
                ))
            })?;
            let ancestor = &self.models[aid.0 as usize];
            model.ancestor = Some(aid);
            model.vendor = ancestor.vendor;
            model.signatures = ancestor.signatures.clone();
            model.features = ancestor.features;
        }
        let mut sigs = n.elements().filter(|c| c.name() == "signature").peekable();
        if sigs.peek().is_some() {
            model.signatures.clear();
            for s in sigs {
                let family = s.req_u32_attr("family")?;
                if family == 0 {
                    return Err(s.error("signature family must not be 0".into()));
                }
                let steppings = match s.attribute("stepping") {
                    None => None,
                    Some(v) => Some(parse_steppings(v).ok_or_else(|| {
                        s.error(format!(
                            "stepping='{v}' is not a list of values or ranges within 0-15"
                        ))
                    })?),
                };
                model.signatures.push(ModelSignature {
                    family,
                    model: s.req_u32_attr("model")?,
                    steppings,
                });
            }
        }
        if let Some(v) = n.child("vendor") {
            let vname = v.req_attr("name")?;
            let vid = self
                .vendors
                .iter()
                .position(|x| x.name == vname)
                .ok_or_else(|| {
                    v.error(format!(
                        "vendor '{vname}' of CPU model '{name}' is not defined"
                    ))
                })?;
            model.vendor = Some(VendorId::from_index(vid));
        }
        for f in n.elements().filter(|c| c.name() == "feature") {
            let fname = f.req_attr("name")?;
            let fid = *self.feature_names.get(fname).ok_or_else(|| {
                f.error(format!(
                    "feature '{fname}' of CPU model '{name}' is not defined"
                ))
            })?;
            if yes(f, "removed")? {
                model.removed.push(fid);
            } else if yes(f, "added")? {
                model.added.push(fid);
            } else {
                model.features.insert(fid);
            }
        }
        if self.models.len() >= u16::MAX as usize {
            return Err(n.error("too many models".into()));
        }
        self.model_names
            .insert(name.to_string(), ModelId::from_index(self.models.len()));
        self.models.push(model);
        Ok(())
    }
}

fn on_off<'a, E: Element<'a>>(n: E, attr: &str) -> Result<bool, E::Error> {
    match n.req_attr(attr)? {
        "on" => Ok(true),
        "off" => Ok(false),
        v => Err(n.error(format!("{attr}='{v}' must be 'on' or 'off'"))),
    }
}

fn yes<'a, E: Element<'a>>(n: E, attr: &str) -> Result<bool, E::Error> {
    match n.attribute(attr) {
        None | Some("no") => Ok(false),
        Some("yes") => Ok(true),
        Some(v) => Err(n.error(format!("{attr}='{v}' must be 'yes' or 'no'"))),
    }
}

/// Parses a stepping list such as `0-3,5` into a 16-bit bitmap.
fn parse_steppings(s: &str) -> Option<u16> {
    let mut bits = 0u16;
    for part in s.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let v = part.parse::<u32>().ok()?;
                (v, v)
            }
        };
        if lo > hi || hi > 15 {
            return None;
        }
        for v in lo..=hi {
            bits |= 1 << v;
        }
    }
    Some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_map(files: &[(&str, &str)]) -> tempdir::Dir {
        let dir = tempdir::Dir::new();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    /// A minimal self-cleaning temporary directory (no extra dependency).
    mod tempdir {
        use std::path::{Path, PathBuf};
        use std::sync::atomic::{AtomicUsize, Ordering};
        pub struct Dir(PathBuf);
        impl Dir {
            pub fn new() -> Self {
                static N: AtomicUsize = AtomicUsize::new(0);
                let p = std::env::temp_dir().join(format!(
                    "cpumodel-map-test-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const INDEX: &str = "<cpus>\n  <arch name='x86'>\n    <include filename='v.xml'/>\n    <include filename='f.xml'/>\n    <group name='g'>\n      <include filename='m.xml'/>\n    </group>\n  </arch>\n</cpus>\n";
    const VENDORS: &str = "<cpus><vendor name='Intel' string='GenuineIntel'/></cpus>";
    const FEATURES: &str = "<cpus>\n<feature name='fpu'><cpuid eax_in='0x1' edx='0x1'/></feature>\n<feature name='pni'><alias name='sse3' source='qemu'/><cpuid eax_in='0x1' ecx='0x1'/></feature>\n<feature name='invtsc' migratable='no'><cpuid eax_in='0x80000007' edx='0x100'/></feature>\n</cpus>";

    #[test]
    fn loads_groups_ancestors_and_flags() {
        let dir = write_map(&[
            ("index.xml", INDEX),
            ("v.xml", VENDORS),
            ("f.xml", FEATURES),
            (
                "m.xml",
                "<cpus><model name='A'><decode host='on' guest='off'/><signature family='6' model='44' stepping='0-3,5'/><vendor name='Intel'/><feature name='fpu'/><feature name='invtsc' removed='yes'/></model>\n<model name='B'><model name='A'/><feature name='pni'/></model></cpus>",
            ),
        ]);
        let db = load_cpu_map(dir.path()).unwrap();
        assert_eq!(db.features().len(), 3);
        let b = db.model(db.find_model("b").unwrap());
        assert_eq!(b.name, "B");
        assert_eq!(
            db.feature_names(&b.features).collect::<Vec<_>>(),
            ["fpu", "pni"]
        );
        assert_eq!(
            b.signatures,
            [ModelSignature {
                family: 6,
                model: 44,
                steppings: Some(0b10_1111)
            }]
        );
        assert!(b.removed.is_empty());
        let a = db.model(db.find_model_exact("A").unwrap());
        assert!(a.decode_host && !a.decode_guest);
        assert_eq!(a.removed, [db.find_feature("invtsc").unwrap()]);
        assert_eq!(
            db.find_feature_alias("sse3", "qemu"),
            db.find_feature_exact("pni")
        );
        assert_eq!(
            db.feature_names(db.migration_blockers())
                .collect::<Vec<_>>(),
            ["invtsc"]
        );
        assert_eq!(
            db.find_feature("PNI").unwrap(),
            db.find_feature_exact("pni").unwrap()
        );
    }

    fn same_database(a: &Database, b: &Database) {
        assert_eq!(a.vendors(), b.vendors());
        assert_eq!(a.features(), b.features());
        assert_eq!(a.models(), b.models());
        assert_eq!(a.migration_blockers(), b.migration_blockers());
        assert_eq!(a.msr_features(), b.msr_features());
    }

    #[test]
    fn the_light_tree_loads_what_roxmltree_loads() {
        let models = "<!-- models -->\n<cpus>\n  <model name='A'>\n    <signature family='6' model='44'/> <!-- 0206c0 -->\n    <vendor name='Intel'/>\n    <feature name='fpu'/>\n  </model>\n  <model name='B'><model name='A'/><feature name='pni'/><feature name='invtsc' added='yes'/></model>\n</cpus>\n";
        let dir = write_map(&[
            ("index.xml", INDEX),
            // Read by roxmltree: the light tree does not read declarations.
            ("v.xml", &format!("<?xml version='1.0'?>\n{VENDORS}")),
            ("f.xml", FEATURES),
            ("m.xml", models),
        ]);
        let fast = load_fast(dir.path()).expect("loaded");
        same_database(&fast, &load_exact(dir.path()).unwrap());
        assert_eq!(fast.models().len(), 2);
        // Any error: the exact loader reports it.
        std::fs::write(
            dir.path().join("m.xml"),
            models.replace("name='pni'", "name='nope'"),
        )
        .unwrap();
        assert!(load_fast(dir.path()).is_none());
        let system = Path::new("/usr/share/libvirt/cpu_map");
        if system.join("index.xml").exists() {
            let fast = load_fast(system).expect("loaded");
            same_database(&fast, &load_exact(system).unwrap());
        }
    }

    fn load_err(models: &str, features: &str) -> String {
        let dir = write_map(&[
            ("index.xml", INDEX),
            ("v.xml", VENDORS),
            ("f.xml", features),
            ("m.xml", models),
        ]);
        let msg = load_cpu_map(dir.path()).unwrap_err().to_string();
        msg.replace(&dir.path().display().to_string(), "MAP")
    }

    #[test]
    fn undefined_references_name_file_and_element() {
        assert_eq!(
            load_err(
                "<cpus>\n<model name='A'><feature name='nope'/></model></cpus>",
                FEATURES
            ),
            "MAP/m.xml:2:17: <feature>: feature 'nope' of CPU model 'A' is not defined"
        );
        assert_eq!(
            load_err(
                "<cpus>\n<model name='B'><model name='A'/></model></cpus>",
                FEATURES
            ),
            "MAP/m.xml:2:17: <model>: ancestor model 'A' of CPU model 'B' is not defined before it"
        );
        assert_eq!(
            load_err("<cpus><feature name='x'><cpuid eax_in='0x1' ecx='0x1'/></feature></cpus>", FEATURES),
            "MAP/m.xml:1:25: <cpuid>: feature 'x' uses bit 0 of CPUID.(EAX=0x1,ECX=0x0) ecx, already used by feature 'pni'"
        );
        assert_eq!(
            load_err("<cpus><model name='A'", FEATURES),
            "MAP/m.xml:1:22: malformed XML: the root node was opened but never closed"
        );
    }

    #[test]
    fn missing_include_names_the_include_element() {
        let dir = write_map(&[
            ("index.xml", INDEX),
            ("v.xml", VENDORS),
            ("f.xml", FEATURES),
        ]);
        let msg = load_cpu_map(dir.path())
            .unwrap_err()
            .to_string()
            .replace(&dir.path().display().to_string(), "MAP");
        assert_eq!(
            msg,
            "MAP/index.xml:6:7: <include>: cannot read included file 'MAP/m.xml': No such file or directory (os error 2)"
        );
        let empty = tempdir::Dir::new();
        let msg = load_cpu_map(empty.path())
            .unwrap_err()
            .to_string()
            .replace(&empty.path().display().to_string(), "MAP");
        assert_eq!(
            msg,
            "MAP/index.xml: cannot read CPU map file: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn stepping_lists() {
        assert_eq!(parse_steppings("0-15"), Some(0xffff));
        assert_eq!(parse_steppings("4"), Some(0x10));
        assert_eq!(parse_steppings("3-1"), None);
        assert_eq!(parse_steppings("16"), None);
    }
}
