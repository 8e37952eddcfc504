//! The database types: vendors, features, models, and name lookup.

use std::borrow::Cow;
use std::sync::OnceLock;

use cpumodel_cpudata::{CpuData, Item, ItemKey, Signature};

use crate::error::{NameKind, UnknownName};
use crate::featureset::{FeatureId, FeatureSet};
use crate::suggest::closest;

/// Index of a vendor in its database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VendorId(pub u8);

/// Index of a model in its database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelId(pub u16);

impl VendorId {
    /// The identifier of the vendor at `index` of a database's vendor table.
    ///
    /// # Panics
    ///
    /// When `index` is not below 255: no database holds more vendors (the
    /// loader refuses them).
    pub fn from_index(index: usize) -> Self {
        Self(u8::try_from(index).expect("a database holds fewer than 255 vendors"))
    }
}

impl ModelId {
    /// The identifier of the model at `index` of a database's model table.
    ///
    /// # Panics
    ///
    /// When `index` does not fit in 16 bits: no database holds that many
    /// models (the loader refuses them).
    pub fn from_index(index: usize) -> Self {
        Self(u16::try_from(index).expect("a database holds fewer than 65535 models"))
    }
}

/// A CPU vendor: its short name and the 12-byte CPUID leaf 0 string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vendor {
    /// Short name used in `<vendor>` elements (`Intel`, `AMD`, ...).
    pub name: Cow<'static, str>,
    /// The CPUID vendor string (`GenuineIntel`, ...).
    pub string: [u8; 12],
}

impl Vendor {
    /// The vendor string as text.
    pub fn string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.string).into_owned()
    }

    /// The CPUID leaf 0 item carrying the vendor string (EAX not included).
    pub fn cpuid_item(&self) -> Item {
        let [ebx, edx, ecx] = cpumodel_cpudata::vendor_to_regs(&self.string);
        Item::cpuid(0, 0, 0, ebx, ecx, edx)
    }
}

/// Another name for a feature, used by some other software.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    /// The other name.
    pub name: Cow<'static, str>,
    /// Who uses it (`qemu`, `linux`).
    pub source: Cow<'static, str>,
}

/// A CPU feature: a named set of CPUID or MSR bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feature {
    /// The canonical (libvirt) name.
    pub name: Cow<'static, str>,
    /// Other names for the same bits.
    pub aliases: Vec<Alias>,
    /// False when a guest using the feature cannot be live-migrated.
    pub migratable: bool,
    /// The bits that make up the feature.
    pub data: CpuData,
}

impl Feature {
    /// True when the feature lives in an MSR rather than in CPUID.
    pub fn is_msr(&self) -> bool {
        self.data
            .nonzero_items()
            .any(|i| matches!(i.key, ItemKey::Msr { .. }))
    }
}

/// A family/model (and optionally stepping) a named model was designed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelSignature {
    /// CPU family.
    pub family: u32,
    /// CPU model number.
    pub model: u32,
    /// Bitmap of matching steppings (bit n = stepping n); `None` matches all.
    pub steppings: Option<u16>,
}

impl ModelSignature {
    /// True when a processor signature matches.
    pub fn matches(&self, sig: Signature) -> bool {
        self.family == sig.family
            && self.model == sig.model
            && self
                .steppings
                .is_none_or(|s| sig.stepping < 16 && s & (1 << sig.stepping) != 0)
    }

    /// The lowest stepping this signature covers (0 when it covers all).
    pub fn first_stepping(&self) -> u32 {
        self.steppings
            .map_or(0, |s| if s == 0 { 0 } else { s.trailing_zeros() })
    }
}

/// A named CPU model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    /// The model name (`Skylake-Client-IBRS`).
    pub name: Cow<'static, str>,
    /// The vendor, when the model is vendor specific.
    pub vendor: Option<VendorId>,
    /// The model this one was defined relative to.
    pub ancestor: Option<ModelId>,
    /// Processor signatures the model corresponds to.
    pub signatures: Vec<ModelSignature>,
    /// Every feature of the model (its ancestor's included).
    pub features: FeatureSet,
    /// Features the model dropped relative to its first definition; guests
    /// must list them as disabled to stay compatible.
    pub removed: Vec<FeatureId>,
    /// Features the hypervisor always enabled for this model but which were
    /// added to its definition later.
    pub added: Vec<FeatureId>,
    /// May be chosen when describing a host CPU.
    pub decode_host: bool,
    /// May be chosen when describing a guest CPU.
    pub decode_guest: bool,
}

