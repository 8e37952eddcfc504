//! Flavor extra specs and image properties, with Nova's key names.
//!
//! Flavors use `hw:cpu_sockets`-style keys and `trait:HW_CPU_X86_AVX2=required`
//! for required CPU features; images use `hw_cpu_sockets`-style keys and the
//! same traits. Values are validated here, so a typo is an error that names
//! the key instead of a silently ignored setting.

use cpumodel_map::closest;

use crate::topology::{Limits, TopologySpecs};

/// A flavor extra spec or image property is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Not `KEY=VALUE`.
    #[error("{kind} '{text}' is not KEY=VALUE")]
    NotKeyValue {
        /// `flavor extra spec` or `image property`.
        kind: &'static str,
        /// The argument.
        text: String,
    },
    /// The key is not one cpumodel knows.
    #[error("unknown {kind} '{key}'{}", suggest(.suggestions))]
    UnknownKey {
        /// `flavor extra spec` or `image property`.
        kind: &'static str,
        /// The key.
        key: String,
        /// Close known keys.
        suggestions: Vec<String>,
    },
    /// A topology value is not a non-negative integer.
    #[error("{kind} {key}='{value}' must be an integer of 0 (unset) or more")]
    BadNumber {
        /// `flavor extra spec` or `image property`.
        kind: &'static str,
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// A CPU trait is not one that maps to a CPU feature, or its value is not `required`.
    #[error("{kind} '{key}={value}': {problem}")]
    BadTrait {
        /// `flavor extra spec` or `image property`.
        kind: &'static str,
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What is wrong.
        problem: String,
    },
}

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(
            "; did you mean {}?",
            s.iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The topology keys without their `hw:` / `hw_` prefix.
const TOPOLOGY_KEYS: [&str; 6] = [
    "cpu_sockets",
    "cpu_cores",
    "cpu_threads",
    "cpu_max_sockets",
    "cpu_max_cores",
    "cpu_max_threads",
];

/// libvirt feature name → os-traits trait names, as Nova 34.0.0 maps them
/// (`CPU_TRAITS_MAPPING`, nova/virt/libvirt/utils.py, with the trait
/// strings of os-traits 3.9.0). `svm` and `vmx` give two traits each: the
/// old generic one and the vendor-specific one.
pub const CPU_TRAITS: &[(&str, &[&str])] = &[
    ("3dnow", &["HW_CPU_X86_3DNOW"]),
    ("abm", &["HW_CPU_X86_ABM"]),
    ("aes", &["HW_CPU_X86_AESNI"]),
    ("amx-bf16", &["HW_CPU_X86_AMXBF16"]),
    ("amx-int8", &["HW_CPU_X86_AMXINT8"]),
    ("amx-tile", &["HW_CPU_X86_AMXTILE"]),
    ("avx", &["HW_CPU_X86_AVX"]),
    ("avx2", &["HW_CPU_X86_AVX2"]),
    ("avx512bw", &["HW_CPU_X86_AVX512BW"]),
    ("avx512cd", &["HW_CPU_X86_AVX512CD"]),
    ("avx512dq", &["HW_CPU_X86_AVX512DQ"]),
    ("avx512er", &["HW_CPU_X86_AVX512ER"]),
    ("avx512f", &["HW_CPU_X86_AVX512F"]),
    ("avx512pf", &["HW_CPU_X86_AVX512PF"]),
    ("avx512vl", &["HW_CPU_X86_AVX512VL"]),
    ("avx512vnni", &["HW_CPU_X86_AVX512VNNI"]),
    ("avx512vbmi", &["HW_CPU_X86_AVX512VBMI"]),
    ("avx512ifma", &["HW_CPU_X86_AVX512IFMA"]),
    ("avx512vbmi2", &["HW_CPU_X86_AVX512VBMI2"]),
    ("avx512bitalg", &["HW_CPU_X86_AVX512BITALG"]),
    ("vaes", &["HW_CPU_X86_AVX512VAES"]),
    ("gfni", &["HW_CPU_X86_AVX512GFNI"]),
    ("vpclmulqdq", &["HW_CPU_X86_AVX512VPCLMULQDQ"]),
    ("avx512-vpopcntdq", &["HW_CPU_X86_AVX512VPOPCNTDQ"]),
    ("bmi1", &["HW_CPU_X86_BMI"]),
    ("bmi2", &["HW_CPU_X86_BMI2"]),
    ("pclmuldq", &["HW_CPU_X86_CLMUL"]),
    ("f16c", &["HW_CPU_X86_F16C"]),
    ("fma", &["HW_CPU_X86_FMA3"]),
    ("fma4", &["HW_CPU_X86_FMA4"]),
    ("mmx", &["HW_CPU_X86_MMX"]),
    ("mpx", &["HW_CPU_X86_MPX"]),
    ("sha-ni", &["HW_CPU_X86_SHA"]),
    ("sse", &["HW_CPU_X86_SSE"]),
    ("sse2", &["HW_CPU_X86_SSE2"]),
    ("sse3", &["HW_CPU_X86_SSE3"]),
    ("sse4.1", &["HW_CPU_X86_SSE41"]),
    ("sse4.2", &["HW_CPU_X86_SSE42"]),
    ("sse4a", &["HW_CPU_X86_SSE4A"]),
    ("ssse3", &["HW_CPU_X86_SSSE3"]),
    ("svm", &["HW_CPU_X86_SVM", "HW_CPU_X86_AMD_SVM"]),
    ("tbm", &["HW_CPU_X86_TBM"]),
    ("vmx", &["HW_CPU_X86_VMX", "HW_CPU_X86_INTEL_VMX"]),
    ("xop", &["HW_CPU_X86_XOP"]),
];

/// Topology limits and required features read from specs and properties.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedSpecs {
    /// Flavor and image topology values.
    pub topology: TopologySpecs,
    /// Feature names required through CPU traits.
    pub required_features: Vec<String>,
    /// Values read otherwise than Nova's API would check them, one line
    /// each, for the caller to show.
    pub warnings: Vec<String>,
}

