//! QEMU's own account of what it could not give the guest.
//!
//! When the accelerator cannot provide a feature the `-cpu` argument asks
//! for, QEMU removes it and says so on stderr, one warning per bit:
//!
//! ```text
//! qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.x2apic [bit 21]
//! qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.07H:EBX.hle [bit 4]
//! ```
//!
//! (`CPUID.07H_01H:EAX...` when the leaf has subleaves, `MSR(10AH)...`
//! for feature MSRs.) The probe reads these lines so that a feature QEMU
//! announced it filtered is reported as such, and every difference QEMU
//! did not announce stays a difference.

use cpumodel_cpudata::{CpuidBit, CpuidKey, ItemKey, Register};
use cpumodel_map::Database;
use serde::Serialize;

/// Who could not give the feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilteredBy {
    /// "TCG doesn't support requested feature".
    Tcg,
    /// "host doesn't support requested feature" (KVM, HVF, WHPX).
    Host,
}

/// One feature QEMU said it removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FilteredFeature {
    /// Who could not give it.
    pub by: FilteredBy,
    /// QEMU's name for it (empty when QEMU names only the bit).
    pub qemu_name: String,
    /// The CPUID bit; `None` for a feature MSR bit.
    #[serde(skip)]
    pub bit: Option<CpuidBit>,
    /// QEMU's description of where it lives (`CPUID.01H:ECX`, `MSR(10AH)`).
    pub place: String,
    /// The bit number QEMU gave.
    pub bit_number: u32,
}

/// What QEMU said on stderr, sorted: the features it filtered, and every
/// other line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QemuWarnings {
    /// Features QEMU removed, in the order it named them.
    pub filtered: Vec<FilteredFeature>,
    /// Every other non-empty line, without QEMU's program-name prefix.
    pub other: Vec<String>,
}

const TCG: &str = "TCG doesn't support requested feature: ";
const HOST: &str = "host doesn't support requested feature: ";

/// Splits QEMU's stderr into filtered features and other lines. QEMU
/// names only the leaf of a feature word (`CPUID.07H:EAX` for subleaf 1
/// too), so the bit of a named feature is the CPU map's bit of that name
/// at that leaf, register and bit number (`db`), else subleaf 0.
pub fn parse_warnings(db: &Database, stderr: &str) -> QemuWarnings {
    let mut out = QemuWarnings::default();
    for line in stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parsed = [(TCG, FilteredBy::Tcg), (HOST, FilteredBy::Host)]
            .into_iter()
            .find_map(|(marker, by)| {
                let at = line.find(marker)?;
                parse_feature(&line[at + marker.len()..], by)
            })
            .map(|mut f| {
                f.bit = f.bit.map(|b| resolve(db, &f.qemu_name, b));
                f
            });
        match parsed {
            Some(f) => out.filtered.push(f),
            None => out.other.push(strip_program(line).to_string()),
        }
    }
    out
}

/// `qemu-system-x86_64: message` → `message`.
pub fn strip_program(line: &str) -> &str {
    match line.split_once(": ") {
        Some((program, rest)) if program.starts_with("qemu") && !program.contains(' ') => rest,
        _ => line,
    }
}

/// `CPUID.07H_01H:EAX.avx-vnni [bit 4]` or `MSR(10AH).rdctl-no [bit 0]`.
fn parse_feature(text: &str, by: FilteredBy) -> Option<FilteredFeature> {
    let (head, bit) = text.rsplit_once(" [bit ")?;
    let bit_number: u32 = bit.strip_suffix(']')?.parse().ok()?;
    // The place ends at the first '.' after the register or MSR index.
    let (place, qemu_name) = match head.strip_prefix("CPUID.") {
        Some(rest) => {
            let colon = rest.find(':')?;
            let name_at = rest[colon..].find('.').map(|d| colon + d);
            let place_end = name_at.unwrap_or(rest.len());
            (
                format!("CPUID.{}", &rest[..place_end]),
                name_at.map_or("", |d| &rest[d + 1..]).to_string(),
            )
        }
        None => match head.split_once(").") {
            Some((msr, name)) => (format!("{msr})"), name.to_string()),
            None => (head.to_string(), String::new()),
        },
    };
    let bit = cpuid_bit(&place, bit_number);
    Some(FilteredFeature {
        by,
        qemu_name,
        bit,
        place,
        bit_number,
    })
}