impl Model {
    /// True when a processor signature matches one of the model's.
    pub fn matches_signature(&self, eax: u32) -> bool {
        let sig = Signature::from_eax(eax);
        self.signatures.iter().any(|s| s.matches(sig))
    }
}

/// A CPU model database: everything a cpu_map directory defines.
///
/// Features are numbered in the order the map defines them, and that order is
/// the order every output lists features in (as libvirt does).
#[derive(Clone, Debug)]
pub struct Database {
    vendors: Vec<Vendor>,
    features: Vec<Feature>,
    models: Vec<Model>,
    names: OnceLock<NameIndex>,
    migration_blockers: FeatureSet,
    msr_features: FeatureSet,
    bits: FeatureBits,
}

/// Every feature's bits, flattened so that [`Database::features_in_data`]
/// looks each CPUID leaf or MSR of the data up once (by a merge of two
/// sorted lists) instead of once per feature, and then tests each feature
/// with a few AND instructions.
#[derive(Clone, Debug, Default)]
struct FeatureBits {
    /// The distinct keys of the features' nonzero items, sorted.
    keys: Vec<ItemKey>,
    /// Each feature's nonzero items, feature after feature: the index of the
    /// item's key in `keys`, and the item's bits.
    masks: Vec<(u32, [u32; 4])>,
    /// Where each feature's items end in `masks` (they start where the
    /// previous feature's end).
    ends: Vec<u32>,
}

impl FeatureBits {
    fn new(features: &[Feature]) -> Self {
        let mut keys: Vec<ItemKey> = features
            .iter()
            .flat_map(|f| f.data.nonzero_items().map(|i| i.key))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut bits = FeatureBits {
            keys,
            ..FeatureBits::default()
        };
        for f in features {
            for item in f.data.nonzero_items() {
                let k = bits.keys.binary_search(&item.key).expect("collected above");
                bits.masks
                    .push((u32::try_from(k).expect("few keys"), item.regs));
            }
            bits.ends
                .push(u32::try_from(bits.masks.len()).expect("few items"));
        }
        bits
    }
}

/// Most distinct CPUID leaves and MSRs whose values
/// [`Database::features_in_data`] keeps on the stack.
const STACK_KEYS: usize = 64;

/// Case-insensitive name lookup tables, built on first use so that
/// constructing a database stays cheap.
#[derive(Clone, Debug)]
struct NameIndex {
    features: NameTable,
    models: NameTable,
}

/// An open-addressing hash table from names, ignoring ASCII case, to their
/// index in a name list. It holds indices only: keys are compared against
/// the list itself, so building it allocates one array and copies no name.
#[derive(Clone, Debug)]
struct NameTable {
    /// Index + 1 of a name, 0 for a free slot; the length is a power of two
    /// at least twice the number of names.
    slots: Vec<u16>,
}

/// A hash of `name` that ignores ASCII case: bytes are read eight at a time
/// with bit 5 set, which makes upper and lower case letters equal (and a
/// few other pairs, which only cost a probe), then mixed.
fn hash_lowercase(name: &str) -> u64 {
    const CASE: u64 = 0x2020_2020_2020_2020;
    let mut h = name.len() as u64;
    let mut chunks = name.as_bytes().chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes(c.try_into().expect("8 bytes")) | CASE;
        h = (h ^ word)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(23);
    }
    let mut tail = [0x20u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ (u64::from_le_bytes(tail) | CASE)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // Final mix, so that the low bits used as slot numbers depend on all.
    h ^= h >> 32;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 29)
}

/// Equal ignoring ASCII case; names are mostly written as defined, so the
/// exact comparison comes first.
fn same_name(known: &str, name: &str) -> bool {
    known.len() == name.len() && (known == name || known.eq_ignore_ascii_case(name))
}

impl NameTable {
    /// Indexes `names`; of names equal but for case, the first one wins.
    fn new<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> Self {
        let list: Vec<&str> = names.collect();
        let mut table = NameTable {
            slots: vec![0; (list.len() * 2).next_power_of_two().max(2)],
        };
        for (i, name) in list.iter().enumerate() {
            if let Err(free) = table.find(name, |j| list[j]) {
                table.slots[free] = u16::try_from(i + 1).expect("fewer than 65535 names");
            }
        }
        table
    }

