//! Linux's views of a CPU: `/proc/cpuinfo` and `lscpu` (text or `--json`).
//!
//! Both show the kernel's feature flags by name, with the vendor string and
//! the family, model and stepping. The flags become CPUID bits through the
//! kernel's own table ([`cpumodel_map::find_linux_flag`]), so a flags line
//! decodes like a CPUID dump, with one difference that matters: it shows only
//! the bits Linux has a visible flag for. Everything else (bits Linux hides
//! or does not know, its synthetic flags, every MSR feature) is neither
//! present nor absent, and [`ShownData::shown`] says which bits were seen, so
//! a decode can name what it could not determine instead of guessing.
//!
//! Only the first processor of a `/proc/cpuinfo` is read: Linux lists the
//! flags the boot processor and every other share.

use std::fmt;

use cpumodel_cpudata::{vendor_to_regs, CpuData, Item, Signature};
use cpumodel_map::{bit_item, find_linux_flag};

/// CPU data from a source that shows only some bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShownData {
    /// The bits the source shows set, with CPUID leaf 0 (vendor) and leaf 1
    /// EAX (signature) when it names them.
    pub data: CpuData,
    /// Every bit the source says something about, set or clear.
    pub shown: CpuData,
    /// Flag names the kernel table does not know (a newer kernel's), left
    /// out of the data.
    pub unknown_flags: Vec<String>,
    /// What the source is (`/proc/cpuinfo`, `lscpu`, ...), for notes.
    pub source: &'static str,
}

/// A `/proc/cpuinfo` or `lscpu` output that cannot be read: the file, the
/// line (0 for the whole file) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LinuxInputError {
    /// The file.
    pub file: String,
    /// 1-based line, 0 when the problem is the whole document.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LinuxInputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// Which Linux text a document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinuxText {
    /// `/proc/cpuinfo` (or just its `flags` line).
    CpuInfo,
    /// `lscpu` output.
    Lscpu,
}

/// Keys `lscpu` prints (its labels end in a colon, capitalised).
const LSCPU_KEYS: &[&str] = &[
    "Architecture",
    "Flags",
    "Vendor ID",
    "CPU family",
    "Model name",
];
/// Keys `/proc/cpuinfo` prints.
const CPUINFO_KEYS: &[&str] = &["processor", "vendor_id", "flags", "cpu family"];

/// `key: value` of a line, both trimmed.
fn key_value(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.split_once(':')?;
    Some((k.trim(), v.trim()))
}

/// Whether `text` is Linux text, and which: detected from its keys. Never
/// true for XML or JSON.
pub fn detect_linux_text(text: &str) -> Option<LinuxText> {
    let body = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    if body.starts_with('<') || body.starts_with('{') || body.starts_with('[') {
        return None;
    }
    let keys = || body.lines().take(400).filter_map(key_value).map(|(k, _)| k);
    if keys().any(|k| LSCPU_KEYS.contains(&k)) {
        return Some(LinuxText::Lscpu);
    }
    if keys().any(|k| CPUINFO_KEYS.contains(&k)) {
        return Some(LinuxText::CpuInfo);
    }
    None
}

/// What both texts give: fields by name, each with its line.
struct Fields<'t> {
    file: &'t str,
    fields: Vec<(&'t str, &'t str, usize)>,
}

impl<'t> Fields<'t> {
    fn get(&self, key: &str) -> Option<(&'t str, usize)> {
        self.fields
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, v, l)| (*v, *l))
    }

    fn error(&self, line: usize, message: impl Into<String>) -> LinuxInputError {
        LinuxInputError {
            file: self.file.to_string(),
            line,
            message: message.into(),
        }
    }

    /// A decimal field, when present.
    fn number(&self, key: &str) -> Result<Option<u32>, LinuxInputError> {
        match self.get(key) {
            None => Ok(None),
            Some((v, line)) => v.parse().map(Some).map_err(|_| {
                self.error(line, format!("'{key}' is '{v}', expected a decimal number"))
            }),
        }
    }

    /// The data of a flags line, with vendor and signature; `sizes` is the
    /// key of the address sizes line.
    fn data(
        &self,
        flags: (&str, usize),
        vendor: &str,
        sig: [&str; 3],
        sizes: &str,
        source: &'static str,
    ) -> Result<ShownData, LinuxInputError> {
        let mut out = ShownData {
            data: CpuData::new(),
            shown: cpumodel_map::linux_shown_bits().clone(),
            unknown_flags: Vec::new(),
            source,
        };
        for name in flags.0.split_whitespace() {
            match find_linux_flag(name) {
                Some(flag) => {
                    if let Some(bit) = flag.cpuid_bit() {
                        out.data.add(bit_item(bit));
                    }
                }
                None => out.unknown_flags.push(name.to_string()),
            }
        }
        // Linux shows `la57` only when it runs with 5-level paging, but the
        // address sizes line shows the CPU's linear address width
        // (CPUID.80000008H:EAX[15:8]), which is 57 exactly when the CPU
        // has LA57.
        // Without that line, a missing `la57` says nothing.
        if let Some(bit) = find_linux_flag("la57").and_then(|f| f.cpuid_bit()) {
            let item: CpuData = std::iter::once(bit_item(bit)).collect();
            match self.get(sizes).and_then(|(v, _)| virtual_bits(v)) {
                Some(virt) if virt >= 57 => out.data.add_all(&item),
                Some(_) => out.data.subtract(&item),
                None if !out.data.contains(&item) => out.shown.subtract(&item),
                None => {}
            }
        }
        if let Some((v, line)) = self.get(vendor) {
            let bytes: [u8; 12] = v.as_bytes().try_into().map_err(|_| {
                self.error(
                    line,
                    format!("vendor '{v}' is not a 12-character CPUID vendor string"),
                )
            })?;
            let [ebx, edx, ecx] = vendor_to_regs(&bytes);
            out.data.add(Item::cpuid(0, 0, 0, ebx, ecx, edx));
        }
        if let (Some(family), Some(model)) = (self.number(sig[0])?, self.number(sig[1])?) {
            let stepping = self.number(sig[2])?.unwrap_or(0);
            let eax = Signature {
                family,
                model,
                stepping,
            }
            .to_eax();
            out.data.add(Item::cpuid(1, 0, eax, 0, 0, 0));
        }
        Ok(out)
    }
}

