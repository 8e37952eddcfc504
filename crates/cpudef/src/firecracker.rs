//! Firecracker's CPU documents: a custom CPU template, and the fingerprint
//! of `cpu-template-helper fingerprint dump`.
//!
//! A custom template is `{"kvm_capabilities": [...], "cpuid_modifiers":
//! [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [{"register":
//! "ecx", "bitmap": "0bxx...01"}]}], "msr_modifiers": [{"addr": "0x10a",
//! "bitmap": "0b..."}]}`: each bitmap character clears (`0`), sets (`1`) or
//! leaves (`x`) one bit, most significant first, `_` separates, and a short
//! bitmap leaves its missing high bits. `cpu-template-helper template dump`
//! writes the same shape with every bit fixed, and a fingerprint holds it as
//! `guest_cpu_config` beside the host's versions.
//!
//! A template says nothing about the bits it leaves: they are the host's.
//! So a template reads as [`ShownData`]: the bits it sets, and the bits it
//! fixes either way; every feature with a left bit is undetermined.

use std::fmt;

use cpumodel_cpudata::{CpuData, Item, ItemKey};
use serde::Deserialize;

use crate::linux::ShownData;

/// A Firecracker document that cannot be read: the file and what is wrong,
/// naming the leaf and register (or MSR) of a bad bitmap.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct FirecrackerError {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FirecrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// Which Firecracker document a JSON object is, from its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirecrackerDocument {
    /// A custom CPU template (or a `template dump`).
    Template,
    /// A `fingerprint dump`.
    Fingerprint,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Template {
    #[serde(default)]
    #[allow(dead_code)]
    kvm_capabilities: Vec<String>,
    #[serde(default)]
    cpuid_modifiers: Vec<LeafModifier>,
    #[serde(default)]
    msr_modifiers: Vec<MsrModifier>,
    #[serde(default)]
    vcpu_features: Option<serde_json::Value>,
    #[serde(default)]
    reg_modifiers: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeafModifier {
    leaf: String,
    subleaf: String,
    #[allow(dead_code)]
    flags: u32,
    modifiers: Vec<RegisterModifier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterModifier {
    register: String,
    bitmap: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MsrModifier {
    addr: String,
    bitmap: String,
}

#[derive(Deserialize)]
struct Fingerprint {
    guest_cpu_config: Template,
}

/// The top-level keys of a JSON object that make it a Firecracker
/// document, `None` for any other JSON.
pub fn detect_firecracker(keys: &[String]) -> Option<FirecrackerDocument> {
    let has = |k: &str| keys.iter().any(|key| key == k);
    if has("guest_cpu_config") {
        Some(FirecrackerDocument::Fingerprint)
    } else if has("cpuid_modifiers") || has("msr_modifiers") || has("reg_modifiers") {
        Some(FirecrackerDocument::Template)
    } else {
        None
    }
}

/// A number written as Firecracker writes it: `0x` hexadecimal or `0b`
/// binary.
fn number(text: &str) -> Option<u64> {
    if let Some(hex) = text.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(bin) = text.strip_prefix("0b") {
        u64::from_str_radix(bin, 2).ok()
    } else {
        None
    }
}

/// A bitmap of `width` bits: `(fixed, set)` masks, or what is wrong.
fn bitmap(text: &str, width: u32) -> Result<(u64, u64), String> {
    let body = text.strip_prefix("0b").unwrap_or(text);
    let (mut fixed, mut set) = (0u64, 0u64);
    let mut i = 0;
    for c in body.bytes().rev() {
        if c == b'_' {
            continue;
        }
        if i == width {
            return Err(format!("bitmap '{text}' has more than {width} bits"));
        }
        match c {
            b'x' => {}
            b'0' => fixed |= 1 << i,
            b'1' => {
                fixed |= 1 << i;
                set |= 1 << i;
            }
            other => {
                return Err(format!(
                    "bitmap '{text}' holds '{}'; only 0, 1, x and _ are allowed",
                    char::from(other).escape_default()
                ))
            }
        }
        i += 1;
    }
    Ok((fixed, set))
}

/// Reads a Firecracker template or fingerprint as the bits it fixes.
///
/// # Errors
/// Invalid JSON or an unknown field, an aarch64 template, a leaf, subleaf
/// or MSR address that is not a `0x`/`0b` number, an unknown register, and
/// a malformed bitmap (naming its leaf and register, or its MSR).
pub fn parse_firecracker(
    file: &str,
    text: &str,
    kind: FirecrackerDocument,
) -> Result<ShownData, FirecrackerError> {
    let error = |message: String| FirecrackerError {
        file: file.to_string(),
        message,
    };
    let json = |e: serde_json::Error| {
        error(format!(
            "Firecracker {}: {e}",
            match kind {
                FirecrackerDocument::Template => "CPU template",
                FirecrackerDocument::Fingerprint => "fingerprint",
            }
        ))
    };
    let template = match kind {
        FirecrackerDocument::Template => serde_json::from_str::<Template>(text).map_err(json)?,
        FirecrackerDocument::Fingerprint => {
            serde_json::from_str::<Fingerprint>(text)
                .map_err(json)?
                .guest_cpu_config
        }
    };
    if template.cpuid_modifiers.is_empty()
        && (template.reg_modifiers.is_some() || template.vcpu_features.is_some())
    {
        return Err(error(
            "an aarch64 Firecracker template (reg_modifiers): only x86 CPUs have these features"
                .into(),
        ));
    }
    let mut out = ShownData {
        data: CpuData::new(),
        shown: CpuData::new(),
        unknown_flags: Vec::new(),
        source: "Firecracker template",
    };
    for leaf in &template.cpuid_modifiers {
        let id = |s: &str, what: &str| {
            number(s)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| error(format!("{what} '{s}' is not a 0x or 0b number")))
        };
        let (l, sub) = (id(&leaf.leaf, "leaf")?, id(&leaf.subleaf, "subleaf")?);
        for m in &leaf.modifiers {
            let reg = ["eax", "ebx", "ecx", "edx"]
                .iter()
                .position(|r| *r == m.register)
                .ok_or_else(|| {
                    error(format!(
                        "leaf {} subleaf {}: unknown register '{}' (expected eax, ebx, ecx or edx)",
                        leaf.leaf, leaf.subleaf, m.register
                    ))
                })?;
            let (fixed, set) = bitmap(&m.bitmap, 32).map_err(|e| {
                error(format!(
                    "leaf {} subleaf {} register {}: {e}",
                    leaf.leaf, leaf.subleaf, m.register
                ))
            })?;
            let regs = |value: u64| {
                let mut r = [0u32; 4];
                // cast: a 32-bit bitmap.
                #[allow(clippy::cast_possible_truncation)]
                {
                    r[reg] = value as u32;
                }
                Item {
                    key: ItemKey::cpuid(l, sub),
                    regs: r,
                }
            };
            out.data.add(regs(set));
            out.shown.add(regs(fixed));
        }
    }
    for msr in &template.msr_modifiers {
        let index = number(&msr.addr)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| error(format!("MSR '{}' is not a 0x or 0b number", msr.addr)))?;
        let (fixed, set) =
            bitmap(&msr.bitmap, 64).map_err(|e| error(format!("MSR {}: {e}", msr.addr)))?;
        out.data.add(Item::msr_value(index, set));
        out.shown.add(Item::msr_value(index, fixed));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"{"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0,
        "modifiers": [{"register": "ecx", "bitmap": "0bxxx1_0xxxxxxxxxxxxxxxxxxxxxxxxxxx"}]}],
        "msr_modifiers": [{"addr": "0x10a", "bitmap": "0b1x"}]}"#;

    #[test]
    fn bits_set_and_fixed_by_a_template() {
        let d = parse_firecracker("t.json", TEMPLATE, FirecrackerDocument::Template).unwrap();
        let leaf1 = d.data.get(ItemKey::cpuid(1, 0)).unwrap().regs;
        assert_eq!(leaf1[2], 1 << 28);
        assert_eq!(d.shown.get(ItemKey::cpuid(1, 0)).unwrap().regs[2], 3 << 27);
        let msr = d.data.get(ItemKey::Msr { index: 0x10a }).unwrap().regs;
        assert_eq!(msr, [2, 0, 0, 0]);
        assert_eq!(
            d.shown.get(ItemKey::Msr { index: 0x10a }).unwrap().regs,
            [2, 0, 0, 0]
        );
        let fingerprint = format!(
            r#"{{"firecracker_version": "1.0", "kernel_version": "6.1", "guest_cpu_config": {TEMPLATE}}}"#
        );
        let f =
            parse_firecracker("f.json", &fingerprint, FirecrackerDocument::Fingerprint).unwrap();
        assert_eq!(f.data, d.data);
    }

    #[test]
    fn a_bad_bitmap_names_leaf_and_register() {
        let bad = TEMPLATE.replace("0bxxx1_0", "0bxxx2_0");
        assert_eq!(
            parse_firecracker("t.json", &bad, FirecrackerDocument::Template)
                .unwrap_err()
                .to_string(),
            "t.json: leaf 0x1 subleaf 0x0 register ecx: bitmap '0bxxx2_0xxxxxxxxxxxxxxxxxxxxxxxxxxx' holds '2'; only 0, 1, x and _ are allowed"
        );
        let long = TEMPLATE.replace("0bxxx1_0", "0b00xxx1_0");
        assert_eq!(
            parse_firecracker("t.json", &long, FirecrackerDocument::Template)
                .unwrap_err()
                .to_string(),
            "t.json: leaf 0x1 subleaf 0x0 register ecx: bitmap '0b00xxx1_0xxxxxxxxxxxxxxxxxxxxxxxxxxx' has more than 32 bits"
        );
        let leaf = TEMPLATE.replace("\"0x1\"", "\"1\"");
        assert_eq!(
            parse_firecracker("t.json", &leaf, FirecrackerDocument::Template)
                .unwrap_err()
                .to_string(),
            "t.json: leaf '1' is not a 0x or 0b number"
        );
    }
}