    /// The index of `name` (ignoring ASCII case); `names` gives the name at
    /// an index.
    fn get<'a>(&self, name: &str, names: impl Fn(usize) -> &'a str) -> Option<u16> {
        self.find(name, names).ok()
    }

    /// The index of `name`, or the free slot where it would go.
    fn find<'a>(&self, name: &str, names: impl Fn(usize) -> &'a str) -> Result<u16, usize> {
        let mask = self.slots.len() - 1;
        // cast: only the low bits of the hash pick a slot.
        #[allow(clippy::cast_possible_truncation)]
        let mut slot = hash_lowercase(name) as usize & mask;
        loop {
            match self.slots[slot] {
                0 => return Err(slot),
                i if same_name(names(usize::from(i - 1)), name) => return Ok(i - 1),
                _ => slot = (slot + 1) & mask,
            }
        }
    }
}

impl Database {
    /// Assembles a database from already resolved parts.
    ///
    /// The caller guarantees that every id refers into the given vectors and
    /// that there are at most [`MAX_FEATURES`](crate::MAX_FEATURES) features.
    pub fn from_parts(vendors: Vec<Vendor>, features: Vec<Feature>, models: Vec<Model>) -> Self {
        let mut migration_blockers = FeatureSet::new();
        let mut msr_features = FeatureSet::new();
        for (i, f) in features.iter().enumerate() {
            if !f.migratable {
                migration_blockers.insert(FeatureId::from_index(i));
            }
            if f.is_msr() {
                msr_features.insert(FeatureId::from_index(i));
            }
        }
        let bits = FeatureBits::new(&features);
        Database {
            vendors,
            features,
            models,
            names: OnceLock::new(),
            migration_blockers,
            msr_features,
            bits,
        }
    }

    /// All vendors, in map order.
    pub fn vendors(&self) -> &[Vendor] {
        &self.vendors
    }

    /// All features, in map order (indexed by [`FeatureId`]).
    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    /// All models, in map order (oldest first; indexed by [`ModelId`]).
    pub fn models(&self) -> &[Model] {
        &self.models
    }

    /// A vendor by id.
    pub fn vendor(&self, id: VendorId) -> &Vendor {
        &self.vendors[id.0 as usize]
    }

    /// A feature by id.
    pub fn feature(&self, id: FeatureId) -> &Feature {
        &self.features[id.index()]
    }

    /// A model by id.
    pub fn model(&self, id: ModelId) -> &Model {
        &self.models[id.0 as usize]
    }

    /// The name of a feature.
    pub fn feature_name(&self, id: FeatureId) -> &str {
        &self.features[id.index()].name
    }

    /// Features whose use blocks live migration (`migratable='no'`).
    pub fn migration_blockers(&self) -> &FeatureSet {
        &self.migration_blockers
    }

    /// Features defined by MSR bits.
    pub fn msr_features(&self) -> &FeatureSet {
        &self.msr_features
    }

    /// Finds a vendor by short name (exact, as libvirt compares vendors).
    pub fn find_vendor(&self, name: &str) -> Option<VendorId> {
        self.vendors
            .iter()
            .position(|v| v.name == name)
            .map(VendorId::from_index)
    }

    /// Finds the vendor whose CPUID string is `string`.
    pub fn find_vendor_by_string(&self, string: &[u8; 12]) -> Option<VendorId> {
        self.vendors
            .iter()
            .position(|v| &v.string == string)
            .map(VendorId::from_index)
    }

    /// Looks a feature up by name, ignoring case: a libvirt name, or else a
    /// Linux `/proc/cpuinfo` flag name, which stands for the feature whose
    /// CPUID bit it is ([`Database::find_linux_feature`]). A name libvirt
    /// defines always means libvirt's feature.
    ///
    /// # Errors
    /// [`UnknownName`] with the closest known names of both vocabularies.
    pub fn find_feature(&self, name: &str) -> Result<FeatureId, UnknownName> {
        if let Some(i) = self.feature_index(name) {
            return Ok(FeatureId(i));
        }
        self.find_linux_feature(name)
            .ok_or_else(|| self.unknown(NameKind::Feature, name))
    }

    /// Looks a feature up as libvirt does inside documents: exactly as
    /// spelled. A name that differs from a feature's only in case is
    /// refused like any unknown name, suggesting the map's spelling.
    ///
    /// # Errors
    /// [`UnknownName`] with the closest known names.
    pub fn resolve_feature(&self, name: &str) -> Result<FeatureId, UnknownName> {
        self.find_feature_exact(name)
            .ok_or_else(|| self.unknown_exact(NameKind::Feature, name))
    }

    /// Looks a model up as libvirt does inside documents: exactly as
    /// spelled (see [`resolve_feature`](Self::resolve_feature)).
    ///
    /// # Errors
    /// [`UnknownName`] with the closest known names.
    pub fn resolve_model(&self, name: &str) -> Result<ModelId, UnknownName> {
        self.find_model_exact(name)
            .ok_or_else(|| self.unknown_exact(NameKind::Model, name))
    }

