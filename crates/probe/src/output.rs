//! Reading the probe guest's output: the bytes it wrote to its port become
//! the answers to its queries, and the answers become the `<cpudata>` of
//! the CPU the guest saw.
//!
//! The guest asks far more than any CPU offers ([`crate::image::sweep`]);
//! which leaves and subleaves the CPU really has is decided here, by the
//! same walk `cpumodel dump` applies to a real processor
//! ([`cpumodel_cpudata::walk::read_cpuid`]), run on the recorded answers.
//! So a probe dump decodes exactly like a dump taken on a machine.

use std::collections::BTreeMap;

use cpumodel_cpudata::walk::read_cpuid;
use cpumodel_cpudata::{CpuData, CpuidKey, CpuidReader, Item, ItemKey};

use crate::image::RESULT_SIZE;

/// The guest's output is not one answer per query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the probe guest wrote {got} bytes, expected {expected} ({queries} CPUID answers of 16 bytes)"
)]
pub struct OutputError {
    /// Bytes received.
    pub got: usize,
    /// Bytes a complete run writes.
    pub expected: usize,
    /// Queries in the image.
    pub queries: usize,
}

/// What the guest read for every query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestAnswers {
    answers: BTreeMap<CpuidKey, [u32; 4]>,
}

impl GuestAnswers {
    /// The answers to `queries` from the guest's output `bytes` (16 bytes
    /// per query, EAX, EBX, ECX, EDX little-endian).
    ///
    /// # Errors
    /// [`OutputError`] when `bytes` is not exactly one answer per query (the
    /// guest did not finish, or something else wrote to the port).
    pub fn parse(queries: &[CpuidKey], bytes: &[u8]) -> Result<Self, OutputError> {
        let expected = queries.len() * RESULT_SIZE;
        if bytes.len() != expected {
            return Err(OutputError {
                got: bytes.len(),
                expected,
                queries: queries.len(),
            });
        }
        let answers = queries
            .iter()
            .zip(bytes.chunks_exact(RESULT_SIZE))
            .map(|(key, r)| {
                let word = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
                (*key, [word(0), word(4), word(8), word(12)])
            })
            .collect();
        Ok(GuestAnswers { answers })
    }

    /// The answer to `key`, when it was asked.
    pub fn get(&self, key: CpuidKey) -> Option<[u32; 4]> {
        self.answers.get(&key).copied()
    }

    /// Whether the guest's CPU has `key`: its leaf is at most the maximum
    /// basic (leaf 0) or extended (leaf 0x80000000) leaf the guest read.
    pub fn in_range(&self, key: CpuidKey) -> bool {
        let base = key.leaf & 0x8000_0000;
        self.get(CpuidKey::leaf(base))
            .is_some_and(|r| key.leaf <= r[0])
    }

    /// The CPU the guest saw as CPU data: the walk over its leaves and
    /// valid subleaves, plus every key of `extra` that is in range and was
    /// asked (the intended table's keys, so that leaves the walk reads only
    /// at subleaf 0, such as 0x8000001D, are compared whole).
    pub fn to_cpudata(&self, extra: &[CpuidKey]) -> CpuData {
        let mut data = read_cpuid(self);
        for &key in extra {
            if data.get(ItemKey::Cpuid(key)).is_some() || !self.in_range(key) {
                continue;
            }
            if let Some(regs) = self.get(key) {
                data.add(Item {
                    key: ItemKey::Cpuid(key),
                    regs,
                });
            }
        }
        data
    }
}

/// The walk reads the recording; a query the guest was not asked reads as
/// zeros, which ends every subleaf enumeration.
impl CpuidReader for GuestAnswers {
    fn cpuid(&self, key: CpuidKey) -> [u32; 4] {
        self.get(key).unwrap_or([0; 4])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(answers: &[[u32; 4]]) -> Vec<u8> {
        answers
            .iter()
            .flatten()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    #[test]
    fn answers_are_sixteen_bytes_per_query() {
        let q = [CpuidKey::leaf(0), CpuidKey::new(4, 1)];
        let a = GuestAnswers::parse(&q, &bytes(&[[1, 2, 3, 4], [5, 6, 7, 8]])).expect("parses");
        assert_eq!(a.get(CpuidKey::new(4, 1)), Some([5, 6, 7, 8]));
        assert_eq!(a.get(CpuidKey::new(4, 2)), None);
        let short = GuestAnswers::parse(&q, &[0; 17]).expect_err("short");
        assert_eq!(
            short.to_string(),
            "the probe guest wrote 17 bytes, expected 32 (2 CPUID answers of 16 bytes)"
        );
    }

    #[test]
    fn the_cpudata_holds_the_leaves_in_range_and_the_table_keys() {
        let q = [
            CpuidKey::leaf(0),
            CpuidKey::leaf(1),
            CpuidKey::leaf(2),
            CpuidKey::leaf(0x8000_0000),
            CpuidKey::new(0x8000_001d, 0),
            CpuidKey::new(0x8000_001d, 1),
            CpuidKey::new(0x8000_001d, 2),
        ];
        let a = GuestAnswers::parse(
            &q,
            &bytes(&[
                [1, 0x6874_7541, 0x444d_4163, 0x6974_6e65],
                [0x830f10, 0, 0, 0],
                [9, 9, 9, 9],
                [0x8000_001d, 0, 0, 0],
                [0x121, 0, 0, 0],
                [0x122, 0, 0, 0],
                [0x143, 0, 0, 0],
            ]),
        )
        .expect("parses");
        let extra = [CpuidKey::new(0x8000_001d, 1), CpuidKey::leaf(2)];
        let data = a.to_cpudata(&extra);
        let keys: Vec<ItemKey> = data.items().iter().map(|i| i.key).collect();
        assert!(keys.contains(&ItemKey::cpuid(1, 0)));
        // Leaf 2 is past the maximum basic leaf 1.
        assert!(!keys.contains(&ItemKey::cpuid(2, 0)));
        assert!(keys.contains(&ItemKey::cpuid(0x8000_001d, 1)));
        // Not in the table: the walk reads 0x8000001D at subleaf 0 only.
        assert!(!keys.contains(&ItemKey::cpuid(0x8000_001d, 2)));
        assert_eq!(data.vendor_string(), Some(*b"AuthenticAMD"));
    }
}
