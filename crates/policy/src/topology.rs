//! Guest CPU topology, chosen exactly as OpenStack Nova chooses it.
//!
//! Flavors (`hw:cpu_sockets`, `hw:cpu_max_cores`, ...) and images
//! (`hw_cpu_sockets`, `hw_cpu_max_cores`, ...) state preferred and maximum
//! socket, core and thread counts. Nova then:
//!
//! 1. takes the maximum of each dimension from the image, else the flavor,
//!    else 65536; an image maximum above the flavor's is an error;
//! 2. drops the flavor's preferred values if any exceeds a maximum, and
//!    rejects image preferred values above a maximum;
//! 3. uses the image's preferred values if it sets any, else the flavor's;
//! 4. enumerates every sockets × cores × threads equal to the vCPU count
//!    within the maxima (each clamped to the vCPU count), sorted by
//!    sockets·cores, then sockets, then threads, all descending;
//! 5. stably groups them by how many preferred values they match (3, 2, 1,
//!    0) and takes the first.
//!
//! The error texts follow Nova's, so operators recognise them.
//!
//! [`Sct`] is Nova's own shape, not a topology: a set of limits or
//! preferences in which 0 means "unset" and [`NO_LIMIT`] "unlimited", and
//! the candidates Nova ranks. What [`best`] returns is the shared
//! [`Topology`] (one die, one cluster), and an invalid topology is the
//! shared [`TopologyError`]; [`NovaTopologyError`] says why Nova's rules
//! find none.

use std::fmt;

use cpumodel_cpudef::{Topology, TopologyError};

/// Nova's limit when nothing constrains a dimension.
pub const NO_LIMIT: u32 = 65536;

/// Nova's sockets, cores and threads: limits, preferences (0 = unset) or
/// a candidate shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sct {
    /// Sockets.
    pub sockets: u32,
    /// Cores per socket.
    pub cores: u32,
    /// Threads per core.
    pub threads: u32,
}

/// Only the values that constrain anything: unset (0) and unlimited
/// ([`NO_LIMIT`]) values are left out, so messages name what was given.
impl fmt::Display for Sct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set: Vec<String> = [
            ("sockets", self.sockets),
            ("cores", self.cores),
            ("threads", self.threads),
        ]
        .iter()
        .filter(|(_, v)| *v != 0 && *v != NO_LIMIT)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
        if set.is_empty() {
            f.write_str("no limits")
        } else {
            f.write_str(&set.join(", "))
        }
    }
}

/// Topology inputs: flavor extra specs and image properties, as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopologySpecs {
    /// Flavor values (`hw:` keys), already validated as positive integers.
    pub flavor: Limits,
    /// Image values (`hw_` keys).
    pub image: Limits,
}

/// Preferred and maximum values from one source (0 = unset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Preferred sockets, cores, threads.
    pub preferred: Sct,
    /// Maximum sockets, cores, threads.
    pub maximum: Sct,
}

/// Nova's rules choose no topology.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NovaTopologyError {
    /// An image maximum exceeds the flavor maximum.
    #[error("image vCPU topology limits ({image}) exceed the limits of the flavor ({flavor})")]
    ImageLimitsExceedFlavor {
        /// Image maxima.
        image: Sct,
        /// Flavor maxima.
        flavor: Sct,
    },
    /// An image preferred value exceeds the maxima.
    #[error("image vCPU topology ({image}) exceeds the limits of the flavor or image ({maximum})")]
    ImageTopologyExceedsLimits {
        /// Image preferred values.
        image: Sct,
        /// Effective maxima.
        maximum: Sct,
    },
    /// No topology gives the vCPU count within the maxima.
    #[error("vCPU limits {}:{}:{} (sockets:cores:threads) are impossible to satisfy for {vcpus} vCPUs", .maximum.sockets, .maximum.cores, .maximum.threads)]
    Impossible {
        /// The vCPU count.
        vcpus: u32,
        /// The clamped maxima that were searched.
        maximum: Sct,
    },
    /// The vCPU count is zero.
    #[error("the vCPU count must be at least 1")]
    NoVcpus,
    /// The chosen shape is not a valid topology.
    #[error(transparent)]
    Invalid(#[from] TopologyError),
}