    /// The error for a name not spelled exactly: when it is known but
    /// spelled in another case, the one suggestion is the map's spelling.
    fn unknown_exact(&self, kind: NameKind, name: &str) -> UnknownName {
        let canonical = match kind {
            NameKind::Feature => self
                .feature_index(name)
                .map(|i| self.features[i as usize].name.to_string()),
            NameKind::Model => self
                .model_index(name)
                .map(|i| self.models[i as usize].name.to_string()),
        };
        match canonical {
            Some(spelling) => UnknownName {
                kind,
                name: name.to_string(),
                suggestions: vec![spelling],
                note: None,
            },
            None => self.unknown_libvirt(kind, name),
        }
    }

    /// Looks a feature up by its exact canonical name.
    pub fn find_feature_exact(&self, name: &str) -> Option<FeatureId> {
        match self.feature_index(name) {
            Some(i) if self.features[i as usize].name == name => Some(FeatureId(i)),
            _ => self
                .features
                .iter()
                .position(|f| f.name == name)
                .map(FeatureId::from_index),
        }
    }

    /// Looks a feature up by an alias used by `source` (for example `qemu`).
    pub fn find_feature_alias(&self, name: &str, source: &str) -> Option<FeatureId> {
        self.features
            .iter()
            .position(|f| {
                f.aliases
                    .iter()
                    .any(|a| a.name == name && a.source == source)
            })
            .map(FeatureId::from_index)
    }

    /// Looks a model up by name, ignoring case.
    ///
    /// # Errors
    /// [`UnknownName`] with the closest known names.
    pub fn find_model(&self, name: &str) -> Result<ModelId, UnknownName> {
        self.model_index(name)
            .map(ModelId)
            .ok_or_else(|| self.unknown(NameKind::Model, name))
    }

    /// Looks a model up by its exact name.
    pub fn find_model_exact(&self, name: &str) -> Option<ModelId> {
        match self.model_index(name) {
            Some(i) if self.models[i as usize].name == name => Some(ModelId(i)),
            _ => self
                .models
                .iter()
                .position(|m| m.name == name)
                .map(ModelId::from_index),
        }
    }

    fn index(&self) -> &NameIndex {
        self.names.get_or_init(|| NameIndex {
            features: NameTable::new(self.features.iter().map(|f| f.name.as_ref())),
            models: NameTable::new(self.models.iter().map(|m| m.name.as_ref())),
        })
    }

    fn feature_index(&self, name: &str) -> Option<u16> {
        self.index()
            .features
            .get(name, |i| self.features[i].name.as_ref())
    }

    fn model_index(&self, name: &str) -> Option<u16> {
        self.index()
            .models
            .get(name, |i| self.models[i].name.as_ref())
    }

    /// The error for an unknown command-line name: the closest names of
    /// both vocabularies (libvirt's and, for features, Linux's), and why a
    /// Linux flag is no feature.
    fn unknown(&self, kind: NameKind, name: &str) -> UnknownName {
        let mut error = self.unknown_libvirt(kind, name);
        if kind == NameKind::Feature {
            let linux = self.linux_names();
            error.suggestions = closest(
                name,
                self.features
                    .iter()
                    .map(|f| f.name.as_ref())
                    .chain(linux.iter().copied()),
            );
            error.note = crate::linux::unmapped_flag_note(name);
        }
        error
    }

    /// The error for a name unknown to libvirt, inside a document (where
    /// only libvirt's names count): the closest libvirt names.
    fn unknown_libvirt(&self, kind: NameKind, name: &str) -> UnknownName {
        let suggestions = match kind {
            NameKind::Feature => closest(name, self.features.iter().map(|f| f.name.as_ref())),
            NameKind::Model => closest(name, self.models.iter().map(|m| m.name.as_ref())),
        };
        UnknownName {
            kind,
            name: name.to_string(),
            suggestions,
            note: None,
        }
    }

