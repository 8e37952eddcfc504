//! Packed CPUID fields, written by setters that check the value fits.
//!
//! Topology and cache leaves pack counts into narrow bit fields
//! (`CPUID.01H:EBX[23:16]` has 8 bits for the logical processors of a
//! package). A plain `value << 16` lets a large count spill into the
//! neighbouring field, or wrap to 0 with the field's flag still set. Every
//! such field the table builder writes is a [`Field`] constant, and each
//! write says what happens when the value is too wide:
//!
//! - [`Field::set`] refuses it with a [`FieldError`] naming the field and
//!   the value: for counts QEMU writes unchecked, where no value would be
//!   right;
//! - [`Field::set_clamped`] writes the field's maximum, as QEMU does for
//!   the fields it clamps (each use cites the QEMU commit);
//! - [`Field::set_masked`] keeps the low bits, as QEMU does where the
//!   field is an identifier or a count "that doesn't need to be reliable".
//!
//! A field works on the `[eax, ebx, ecx, edx]` array of one entry.

use std::fmt;

use cpumodel_cpudata::Register;

/// Bits `high..=low` of one register of a CPUID leaf, with what they hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    leaf: u32,
    register: Register,
    high: u32,
    low: u32,
    what: &'static str,
}

/// A value does not fit in its CPUID field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} ({}) cannot hold {value}: its {} bits hold at most {}", .field.what(), .field.width(), .field.max())]
pub struct FieldError {
    /// The field.
    pub field: Field,
    /// The value that does not fit.
    pub value: u64,
}

impl Field {
    /// Bits `high..=low` of `register` of `leaf`, holding `what` (for
    /// messages).
    ///
    /// # Panics
    /// When the bit range is invalid; fields are constants, so this fails
    /// at compile time.
    pub const fn new(
        leaf: u32,
        register: Register,
        high: u32,
        low: u32,
        what: &'static str,
    ) -> Self {
        assert!(
            low <= high && high < 32,
            "bits high..=low of a 32-bit register"
        );
        Field {
            leaf,
            register,
            high,
            low,
            what,
        }
    }

    /// The leaf.
    pub const fn leaf(&self) -> u32 {
        self.leaf
    }

    /// The register.
    pub const fn register(&self) -> Register {
        self.register
    }

    /// What the field holds.
    pub const fn what(&self) -> &'static str {
        self.what
    }

    /// The number of bits.
    pub const fn width(&self) -> u32 {
        self.high - self.low + 1
    }

    /// The largest value the field holds.
    pub const fn max(&self) -> u32 {
        u32::MAX >> (32 - self.width())
    }

    /// The field's bits in its register.
    pub const fn mask(&self) -> u32 {
        self.max() << self.low
    }

    /// The field's value in `regs`.
    pub const fn get(&self, regs: &[u32; 4]) -> u32 {
        (regs[self.register.index()] >> self.low) & self.max()
    }

    /// Writes `value` (exactly, replacing the field's bits).
    ///
    /// # Errors
    /// [`FieldError`] when `value` exceeds [`Field::max`]; `regs` is left
    /// unchanged.
    pub fn set(&self, regs: &mut [u32; 4], value: impl Into<u64>) -> Result<(), FieldError> {
        let value = value.into();
        match u32::try_from(value) {
            Ok(v) if v <= self.max() => {
                self.write(regs, v);
                Ok(())
            }
            _ => Err(FieldError {
                field: *self,
                value,
            }),
        }
    }

    /// Writes `value`, or the field's maximum when it is larger.
    pub fn set_clamped(&self, regs: &mut [u32; 4], value: impl Into<u64>) {
        let v = value.into().min(u64::from(self.max()));
        // At most `max()`, a u32.
        self.write(regs, u32::try_from(v).unwrap_or(u32::MAX));
    }

    /// Writes the low [`Field::width`] bits of `value`.
    pub fn set_masked(&self, regs: &mut [u32; 4], value: impl Into<u64>) {
        let v = value.into() & u64::from(self.max());
        // Masked to at most `max()`, a u32.
        self.write(regs, u32::try_from(v).unwrap_or(u32::MAX));
    }

    fn write(&self, regs: &mut [u32; 4], value: u32) {
        let r = &mut regs[self.register.index()];
        *r = (*r & !self.mask()) | (value << self.low);
    }
}