/// Effective `(preferred, maximum)` as Nova's `get_cpu_topology_constraints`.
///
/// # Errors
/// [`NovaTopologyError::ImageLimitsExceedFlavor`] and
/// [`NovaTopologyError::ImageTopologyExceedsLimits`].
pub fn constraints(specs: &TopologySpecs) -> Result<(Sct, Sct), NovaTopologyError> {
    let (f, i) = (specs.flavor, specs.image);
    let exceeds = |img: u32, fl: u32| fl != 0 && img > fl;
    if exceeds(i.maximum.sockets, f.maximum.sockets)
        || exceeds(i.maximum.cores, f.maximum.cores)
        || exceeds(i.maximum.threads, f.maximum.threads)
    {
        return Err(NovaTopologyError::ImageLimitsExceedFlavor {
            image: i.maximum,
            flavor: f.maximum,
        });
    }
    let pick = |img: u32, fl: u32| {
        if img != 0 {
            img
        } else if fl != 0 {
            fl
        } else {
            NO_LIMIT
        }
    };
    let max = Sct {
        sockets: pick(i.maximum.sockets, f.maximum.sockets),
        cores: pick(i.maximum.cores, f.maximum.cores),
        threads: pick(i.maximum.threads, f.maximum.threads),
    };
    let over = |p: Sct| p.sockets > max.sockets || p.cores > max.cores || p.threads > max.threads;
    let flavor_pref = if over(f.preferred) {
        Sct::default()
    } else {
        f.preferred
    };
    if over(i.preferred) {
        return Err(NovaTopologyError::ImageTopologyExceedsLimits {
            image: i.preferred,
            maximum: max,
        });
    }
    let image_set = i.preferred.sockets != 0 || i.preferred.cores != 0 || i.preferred.threads != 0;
    let preferred = if image_set { i.preferred } else { flavor_pref };
    Ok((preferred, max))
}

/// Every topology for `vcpus` within `maximum`, in Nova's preference order
/// before scoring.
///
/// # Errors
/// [`NovaTopologyError::Impossible`] when there is none.
pub fn possible(
    vcpus: u32,
    maximum: Sct,
    allow_threads: bool,
) -> Result<Vec<Sct>, NovaTopologyError> {
    if vcpus == 0 {
        return Err(NovaTopologyError::NoVcpus);
    }
    let clamp = Sct {
        sockets: vcpus.min(maximum.sockets),
        cores: vcpus.min(maximum.cores),
        threads: if allow_threads {
            vcpus.min(maximum.threads)
        } else {
            1
        },
    };
    // Sockets and cores are divisors of the vCPU count: enumerating those
    // (in increasing order, as Nova's ranges) instead of every count up to
    // the limits keeps a flavor with huge limits from taking minutes.
    let divisors = divisors(vcpus);
    let mut out = Vec::new();
    for s in divisors.iter().copied().filter(|s| *s <= clamp.sockets) {
        let rest = vcpus / s;
        for c in divisors
            .iter()
            .copied()
            .filter(|c| *c <= clamp.cores && rest.is_multiple_of(*c))
        {
            let t = rest / c;
            if t >= 1 && t <= clamp.threads {
                out.push(Sct {
                    sockets: s,
                    cores: c,
                    threads: t,
                });
            }
        }
    }
    // Python's sorted(reverse=True) is stable in the reversed sense: equal
    // keys keep their enumeration order.
    out.sort_by(|a, b| {
        let ka = (
            u64::from(a.sockets) * u64::from(a.cores),
            a.sockets,
            a.threads,
        );
        let kb = (
            u64::from(b.sockets) * u64::from(b.cores),
            b.sockets,
            b.threads,
        );
        kb.cmp(&ka)
    });
    if out.is_empty() {
        return Err(NovaTopologyError::Impossible {
            vcpus,
            maximum: clamp,
        });
    }
    Ok(out)
}

/// The divisors of `n`, in increasing order.
fn divisors(n: u32) -> Vec<u32> {
    let (mut small, mut large) = (Vec::new(), Vec::new());
    let mut d = 1u32;
    while u64::from(d) * u64::from(d) <= u64::from(n) {
        if n.is_multiple_of(d) {
            small.push(d);
            if d != n / d {
                large.push(n / d);
            }
        }
        d += 1;
    }
    small.extend(large.into_iter().rev());
    small
}

fn score(t: Sct, want: Sct) -> u32 {
    u32::from(want.sockets != 0 && t.sockets == want.sockets)
        + u32::from(want.cores != 0 && t.cores == want.cores)
        + u32::from(want.threads != 0 && t.threads == want.threads)
}