    /// Names of the features in `set`, in map order.
    pub fn feature_names<'a>(&'a self, set: &'a FeatureSet) -> impl Iterator<Item = &'a str> + 'a {
        set.iter().map(|id| self.feature_name(id))
    }

    /// The CPU data bits of every feature in `set`.
    pub fn features_to_data(&self, set: &FeatureSet) -> CpuData {
        let mut data = CpuData::new();
        for id in set.iter() {
            data.add_all(&self.feature(id).data);
        }
        data
    }

    /// Which features raw CPU data has.
    ///
    /// Returns `(full, partial)`: features all of whose bits are set, and
    /// features with at least one bit set (a superset of `full`).
    pub fn features_in_data(&self, data: &CpuData) -> (FeatureSet, FeatureSet) {
        let bits = &self.bits;
        // The data's registers at each key features use; zero where the data
        // has no such item, which no feature bit is in, as for a missing one.
        let mut stack = [[0u32; 4]; STACK_KEYS];
        let mut heap = Vec::new();
        let regs: &mut [[u32; 4]] = if bits.keys.len() <= STACK_KEYS {
            &mut stack[..bits.keys.len()]
        } else {
            heap.resize(bits.keys.len(), [0u32; 4]);
            &mut heap
        };
        let mut items = data.items().iter().peekable();
        for (key, r) in bits.keys.iter().zip(regs.iter_mut()) {
            while items.next_if(|i| i.key < *key).is_some() {}
            if let Some(item) = items.next_if(|i| i.key == *key) {
                *r = item.regs;
            }
        }
        let mut full = FeatureSet::new();
        let mut partial = FeatureSet::new();
        let mut start = 0;
        for (i, &end) in bits.ends.iter().enumerate() {
            let masks = &bits.masks[start..end as usize];
            start = end as usize;
            // As `data.contains(&f.data)` and `data.intersects(&f.data)`.
            let (mut all, mut any) = (true, false);
            for (k, m) in masks {
                let r = &regs[*k as usize];
                for w in 0..4 {
                    all &= r[w] & m[w] == m[w];
                    any |= r[w] & m[w] != 0;
                }
            }
            let id = FeatureId::from_index(i);
            if all {
                full.insert(id);
                partial.insert(id);
            } else if any {
                partial.insert(id);
            }
        }
        (full, partial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_in_data_tests_each_feature_as_cpu_data_does() {
        let db = Database::embedded();
        // xorshift64: sparse, dense and missing values at every feature key,
        // and at keys no feature uses.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut keys: Vec<ItemKey> = db
            .features()
            .iter()
            .flat_map(|f| f.data.items().iter().map(|i| i.key))
            .collect();
        keys.extend([
            ItemKey::cpuid(0x4000_0000, 0),
            ItemKey::cpuid(2, 0),
            ItemKey::Msr { index: 1 },
        ]);
        for round in 0..200 {
            let mut data = CpuData::new();
            for key in &keys {
                let r = next();
                if r % 5 == 0 {
                    continue;
                }
                let mut regs = [0u32; 4];
                for reg in &mut regs {
                    // cast: random bits.
                    #[allow(clippy::cast_possible_truncation)]
                    let mut next32 = || next() as u32;
                    let v = next32();
                    *reg = match round % 3 {
                        0 => v,
                        1 => v | next32(),
                        _ => v & next32(),
                    };
                }
                data.add(Item { key: *key, regs });
            }
            let (mut full, mut partial) = (FeatureSet::new(), FeatureSet::new());
            for (i, f) in db.features().iter().enumerate() {
                let id = FeatureId::from_index(i);
                if data.contains(&f.data) {
                    full.insert(id);
                    partial.insert(id);
                } else if data.intersects(&f.data) {
                    partial.insert(id);
                }
            }
            assert_eq!(db.features_in_data(&data), (full, partial), "round {round}");
        }
        assert_eq!(
            db.features_in_data(&CpuData::new()),
            (FeatureSet::new(), FeatureSet::new())
        );
    }

    #[test]
    fn name_tables_ignore_ascii_case_and_keep_the_first_of_equal_names() {
        let names = [
            "fpu",
            "FPU",
            "Skylake-Server-noTSX-IBRS",
            "skylake-server-notsx-ibrs",
            "a",
            "",
            "é-x",
            "avx512-vp2intersect",
            "@",
            "`",
        ];
        let table = NameTable::new(names.iter().copied());
        let get = |name: &str| table.get(name, |i| names[i]);
        assert_eq!(get("fpu"), Some(0));
        assert_eq!(get("Fpu"), Some(0));
        assert_eq!(get("SKYLAKE-server-NOTSX-ibrs"), Some(2));
        assert_eq!(get("A"), Some(4));
        assert_eq!(get(""), Some(5));
        assert_eq!(get("é-X"), Some(6));
        assert_eq!(get("É-x"), None);
        assert_eq!(get("AVX512-VP2INTERSECT"), Some(7));
        // '@' and '`' hash alike but are different names.
        assert_eq!(get("@"), Some(8));
        assert_eq!(get("`"), Some(9));
        assert_eq!(get("fpu "), None);
        assert_eq!(get("avx512-vp2intersec"), None);
    }
}