/// Intel's notation: `CPUID.01H:EBX[23:16]`, `CPUID.8000001EH:EBX[15:8]`.
impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CPUID.{:02X}H:{}[{}:{}]",
            self.leaf, self.register, self.high, self.low
        )
    }
}

/// `CPUID.01H:EBX[23:16]`: addressable IDs for logical processors in the
/// package (the HTT count).
pub const LEAF1_LOGICAL_PER_PACKAGE: Field =
    Field::new(0x1, Register::Ebx, 23, 16, "logical processors per package");
/// `CPUID.01H:EBX[31:24]`: the initial APIC ID.
pub const LEAF1_APIC_ID: Field = Field::new(0x1, Register::Ebx, 31, 24, "initial APIC ID");
/// `CPUID.04H:EAX[25:14]`: addressable IDs of the logical processors
/// sharing the cache, minus one.
pub const LEAF4_SHARING_IDS: Field = Field::new(
    0x4,
    Register::Eax,
    25,
    14,
    "logical processor IDs sharing the cache - 1",
);
/// `CPUID.04H:EAX[31:26]`: addressable core IDs in the package, minus one.
pub const LEAF4_CORE_IDS: Field =
    Field::new(0x4, Register::Eax, 31, 26, "core IDs per package - 1");
/// `CPUID.0BH:EAX[4:0]`: APIC ID bits to shift right for the next level.
pub const LEAFB_SHIFT: Field =
    Field::new(0xb, Register::Eax, 4, 0, "APIC ID shift of the next level");
/// `CPUID.0BH:EBX[15:0]`: logical processors at this level.
pub const LEAFB_COUNT: Field = Field::new(
    0xb,
    Register::Ebx,
    15,
    0,
    "logical processors at this level",
);
/// `CPUID.0BH:ECX[7:0]`: the level number (the subleaf).
pub const LEAFB_LEVEL: Field = Field::new(0xb, Register::Ecx, 7, 0, "level number");
/// `CPUID.0BH:ECX[15:8]`: the level type.
pub const LEAFB_TYPE: Field = Field::new(0xb, Register::Ecx, 15, 8, "level type");
/// `CPUID.1FH:EAX[4:0]`: APIC ID bits to shift right for the next level.
pub const LEAF1F_SHIFT: Field =
    Field::new(0x1f, Register::Eax, 4, 0, "APIC ID shift of the next level");
/// `CPUID.1FH:EBX[15:0]`: logical processors at this level.
pub const LEAF1F_COUNT: Field = Field::new(
    0x1f,
    Register::Ebx,
    15,
    0,
    "logical processors at this level",
);
/// `CPUID.1FH:ECX[7:0]`: the level number (the subleaf).
pub const LEAF1F_LEVEL: Field = Field::new(0x1f, Register::Ecx, 7, 0, "level number");
/// `CPUID.1FH:ECX[15:8]`: the level type.
pub const LEAF1F_TYPE: Field = Field::new(0x1f, Register::Ecx, 15, 8, "level type");
/// `CPUID.80000008H:ECX[7:0]`: logical processors in the package, minus
/// one (AMD's NC).
pub const LEAF80000008_THREADS: Field = Field::new(
    0x8000_0008,
    Register::Ecx,
    7,
    0,
    "logical processors per package - 1",
);
/// `CPUID.80000008H:ECX[15:12]`: APIC ID bits that number a logical
/// processor within its package (AMD's ApicIdSize).
pub const LEAF80000008_APIC_ID_SIZE: Field = Field::new(
    0x8000_0008,
    Register::Ecx,
    15,
    12,
    "APIC ID bits per package",
);
/// `CPUID.8000001DH:EAX[25:14]`: logical processors sharing the cache,
/// minus one.
pub const LEAF8000001D_SHARING: Field = Field::new(
    0x8000_001d,
    Register::Eax,
    25,
    14,
    "logical processors sharing the cache - 1",
);
/// `CPUID.8000001EH:EBX[7:0]`: the core ID.
pub const LEAF8000001E_CORE_ID: Field = Field::new(0x8000_001e, Register::Ebx, 7, 0, "core ID");
/// `CPUID.8000001EH:EBX[15:8]`: threads per core, minus one.
pub const LEAF8000001E_THREADS: Field =
    Field::new(0x8000_001e, Register::Ebx, 15, 8, "threads per core - 1");
