//! "Did you mean" suggestions for mistyped model and feature names.

/// The longest name "did you mean" suggestions are computed for (bytes;
/// libvirt's longest model or feature name is under 40).
pub const MAX_SUGGEST_LEN: usize = 128;

/// Up to three known names closest to `wanted`, best first.
///
/// A name qualifies when its edit distance (ignoring case) is small relative
/// to its length, or when one name contains the other.
///
/// Names longer than [`MAX_SUGGEST_LEN`] get no suggestions: the edit
/// distance costs their length times each known name's.
pub fn closest<'a>(wanted: &str, known: impl Iterator<Item = &'a str>) -> Vec<String> {
    if wanted.len() > MAX_SUGGEST_LEN {
        return Vec::new();
    }
    let w = wanted.to_ascii_lowercase();
    let limit = (w.len() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = known
        .filter_map(|k| {
            let kl = k.to_ascii_lowercase();
            let d = distance(&w, &kl);
            let related = w.len() >= 3 && (kl.contains(&w) || w.contains(&kl));
            (d <= limit || related).then_some((if related { d.min(limit) } else { d }, k))
        })
        .collect();
    scored.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.len().cmp(&b.1.len()))
            .then(a.1.cmp(b.1))
    });
    scored
        .into_iter()
        .take(3)
        .map(|(_, k)| k.to_string())
        .collect()
}

/// Levenshtein distance over bytes.
fn distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.bytes().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_best_first() {
        let known = [
            "Skylake-Client",
            "Skylake-Server",
            "Westmere",
            "Haswell",
            "EPYC",
        ];
        assert_eq!(
            closest("skylake-clinet", known.iter().copied()),
            ["Skylake-Client"]
        );
        assert_eq!(closest("westmer", known.iter().copied()), ["Westmere"]);
        assert!(closest("zzzzzzzz", known.iter().copied()).is_empty());
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