/// The virtual bits of an address sizes value (`46 bits physical, 57 bits
/// virtual`).
fn virtual_bits(value: &str) -> Option<u32> {
    let (_, virt) = value.split_once(',')?;
    virt.trim()
        .strip_suffix("bits virtual")?
        .trim()
        .parse()
        .ok()
}

/// Reads a `/proc/cpuinfo` (its first processor) or just a `flags` line.
///
/// # Errors
/// No `flags` line in the first processor (the `/proc/cpuinfo` of another
/// architecture has none), a vendor string that is not 12 characters, a
/// family, model or stepping that is not a number.
pub fn parse_proc_cpuinfo(file: &str, text: &str) -> Result<ShownData, LinuxInputError> {
    let mut fields = Fields {
        file,
        fields: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if fields.fields.is_empty() {
                continue;
            }
            break;
        }
        if let Some((k, v)) = key_value(line) {
            fields.fields.push((k, v, i + 1));
        }
    }
    let flags = fields.get("flags").ok_or_else(|| {
        let what = if fields.get("Features").is_some() {
            " (it lists 'Features': the /proc/cpuinfo of another architecture)"
        } else {
            ""
        };
        fields.error(
            0,
            format!("/proc/cpuinfo has no 'flags' line in its first processor{what}"),
        )
    })?;
    fields.data(
        flags,
        "vendor_id",
        ["cpu family", "model", "stepping"],
        "address sizes",
        "/proc/cpuinfo",
    )
}

/// Reads `lscpu` output (text).
///
/// # Errors
/// An architecture other than x86, no `Flags` line, and what
/// [`parse_proc_cpuinfo`] refuses in the vendor and signature.
pub fn parse_lscpu(file: &str, text: &str) -> Result<ShownData, LinuxInputError> {
    let fields = Fields {
        file,
        fields: text
            .lines()
            .enumerate()
            .filter_map(|(i, l)| key_value(l).map(|(k, v)| (k, v, i + 1)))
            .collect(),
    };
    lscpu_data(&fields)
}

/// Reads `lscpu --json` output: `{"lscpu": [{"field": "Flags:", "data":
/// "..."}, ...]}`, entries possibly nested under `children` (newer
/// util-linux groups them by section).
///
/// # Errors
/// Invalid JSON or another shape, and what [`parse_lscpu`] refuses.
pub fn parse_lscpu_json(file: &str, text: &str) -> Result<ShownData, LinuxInputError> {
    #[derive(serde::Deserialize)]
    struct Doc {
        lscpu: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        field: String,
        data: Option<String>,
        #[serde(default)]
        children: Vec<Entry>,
    }
    let doc: Doc = serde_json::from_str(text).map_err(|e| LinuxInputError {
        file: file.to_string(),
        line: e.line(),
        message: format!("lscpu --json: {e}"),
    })?;
    fn flatten(entries: &[Entry], out: &mut Vec<(String, String, usize)>) {
        for e in entries {
            let key = e.field.trim().trim_end_matches(':').to_string();
            out.push((key, e.data.clone().unwrap_or_default(), 0));
            flatten(&e.children, out);
        }
    }
    let mut owned = Vec::new();
    flatten(&doc.lscpu, &mut owned);
    let fields = Fields {
        file,
        fields: owned
            .iter()
            .map(|(k, v, l)| (k.as_str(), v.as_str(), *l))
            .collect(),
    };
    lscpu_data(&fields)
}