/// `CPUID.8000001EH:ECX[7:0]`: the node ID.
pub const LEAF8000001E_NODE_ID: Field = Field::new(0x8000_001e, Register::Ecx, 7, 0, "node ID");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_named_in_intel_notation() {
        assert_eq!(
            LEAF1_LOGICAL_PER_PACKAGE.to_string(),
            "CPUID.01H:EBX[23:16]"
        );
        assert_eq!(LEAF4_CORE_IDS.to_string(), "CPUID.04H:EAX[31:26]");
        assert_eq!(
            LEAF8000001E_THREADS.to_string(),
            "CPUID.8000001EH:EBX[15:8]"
        );
        assert_eq!(LEAFB_SHIFT.to_string(), "CPUID.0BH:EAX[4:0]");
        assert_eq!(LEAF1F_COUNT.to_string(), "CPUID.1FH:EBX[15:0]");
    }

    #[test]
    fn widths_masks_and_maxima() {
        assert_eq!(LEAF1_LOGICAL_PER_PACKAGE.width(), 8);
        assert_eq!(LEAF1_LOGICAL_PER_PACKAGE.max(), 255);
        assert_eq!(LEAF1_LOGICAL_PER_PACKAGE.mask(), 0x00ff_0000);
        assert_eq!(LEAF4_SHARING_IDS.max(), 4095);
        assert_eq!(LEAF4_CORE_IDS.mask(), 0xfc00_0000);
        let whole = Field::new(0x1, Register::Eax, 31, 0, "signature");
        assert_eq!(
            (whole.width(), whole.max(), whole.mask()),
            (32, u32::MAX, u32::MAX)
        );
    }

    #[test]
    fn set_writes_exactly_or_names_the_field_and_value() {
        let mut regs = [0, 0x0000_0800, 0, 0];
        LEAF1_LOGICAL_PER_PACKAGE.set(&mut regs, 4u32).unwrap();
        assert_eq!(regs, [0, 0x0004_0800, 0, 0]);
        // Replaces the field's bits, keeps the others.
        LEAF1_LOGICAL_PER_PACKAGE.set(&mut regs, 255u32).unwrap();
        assert_eq!(regs[1], 0x00ff_0800);
        assert_eq!(LEAF1_LOGICAL_PER_PACKAGE.get(&regs), 255);
        let err = LEAF1_LOGICAL_PER_PACKAGE
            .set(&mut regs, 256u32)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "CPUID.01H:EBX[23:16] (logical processors per package) cannot hold 256: its 8 bits hold at most 255"
        );
        assert_eq!(
            err,
            FieldError {
                field: LEAF1_LOGICAL_PER_PACKAGE,
                value: 256
            }
        );
        assert_eq!(regs[1], 0x00ff_0800, "a refused value leaves the register");
        assert_eq!(
            LEAF8000001E_THREADS
                .set(&mut regs, u64::from(u32::MAX) + 1)
                .unwrap_err()
                .to_string(),
            "CPUID.8000001EH:EBX[15:8] (threads per core - 1) cannot hold 4294967296: its 8 bits hold at most 255"
        );
    }

    #[test]
    fn set_clamped_writes_the_maximum_and_set_masked_the_low_bits() {
        let mut regs = [0x21, 0, 0, 0];
        LEAF4_CORE_IDS.set_clamped(&mut regs, 255u32);
        assert_eq!(regs[0], 0xfc00_0021);
        LEAF4_CORE_IDS.set_clamped(&mut regs, 1u32);
        assert_eq!(regs[0], 0x0400_0021);
        LEAF4_SHARING_IDS.set_clamped(&mut regs, u64::MAX);
        assert_eq!(regs[0], 0x07ff_c021);
        let mut regs = [0; 4];
        LEAF1_APIC_ID.set_masked(&mut regs, 0x1_2345u32);
        assert_eq!(regs[1], 0x4500_0000);
        LEAFB_COUNT.set_masked(&mut regs, 0x1_0001u32);
        assert_eq!(regs[1], 0x4500_0001);
    }
}