/// The topology Nova's `get_best_cpu_topology` picks (one die of one
/// cluster per socket).
///
/// # Errors
/// Any [`NovaTopologyError`].
pub fn best(
    vcpus: u32,
    specs: &TopologySpecs,
    allow_threads: bool,
) -> Result<Topology, NovaTopologyError> {
    let (preferred, maximum) = constraints(specs)?;
    let all = possible(vcpus, maximum, allow_threads)?;
    let best_score = (0..=3)
        .rev()
        .find(|s| all.iter().any(|t| score(*t, preferred) == *s))
        .unwrap_or(0);
    let chosen = all
        .iter()
        .find(|t| score(**t, preferred) == best_score)
        .expect("non-empty");
    Ok(Topology::new(
        chosen.sockets,
        1,
        1,
        chosen.cores,
        chosen.threads,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sct(sockets: u32, cores: u32, threads: u32) -> Sct {
        Sct {
            sockets,
            cores,
            threads,
        }
    }

    fn topo(sockets: u32, cores: u32, threads: u32) -> Topology {
        Topology::new(sockets, 1, 1, cores, threads).unwrap()
    }

    /// Every count up to the limits, as Nova enumerates them.
    fn possible_by_counting(vcpus: u32, maximum: Sct) -> Vec<Sct> {
        let mut out = Vec::new();
        for s in (1..=vcpus.min(maximum.sockets)).filter(|s| vcpus.is_multiple_of(*s)) {
            for c in (1..=vcpus.min(maximum.cores)).filter(|c| (vcpus / s).is_multiple_of(*c)) {
                let t = vcpus / s / c;
                if t <= vcpus.min(maximum.threads) {
                    out.push(sct(s, c, t));
                }
            }
        }
        out.sort_by_key(|t| {
            std::cmp::Reverse((
                u64::from(t.sockets) * u64::from(t.cores),
                t.sockets,
                t.threads,
            ))
        });
        out
    }

    #[test]
    fn enumerating_divisors_lists_what_counting_lists() {
        for vcpus in 1..=130 {
            for maximum in [
                sct(NO_LIMIT, NO_LIMIT, NO_LIMIT),
                sct(4, 8, 2),
                sct(1, 3, 1),
            ] {
                let want = possible_by_counting(vcpus, maximum);
                match possible(vcpus, maximum, true) {
                    Ok(got) => assert_eq!(got, want, "{vcpus} {maximum:?}"),
                    Err(_) => assert!(want.is_empty(), "{vcpus} {maximum:?}"),
                }
            }
        }
    }

    #[test]
    fn huge_limits_and_vcpu_counts_are_enumerated_by_divisors() {
        // Found by the `policy` fuzz target: with limits near 2^32 every
        // count up to the vCPU count was tried, for minutes.
        let huge = sct(4_000_000_000, 4_000_000_000, 4_000_000_000);
        let all = possible(735_134_400, huge, true).unwrap();
        assert_eq!(all[0], sct(735_134_400, 1, 1));
        assert_eq!(all.last(), Some(&sct(1, 1, 735_134_400)));
        let limitless = sct(u32::MAX, u32::MAX, u32::MAX);
        let prime = possible(4_294_967_291, limitless, true).unwrap();
        assert_eq!(prime.len(), 3);
    }

    #[test]
    fn default_prefers_sockets() {
        assert_eq!(
            best(8, &TopologySpecs::default(), true).unwrap(),
            topo(8, 1, 1)
        );
        let all = possible(4, sct(NO_LIMIT, NO_LIMIT, NO_LIMIT), true).unwrap();
        assert_eq!(
            all,
            [
                sct(4, 1, 1),
                sct(2, 2, 1),
                sct(1, 4, 1),
                sct(2, 1, 2),
                sct(1, 2, 2),
                sct(1, 1, 4)
            ]
        );
    }

    #[test]
    fn limits_and_preferences_follow_nova() {
        let mut specs = TopologySpecs::default();
        specs.flavor.maximum = sct(2, 0, 0);
        specs.flavor.preferred = sct(0, 0, 2);
        assert_eq!(best(8, &specs, true).unwrap(), topo(2, 2, 2));
        specs.image.maximum = sct(4, 0, 0);
        assert_eq!(
            best(8, &specs, true).unwrap_err().to_string(),
            "image vCPU topology limits (sockets=4) exceed the limits of the flavor (sockets=2)"
        );
        let mut specs = TopologySpecs::default();
        specs.flavor.maximum = sct(1, 2, 1);
        assert_eq!(
            best(8, &specs, true).unwrap_err().to_string(),
            "vCPU limits 1:2:1 (sockets:cores:threads) are impossible to satisfy for 8 vCPUs"
        );
        let mut specs = TopologySpecs::default();
        specs.image.maximum = sct(0, 0, 1);
        specs.image.preferred = sct(0, 0, 2);
        assert!(matches!(
            best(4, &specs, true),
            Err(NovaTopologyError::ImageTopologyExceedsLimits { .. })
        ));
        // Flavor preferences above an image limit are dropped, not an error.
        let mut specs = TopologySpecs::default();
        specs.flavor.preferred = sct(0, 0, 2);
        specs.image.maximum = sct(0, 0, 1);
        assert_eq!(best(4, &specs, true).unwrap(), topo(4, 1, 1));
        // Image preferences replace all flavor preferences.
        let mut specs = TopologySpecs::default();
        specs.flavor.preferred = sct(1, 0, 0);
        specs.image.preferred = sct(0, 0, 2);
        assert_eq!(best(4, &specs, true).unwrap(), topo(2, 1, 2));
    }
}