/// The CPU map's bit of QEMU feature `qemu_name` with `bit`'s leaf,
/// register and number (any subleaf), else `bit`.
fn resolve(db: &Database, qemu_name: &str, bit: CpuidBit) -> CpuidBit {
    let Some(id) = cpumodel_qemu::feature_from_qemu(db, qemu_name) else {
        return bit;
    };
    db.feature(id)
        .data
        .nonzero_items()
        .find_map(|item| match item.key {
            ItemKey::Cpuid(key)
                if key.leaf == bit.key.leaf
                    && item.regs[bit.register.index()] & (1 << bit.bit) != 0 =>
            {
                Some(CpuidBit { key, ..bit })
            }
            _ => None,
        })
        .unwrap_or(bit)
}

/// `CPUID.07H_01H:EAX` and a bit number as a [`CpuidBit`].
fn cpuid_bit(place: &str, bit: u32) -> Option<CpuidBit> {
    let rest = place.strip_prefix("CPUID.")?;
    let (leaves, reg) = rest.split_once(':')?;
    let hex = |s: &str| u32::from_str_radix(s.strip_suffix('H')?, 16).ok();
    let (leaf, subleaf) = match leaves.split_once('_') {
        Some((l, s)) => (hex(l)?, hex(s)?),
        None => (hex(leaves)?, 0),
    };
    let register = match reg {
        "EAX" => Register::Eax,
        "EBX" => Register::Ebx,
        "ECX" => Register::Ecx,
        "EDX" => Register::Edx,
        _ => return None,
    };
    (bit < 32).then_some(CpuidBit {
        key: CpuidKey::new(leaf, subleaf),
        register,
        bit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcg_and_host_warnings_name_the_bit() {
        let w = parse_warnings(
            &Database::embedded(),
            "qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.x2apic [bit 21]\n\
             qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.07H_01H:EAX.avx-vnni [bit 4]\n\
             qemu-system-x86_64: warning: host doesn't support requested feature: MSR(10AH).rdctl-no [bit 0]\n\
             qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.80000001H:ECX [bit 7]\n\
             qemu-system-x86_64: warning: something else\n",
        );
        let f = &w.filtered;
        assert_eq!(f.len(), 4);
        assert_eq!(f[0].by, FilteredBy::Tcg);
        assert_eq!(f[0].qemu_name, "x2apic");
        assert_eq!(f[0].place, "CPUID.01H:ECX");
        assert_eq!(
            f[0].bit,
            Some(CpuidBit {
                key: CpuidKey::leaf(1),
                register: Register::Ecx,
                bit: 21
            })
        );
        assert_eq!(f[1].by, FilteredBy::Host);
        assert_eq!(f[1].bit.map(|b| b.key), Some(CpuidKey::new(7, 1)));
        assert_eq!(f[1].qemu_name, "avx-vnni");
        assert_eq!(
            (f[2].place.as_str(), f[2].qemu_name.as_str(), f[2].bit),
            ("MSR(10AH)", "rdctl-no", None)
        );
        assert_eq!(f[3].qemu_name, "");
        assert_eq!(
            f[3].bit.map(|b| (b.key.leaf, b.bit)),
            Some((0x8000_0001, 7))
        );
        assert_eq!(w.other, ["warning: something else"]);
    }

    #[test]
    fn a_named_feature_gets_its_subleaf_from_the_map() {
        let w = parse_warnings(
            &Database::embedded(),
            "qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.0DH:EAX.xsavec [bit 1]\n",
        );
        assert_eq!(
            w.filtered[0].bit,
            Some(CpuidBit {
                key: CpuidKey::new(0xd, 1),
                register: Register::Eax,
                bit: 1
            })
        );
    }

    #[test]
    fn the_program_name_is_dropped_from_other_lines() {
        assert_eq!(
            strip_program("qemu-system-x86_64: unable to find CPU model 'Foo'"),
            "unable to find CPU model 'Foo'"
        );
        assert_eq!(strip_program("plain: text here"), "plain: text here");
    }
}
