//! Fixed-size bitsets over a database's feature table.
//!
//! Every comparison cpumodel makes (is this model a subset of the host, what
//! does every host of a fleet share, which features block a migration) is a
//! set operation on features. With features numbered densely, a set is a few
//! machine words and each operation is a handful of AND/OR instructions, so a
//! million hosts fit in 64 MiB and a compare costs nanoseconds.

use std::fmt;

/// The most features a database may define.
pub const MAX_FEATURES: usize = 512;
const WORDS: usize = MAX_FEATURES / 64;

/// Index of a feature in its [`Database`](crate::Database)'s feature table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeatureId(pub u16);

impl FeatureId {
    /// The identifier of the feature at `index` of a database's feature
    /// table.
    ///
    /// # Panics
    ///
    /// When `index` is not below [`MAX_FEATURES`]: no database holds more
    /// features (the loader refuses them).
    pub fn from_index(index: usize) -> Self {
        assert!(index < MAX_FEATURES, "feature index {index} out of range");
        // cast: below MAX_FEATURES (512), checked above.
        #[allow(clippy::cast_possible_truncation)]
        Self(index as u16)
    }

    /// The index as `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A set of features, one bit per [`FeatureId`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FeatureSet {
    words: [u64; WORDS],
}

impl FeatureSet {
    /// The empty set.
    pub const EMPTY: FeatureSet = FeatureSet { words: [0; WORDS] };

    /// The empty set.
    pub fn new() -> Self {
        Self::EMPTY
    }

    /// A set holding `ids`.
    pub fn from_ids(ids: impl IntoIterator<Item = FeatureId>) -> Self {
        let mut s = Self::EMPTY;
        for id in ids {
            s.insert(id);
        }
        s
    }

    /// A set built from raw indices (used by generated code).
    pub const fn from_indices(ids: &[u16]) -> Self {
        let mut words = [0u64; WORDS];
        let mut i = 0;
        while i < ids.len() {
            words[ids[i] as usize / 64] |= 1 << (ids[i] % 64);
            i += 1;
        }
        FeatureSet { words }
    }

    /// Adds a feature.
    pub fn insert(&mut self, id: FeatureId) {
        self.words[id.index() / 64] |= 1 << (id.index() % 64);
    }

    /// Removes a feature.
    pub fn remove(&mut self, id: FeatureId) {
        self.words[id.index() / 64] &= !(1 << (id.index() % 64));
    }

    /// True when the feature is in the set.
    pub fn contains(&self, id: FeatureId) -> bool {
        self.words[id.index() / 64] & (1 << (id.index() % 64)) != 0
    }

    /// True when the set has no feature.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// Number of features in the set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// `self ∪ other`.
    #[must_use]
    pub fn union(&self, other: &FeatureSet) -> FeatureSet {
        self.zip(other, |a, b| a | b)
    }

    /// `self ∩ other`.
    #[must_use]
    pub fn intersection(&self, other: &FeatureSet) -> FeatureSet {
        self.zip(other, |a, b| a & b)
    }

    /// `self \ other`.
    #[must_use]
    pub fn difference(&self, other: &FeatureSet) -> FeatureSet {
        self.zip(other, |a, b| a & !b)
    }

    /// True when every feature of `other` is in `self`.
    pub fn is_superset(&self, other: &FeatureSet) -> bool {
        self.words
            .iter()
            .zip(other.words.iter())
            .all(|(a, b)| a & b == *b)
    }

    /// True when the sets share a feature.
    pub fn intersects(&self, other: &FeatureSet) -> bool {
        self.words
            .iter()
            .zip(other.words.iter())
            .any(|(a, b)| a & b != 0)
    }

    /// Number of features in `self \ other`, without building the set.
    pub fn difference_len(&self, other: &FeatureSet) -> usize {
        self.words
            .iter()
            .zip(other.words.iter())
            .map(|(a, b)| (a & !b).count_ones() as usize)
            .sum()
    }

    /// In-place `self ∩= other`.
    pub fn intersect_with(&mut self, other: &FeatureSet) {
        for (a, b) in self.words.iter_mut().zip(other.words.iter()) {
            *a &= b;
        }
    }

    /// In-place `self ∪= other`.
    pub fn union_with(&mut self, other: &FeatureSet) {
        for (a, b) in self.words.iter_mut().zip(other.words.iter()) {
            *a |= b;
        }
    }

    /// In-place `self \= other`.
    pub fn subtract(&mut self, other: &FeatureSet) {
        for (a, b) in self.words.iter_mut().zip(other.words.iter()) {
            *a &= !b;
        }
    }

    /// The features in ascending [`FeatureId`] order, which is the order of
    /// the CPU map's feature file.
    pub fn iter(&self) -> impl Iterator<Item = FeatureId> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                // cast: w < WORDS and b < 64, so the index is below
                // MAX_FEATURES; no run-time check on this hot path.
                #[allow(clippy::cast_possible_truncation)]
                let id = FeatureId((w * 64) as u16 + b as u16);
                Some(id)
            })
        })
    }

    fn zip(&self, other: &FeatureSet, f: impl Fn(u64, u64) -> u64) -> FeatureSet {
        let mut words = [0u64; WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            *w = f(self.words[i], other.words[i]);
        }
        FeatureSet { words }
    }
}

impl fmt::Debug for FeatureSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(|id| id.0)).finish()
    }
}

impl FromIterator<FeatureId> for FeatureSet {
    fn from_iter<T: IntoIterator<Item = FeatureId>>(iter: T) -> Self {
        Self::from_ids(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u16]) -> FeatureSet {
        FeatureSet::from_indices(ids)
    }

    #[test]
    fn operations_work_across_words() {
        let a = set(&[0, 63, 64, 200, 511]);
        let b = set(&[63, 200, 300]);
        assert_eq!(a.len(), 5);
        assert_eq!(a.intersection(&b), set(&[63, 200]));
        assert_eq!(a.union(&b), set(&[0, 63, 64, 200, 300, 511]));
        assert_eq!(a.difference(&b), set(&[0, 64, 511]));
        assert_eq!(a.difference_len(&b), 3);
        assert!(a.is_superset(&set(&[0, 511])));
        assert!(!a.is_superset(&b));
        assert!(a.intersects(&b));
        assert_eq!(
            a.iter().map(|f| f.0).collect::<Vec<_>>(),
            [0, 63, 64, 200, 511]
        );
        let mut c = a;
        c.remove(FeatureId(63));
        c.insert(FeatureId(1));
        assert_eq!(c, set(&[0, 1, 64, 200, 511]));
        assert!(FeatureSet::EMPTY.is_empty());
    }
}