fn lscpu_data(fields: &Fields<'_>) -> Result<ShownData, LinuxInputError> {
    if let Some((arch, line)) = fields.get("Architecture") {
        if !matches!(arch, "x86_64" | "i686" | "i586" | "i386") {
            return Err(fields.error(
                line,
                format!("lscpu of architecture '{arch}': only x86 CPUs have these features"),
            ));
        }
    }
    let flags = fields
        .get("Flags")
        .ok_or_else(|| fields.error(0, "lscpu output has no 'Flags' line"))?;
    fields.data(
        flags,
        "Vendor ID",
        ["CPU family", "Model", "Stepping"],
        "Address sizes",
        "lscpu",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpumodel_cpudata::ItemKey;

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\
        model\t\t: 85\nmodel name\t: Intel(R) Xeon(R)\nstepping\t: 4\n\
        flags\t\t: fpu sse2 tsc_deadline_timer constant_tsc avx512_vnni brand_new_flag\n\n\
        processor\t: 1\nflags\t\t: fpu\n";

    #[test]
    fn cpuinfo_gives_vendor_signature_and_flag_bits() {
        assert_eq!(detect_linux_text(CPUINFO), Some(LinuxText::CpuInfo));
        let d = parse_proc_cpuinfo("c", CPUINFO).unwrap();
        assert_eq!(&d.data.vendor_string().unwrap(), b"GenuineIntel");
        let sig = Signature::from_eax(d.data.signature());
        assert_eq!((sig.family, sig.model, sig.stepping), (6, 85, 4));
        // fpu and sse2 in 1.EDX, tsc_deadline_timer in 1.ECX; constant_tsc
        // is Linux's own bit and adds nothing.
        let leaf1 = d.data.get(ItemKey::cpuid(1, 0)).unwrap().regs;
        assert_eq!(leaf1[3], 1 | 1 << 26);
        assert_eq!(leaf1[2], 1 << 24);
        assert_eq!(d.data.get(ItemKey::cpuid(7, 0)).unwrap().regs[2], 1 << 11);
        assert_eq!(d.unknown_flags, ["brand_new_flag"]);
        // Only the first processor is read.
        // The address sizes line shows LA57, which the flag shows only in use.
        let la57 = |text: &str| {
            parse_proc_cpuinfo("c", text)
                .unwrap()
                .data
                .get(ItemKey::cpuid(7, 0))
                .is_some_and(|i| i.regs[2] & 1 << 16 != 0)
        };
        assert!(la57(
            "flags : fpu\naddress sizes : 46 bits physical, 57 bits virtual\n"
        ));
        assert!(!la57(
            "flags : la57\naddress sizes : 46 bits physical, 48 bits virtual\n"
        ));
        assert!(la57("flags : la57\n"));
        let one = parse_proc_cpuinfo("c", "flags : fpu\n").unwrap();
        assert_eq!(one.data.get(ItemKey::cpuid(1, 0)).unwrap().regs[3], 1);
        assert_eq!(one.data.vendor_string(), None);
    }

    #[test]
    fn lscpu_text_and_json_read_the_same() {
        let text = "Architecture:  x86_64\nVendor ID:     AuthenticAMD\nCPU family:    25\n\
                    Model:         17\nStepping:      1\nFlags:         fpu avx2\n";
        assert_eq!(detect_linux_text(text), Some(LinuxText::Lscpu));
        let json = r#"{"lscpu": [{"field": "Architecture:", "data": "x86_64"},
            {"field": "Vendor ID:", "data": "AuthenticAMD", "children": [
              {"field": "CPU family:", "data": "25"}, {"field": "Model:", "data": "17"},
              {"field": "Stepping:", "data": "1"}, {"field": "Flags:", "data": "fpu avx2"}]}]}"#;
        let a = parse_lscpu("l", text).unwrap();
        let b = parse_lscpu_json("l", json).unwrap();
        assert_eq!(a.data, b.data);
        assert_eq!(Signature::from_eax(a.data.signature()).family, 25);
    }

    #[test]
    fn errors_are_one_line_with_the_place() {
        assert_eq!(
            parse_proc_cpuinfo("c", "processor : 0\nvendor_id : GenuineIntel\n")
                .unwrap_err()
                .to_string(),
            "c: /proc/cpuinfo has no 'flags' line in its first processor"
        );
        assert_eq!(
            parse_proc_cpuinfo("c", "processor : 0\nFeatures : fp asimd\n")
                .unwrap_err()
                .to_string(),
            "c: /proc/cpuinfo has no 'flags' line in its first processor (it lists 'Features': the /proc/cpuinfo of another architecture)"
        );
        assert_eq!(
            parse_lscpu("l", "Architecture: aarch64\nFlags: fp asimd\n")
                .unwrap_err()
                .to_string(),
            "l:1: lscpu of architecture 'aarch64': only x86 CPUs have these features"
        );
        assert_eq!(
            parse_proc_cpuinfo("c", "vendor_id : Intel\nflags : fpu\n")
                .unwrap_err()
                .to_string(),
            "c:1: vendor 'Intel' is not a 12-character CPUID vendor string"
        );
        assert_eq!(
            parse_proc_cpuinfo("c", "cpu family : six\nmodel : 1\nflags : fpu\n")
                .unwrap_err()
                .to_string(),
            "c:1: 'cpu family' is 'six', expected a decimal number"
        );
        assert_eq!(detect_linux_text("<cpu/>"), None);
        assert_eq!(detect_linux_text("hello\n"), None);
    }
}
