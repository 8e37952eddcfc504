//! A Firecracker custom CPU template (`cpuid_modifiers`).
//!
//! Firecracker starts from the host's CPUID as KVM offers it, applies the
//! template's bitmaps (`0`/`1` set a bit, `x` leaves the host's), then
//! normalizes topology, cache, APIC ID and brand string leaves itself. So
//! the template pins what identifies the model and nothing else:
//!
//! - every bit of every CPUID feature the CPU map defines, set when the
//!   model has the feature and cleared when it does not (so host features
//!   outside the model are hidden);
//! - the signature fields of CPUID.1:EAX (stepping, model, family and their
//!   extended fields);
//! - the XSAVE component bits of CPUID.(EAX=0xD,ECX=0):EAX from AVX up.
//!
//! Bits the processor changes at run time (OSXSAVE, OSPKE) stay `x`.
//! Firecracker rejects a modifier for a leaf the host does not have, so a
//! leaf is only included when the model sets one of its bits or when it is
//! one of the feature leaves every x86-64 host has (0x1, 0x6, 0x7.0, 0x7.1,
//! 0xD.0, 0xD.1, 0x80000001, 0x80000007, 0x80000008).

use std::collections::BTreeMap;

use cpumodel_cpudata::{CpuidKey, ItemKey, Register};
use cpumodel_map::Database;

use crate::build::{feature, RUNTIME_FEATURES};
use crate::table::{dynamic_mask, kvm_flags, CpuidTable};
use crate::xsave;

/// Leaves always present on the hosts Firecracker runs on.
const ALWAYS_PRESENT: &[CpuidKey] = &[
    CpuidKey::leaf(0x1),
    CpuidKey::leaf(0x6),
    CpuidKey::new(0x7, 0),
    CpuidKey::new(0x7, 1),
    CpuidKey::new(0xd, 0),
    CpuidKey::new(0xd, 1),
    CpuidKey::leaf(0x8000_0001),
    CpuidKey::leaf(0x8000_0007),
    CpuidKey::leaf(0x8000_0008),
];

/// The bits a template sets, per leaf and subleaf and register.
fn determined_bits(db: &Database) -> BTreeMap<CpuidKey, [u32; 4]> {
    let runtime: Vec<_> = RUNTIME_FEATURES
        .iter()
        .filter_map(|n| feature(db, n))
        .collect();
    let mut bits: BTreeMap<CpuidKey, [u32; 4]> = BTreeMap::new();
    for (i, f) in db.features().iter().enumerate() {
        if runtime.iter().any(|r| r.index() == i) {
            continue;
        }
        for item in f.data.nonzero_items() {
            if let ItemKey::Cpuid(key) = item.key {
                let e = bits.entry(key).or_default();
                for (a, b) in e.iter_mut().zip(item.regs) {
                    *a |= b;
                }
            }
        }
    }
    bits.entry(CpuidKey::leaf(0x1)).or_default()[0] |= cpumodel_cpudata::SIGNATURE_MASK;
    bits.entry(CpuidKey::leaf(0xd)).or_default()[0] |=
        xsave::halves(xsave::known_mask() & !0b11)[0];
    for (key, regs) in bits.iter_mut() {
        for (r, d) in regs.iter_mut().zip(dynamic_mask(*key)) {
            *r &= !d;
        }
    }
    bits
}

/// `0b` and 32 characters, bit 31 first: `1`/`0` where `mask` has the bit,
/// `x` elsewhere.
pub fn bitmap(value: u32, mask: u32) -> String {
    let mut s = String::with_capacity(34);
    s.push_str("0b");
    for bit in (0..32).rev() {
        s.push(if mask & (1 << bit) == 0 {
            'x'
        } else if value & (1 << bit) != 0 {
            '1'
        } else {
            '0'
        });
    }
    s
}

/// The template document, fields in Firecracker's documented order.
#[derive(serde::Serialize)]
struct Template {
    cpuid_modifiers: Vec<LeafModifier>,
}

#[derive(serde::Serialize)]
struct LeafModifier {
    leaf: String,
    subleaf: String,
    flags: u32,
    modifiers: Vec<RegisterModifier>,
}

#[derive(serde::Serialize)]
struct RegisterModifier {
    register: &'static str,
    bitmap: String,
}

/// The template for `table` (built with `db`), as pretty-printed JSON.
pub fn to_firecracker(db: &Database, table: &CpuidTable) -> String {
    let determined = determined_bits(db);
    let mut leaves = Vec::new();
    for e in &table.entries {
        let Some(mask) = determined.get(&e.key) else {
            continue;
        };
        let regs = e.regs();
        let sets_a_bit = regs.iter().zip(mask).any(|(v, m)| v & m != 0);
        if !sets_a_bit && !ALWAYS_PRESENT.contains(&e.key) {
            continue;
        }
        let modifiers = Register::ALL
            .into_iter()
            .filter(|r| mask[r.index()] != 0)
            .map(|r| RegisterModifier {
                register: r.name(),
                bitmap: bitmap(regs[r.index()], mask[r.index()]),
            })
            .collect();
        leaves.push(LeafModifier {
            leaf: format!("{:#x}", e.key.leaf),
            subleaf: format!("{:#x}", e.key.subleaf),
            flags: kvm_flags(e.key),
            modifiers,
        });
    }
    let mut s = serde_json::to_string_pretty(&Template {
        cpuid_modifiers: leaves,
    })
    .expect("the template always serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps_mark_undetermined_bits_x() {
        assert_eq!(
            bitmap(0x0005_06e3, 0x0fff_3fff),
            "0bxxxx000000000101xx00011011100011"
        );
        assert_eq!(bitmap(0, 0), format!("0b{}", "x".repeat(32)));
    }
}

#[cfg(test)]
mod golden {
    use cpumodel_map::Database;

    use super::*;
    use crate::{build, CpuidSpec, Topology};

    #[test]
    fn template_of_a_486() {
        let db = Database::embedded();
        let spec = CpuidSpec::new(&db, db.find_model("486").unwrap(), Topology::SINGLE).unwrap();
        let table = build(&db, &spec).unwrap();
        assert_eq!(
            to_firecracker(&db, &table),
            r#"{
  "cpuid_modifiers": [
    {
      "leaf": "0x1",
      "subleaf": "0x0",
      "flags": 0,
      "modifiers": [
        {
          "register": "eax",
          "bitmap": "0bxxxx000000000000xx00010010000000"
        },
        {
          "register": "ecx",
          "bitmap": "0b1000x0000000000x0000x00000000000"
        },
        {
          "register": "edx",
          "bitmap": "0b00000000000x000000000xx000001011"
        }
      ]
    }
  ]
}
"#
        );
    }

    #[test]
    fn epyc_rome_template_pins_amd_feature_leaves() {
        let db = Database::embedded();
        let spec =
            CpuidSpec::new(&db, db.find_model("EPYC-Rome").unwrap(), Topology::SINGLE).unwrap();
        let t = to_firecracker(&db, &build(&db, &spec).unwrap());
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        let leaves: Vec<(&str, &str)> = v["cpuid_modifiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["leaf"].as_str().unwrap(), l["subleaf"].as_str().unwrap()))
            .collect();
        assert_eq!(
            leaves,
            [
                ("0x1", "0x0"),
                ("0x6", "0x0"),
                ("0x7", "0x0"),
                ("0x7", "0x1"),
                ("0xd", "0x0"),
                ("0xd", "0x1"),
                ("0x80000001", "0x0"),
                ("0x80000007", "0x0"),
                ("0x80000008", "0x0"),
                ("0x8000000a", "0x0"),
            ]
        );
    }
}