/// A topology value as Nova reads it with Python's `int()`: surrounding
/// whitespace and a `+` sign allowed, 0 meaning unset, and a value above
/// `u32::MAX` read as `u32::MAX` (Nova clamps every value to the vCPU
/// count, so any value above it means the same). `None` for what is not a
/// decimal number, and for what Nova reads only by accident of Python:
/// negative values (which Nova counts as set) and digits grouped with `_`
/// (`1_0` is 10 to Python).
fn nova_int(value: &str) -> Option<u32> {
    let digits = value.trim();
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<u32>().unwrap_or(u32::MAX))
}

impl ParsedSpecs {
    /// True when any topology key was given.
    pub fn has_topology(&self) -> bool {
        self.topology != TopologySpecs::default()
    }
}

/// Parses flavor extra specs (`hw:...`, `trait:...`) and image properties
/// (`hw_...`, `trait:...`).
///
/// # Errors
/// See [`SpecError`].
pub fn parse_specs(flavor: &[String], image: &[String]) -> Result<ParsedSpecs, SpecError> {
    let mut out = ParsedSpecs::default();
    for (items, kind, prefix) in [
        (flavor, "flavor extra spec", "hw:"),
        (image, "image property", "hw_"),
    ] {
        for text in items {
            let (key, value) = text
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| SpecError::NotKeyValue {
                    kind,
                    text: text.clone(),
                })?;
            if let Some(t) = key.strip_prefix("trait:") {
                let feature = CPU_TRAITS
                    .iter()
                    .find(|(_, traits)| traits.contains(&t))
                    .map(|(f, _)| *f)
                    .ok_or_else(|| SpecError::BadTrait {
                        kind,
                        key: key.to_string(),
                        value: value.to_string(),
                        problem: "not a CPU trait that maps to a CPU feature (HW_CPU_X86_*)".into(),
                    })?;
                match value {
                    "required" => out.required_features.push(feature.to_string()),
                    "forbidden" => {}
                    _ => {
                        return Err(SpecError::BadTrait {
                            kind,
                            key: key.to_string(),
                            value: value.to_string(),
                            problem: "the value must be 'required' or 'forbidden'".into(),
                        })
                    }
                }
                continue;
            }
            let known: Vec<String> = TOPOLOGY_KEYS
                .iter()
                .map(|k| format!("{prefix}{k}"))
                .collect();
            let name = key
                .strip_prefix(prefix)
                .filter(|n| TOPOLOGY_KEYS.contains(n))
                .ok_or_else(|| SpecError::UnknownKey {
                    kind,
                    key: key.to_string(),
                    suggestions: closest(key, known.iter().map(String::as_str)),
                })?;
            let n = nova_int(value).ok_or_else(|| SpecError::BadNumber {
                kind,
                key: key.to_string(),
                value: value.to_string(),
            })?;
            if n == 0 {
                // Nova's compute code reads 0 as unset; Nova's API refuses
                // it for flavors from microversion 2.86 on.
                if kind == "flavor extra spec" {
                    out.warnings.push(format!(
                        "flavor extra spec {key}='{value}' is read as unset, as Nova's compute \
                         reads it; Nova's API (microversion 2.86 and later) refuses values below 1"
                    ));
                }
                continue;
            }
            let limits: &mut Limits = if kind == "flavor extra spec" {
                &mut out.topology.flavor
            } else {
                &mut out.topology.image
            };
            match name {
                "cpu_sockets" => limits.preferred.sockets = n,
                "cpu_cores" => limits.preferred.cores = n,
                "cpu_threads" => limits.preferred.threads = n,
                "cpu_max_sockets" => limits.maximum.sockets = n,
                "cpu_max_cores" => limits.maximum.cores = n,
                _ => limits.maximum.threads = n,
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn reads_topology_and_traits() {
        let p = parse_specs(
            &s(&["hw:cpu_max_sockets=2", "trait:HW_CPU_X86_AVX2=required"]),
            &s(&["hw_cpu_threads=2"]),
        )
        .unwrap();
        assert_eq!(p.topology.flavor.maximum.sockets, 2);
        assert_eq!(p.topology.image.preferred.threads, 2);
        assert_eq!(p.required_features, ["avx2"]);
    }

    #[test]
    fn integers_as_nova_reads_them() {
        assert_eq!(nova_int(" 4 "), Some(4));
        assert_eq!(nova_int("+4"), Some(4));
        assert_eq!(nova_int("0"), Some(0));
        assert_eq!(nova_int("4294967296"), Some(u32::MAX));
        assert_eq!(nova_int("-1"), None);
        assert_eq!(nova_int("1_0"), None);
        assert_eq!(nova_int(""), None);
        let p = parse_specs(&s(&["hw:cpu_sockets=0"]), &s(&["hw_cpu_cores=0"])).unwrap();
        assert!(!p.has_topology());
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn bad_specs_name_the_key() {
        assert_eq!(
            parse_specs(&s(&["hw:cpu_socket=2"]), &[]).unwrap_err().to_string(),
            "unknown flavor extra spec 'hw:cpu_socket'; did you mean 'hw:cpu_sockets', 'hw:cpu_cores'?"
        );
        assert_eq!(
            parse_specs(&s(&["hw:cpu_sockets=-1"]), &[])
                .unwrap_err()
                .to_string(),
            "flavor extra spec hw:cpu_sockets='-1' must be an integer of 0 (unset) or more"
        );
        assert_eq!(
            parse_specs(&[], &s(&["hw_cpu_cores=two"]))
                .unwrap_err()
                .to_string(),
            "image property hw_cpu_cores='two' must be an integer of 0 (unset) or more"
        );
        assert_eq!(
            parse_specs(&s(&["hw:cpu_sockets"]), &[])
                .unwrap_err()
                .to_string(),
            "flavor extra spec 'hw:cpu_sockets' is not KEY=VALUE"
        );
    }
}
