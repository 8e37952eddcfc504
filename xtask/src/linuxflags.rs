//! `import-linux-flags`: the Linux kernel's x86 feature flags as a table.
//!
//! The kernel keeps each processor capability as a bit of an array of 32-bit
//! words (`x86_capability`). `arch/x86/include/asm/cpufeatures.h` names every
//! bit (`#define X86_FEATURE_AVX2 ( 9*32+ 5) /* "avx2" ... */`) and says
//! what `/proc/cpuinfo` calls it; the `enum cpuid_leafs` of
//! `arch/x86/include/asm/cpufeature.h` says which CPUID register each word
//! mirrors, or that the word is Linux's own (`CPUID_LNX_n`: synthetic or
//! scattered bits, no CPUID register behind them).
//!
//! Two conventions name the cpuinfo string. Before Linux 6.12 a flag without
//! a quoted string shows as its lowercased macro suffix, and `""` hides it;
//! from 6.12 on only a quoted string shows, and a flag without one is
//! hidden. A file that hides any flag with `""` follows the older one.
//!
//! Only facts are taken (names, word and bit numbers); the generated file
//! says which kernel they come from, read from the tree's top `Makefile`.

use std::fmt::Write as _;
use std::path::Path;

/// One `X86_FEATURE_*` definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flag {
    /// The macro name without `X86_FEATURE_`.
    pub symbol: String,
    /// The capability word.
    pub word: u32,
    /// The bit in the word.
    pub bit: u32,
    /// The name `/proc/cpuinfo` shows, `None` when hidden.
    pub name: Option<String>,
}

/// What a capability word mirrors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word {
    /// A CPUID register: leaf, subleaf, register name.
    Cpuid(u32, u32, &'static str),
    /// A Linux-defined word: synthetic or scattered bits.
    Linux,
}

/// The CPUID register behind each `enum cpuid_leafs` name the kernel has
/// used (facts from cpufeature.h; `CPUID_LNX_n` are Linux-defined words).
fn word_of(name: &str) -> Option<Word> {
    Some(match name {
        "CPUID_1_EDX" => Word::Cpuid(0x1, 0, "Edx"),
        "CPUID_8000_0001_EDX" => Word::Cpuid(0x8000_0001, 0, "Edx"),
        "CPUID_8086_0001_EDX" => Word::Cpuid(0x8086_0001, 0, "Edx"),
        "CPUID_1_ECX" => Word::Cpuid(0x1, 0, "Ecx"),
        "CPUID_C000_0001_EDX" => Word::Cpuid(0xc000_0001, 0, "Edx"),
        "CPUID_8000_0001_ECX" => Word::Cpuid(0x8000_0001, 0, "Ecx"),
        "CPUID_7_0_EBX" => Word::Cpuid(0x7, 0, "Ebx"),
        "CPUID_D_1_EAX" => Word::Cpuid(0xd, 1, "Eax"),
        "CPUID_7_1_EAX" => Word::Cpuid(0x7, 1, "Eax"),
        "CPUID_8000_0008_EBX" => Word::Cpuid(0x8000_0008, 0, "Ebx"),
        "CPUID_6_EAX" => Word::Cpuid(0x6, 0, "Eax"),
        "CPUID_8000_000A_EDX" => Word::Cpuid(0x8000_000a, 0, "Edx"),
        "CPUID_7_ECX" => Word::Cpuid(0x7, 0, "Ecx"),
        "CPUID_8000_0007_EBX" => Word::Cpuid(0x8000_0007, 0, "Ebx"),
        "CPUID_7_EDX" => Word::Cpuid(0x7, 0, "Edx"),
        "CPUID_8000_001F_EAX" => Word::Cpuid(0x8000_001f, 0, "Eax"),
        "CPUID_8000_0021_EAX" => Word::Cpuid(0x8000_0021, 0, "Eax"),
        "CPUID_8000_0021_ECX" => Word::Cpuid(0x8000_0021, 0, "Ecx"),
        // Linux-defined words: synthetic and scattered bits.
        "CPUID_LNX_1" | "CPUID_LNX_2" | "CPUID_LNX_3" | "CPUID_LNX_4" | "CPUID_LNX_5"
        | "CPUID_LNX_6" | "CPUID_LNX_7" => Word::Linux,
        _ => return None,
    })
}

/// The names of `enum cpuid_leafs`, in order (word 0 first).
///
/// # Errors
/// No such enum, or a name the importer has no fact for.
pub fn parse_words(text: &str) -> Result<Vec<(String, Word)>, String> {
    let start = text
        .find("enum cpuid_leafs")
        .ok_or("no 'enum cpuid_leafs' in cpufeature.h")?;
    let body = &text[start..];
    let open = body.find('{').ok_or("enum cpuid_leafs has no body")?;
    let close = body.find('}').ok_or("enum cpuid_leafs is not closed")?;
    let mut words = Vec::new();
    for entry in body[open + 1..close].split(',') {
        let name = entry.split('=').next().unwrap_or("").trim();
        if name.is_empty() || name == "NR_CPUID_WORDS" {
            continue;
        }
        let word = word_of(name).ok_or_else(|| {
            format!("enum cpuid_leafs: '{name}' is not a CPUID word the importer knows")
        })?;
        words.push((name.to_string(), word));
    }
    Ok(words)
}

/// Every `X86_FEATURE_*` of cpufeatures.h, in file order.
///
/// # Errors
/// A definition whose position cannot be read.
pub fn parse_flags(text: &str) -> Result<Vec<Flag>, String> {
    let old_convention = text
        .lines()
        .any(|l| l.trim_start().starts_with("#define X86_FEATURE_") && l.contains("/* \"\""));
    let mut flags = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("#define X86_FEATURE_") else {
            continue;
        };
        let at = |what: &str| format!("cpufeatures.h:{}: {what}: {}", n + 1, line.trim());
        let symbol: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let rest = rest[symbol.len()..].trim_start();
        let Some(pos) = rest.strip_prefix('(') else {
            return Err(at("expected '(word*32+bit)'"));
        };
        let close = pos.find(')').ok_or_else(|| at("unclosed '('"))?;
        let expr: String = pos[..close]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let (word, bit) = expr
            .split_once("*32+")
            .and_then(|(w, b)| Some((w.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
            .ok_or_else(|| at("expected '(word*32+bit)'"))?;
        if bit > 31 {
            return Err(at("bit above 31"));
        }
        let comment = pos[close + 1..]
            .trim_start()
            .strip_prefix("/*")
            .map(str::trim_start);
        let quoted = comment.and_then(|c| {
            let c = c.strip_prefix('"')?;
            c.find('"').map(|end| c[..end].to_string())
        });
        let name = match (quoted, old_convention) {
            (Some(q), _) if q.is_empty() => None,
            (Some(q), _) => Some(q),
            (None, true) => Some(symbol.to_ascii_lowercase()),
            (None, false) => None,
        };
        flags.push(Flag {
            symbol,
            word,
            bit,
            name,
        });
    }
    if flags.is_empty() {
        return Err("no X86_FEATURE_ definitions in cpufeatures.h".into());
    }
    Ok(flags)
}

/// `Linux VERSION.PATCHLEVEL.SUBLEVEL[EXTRAVERSION]` from a kernel tree's
/// top Makefile.
pub fn kernel_version(makefile: &str) -> Option<String> {
    let value = |key: &str| {
        makefile.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let (v, p, s) = (value("VERSION")?, value("PATCHLEVEL")?, value("SUBLEVEL")?);
    let extra = value("EXTRAVERSION").unwrap_or_default();
    Some(format!("Linux {v}.{p}.{s}{extra}"))
}

/// The generated Rust file.
///
/// # Errors
/// A flag in a word the enum does not list, or a cpuinfo name used twice.
pub fn generate(kernel: &str, words: &[(String, Word)], flags: &[Flag]) -> Result<String, String> {
    let mut names: Vec<&str> = flags.iter().filter_map(|f| f.name.as_deref()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("cpuinfo name '{}' is defined twice", w[0]));
    }
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "// @generated by `cargo xtask import-linux-flags`; do not edit by hand."
    );
    let _ = writeln!(w, "//");
    let _ = writeln!(
        w,
        "// The x86 CPU feature flags of the Linux kernel: each X86_FEATURE_* capability bit"
    );
    let _ = writeln!(
        w,
        "// (word and bit) and the name /proc/cpuinfo shows for it, from"
    );
    let _ = writeln!(
        w,
        "// arch/x86/include/asm/cpufeatures.h, and the CPUID register each word mirrors, from"
    );
    let _ = writeln!(
        w,
        "// the `enum cpuid_leafs` of arch/x86/include/asm/cpufeature.h. The Linux kernel is"
    );
    let _ = writeln!(
        w,
        "// GPL-2.0 (https://www.kernel.org); only facts are kept here: names and bit positions."
    );
    let _ = writeln!(w, "// Kernel: {kernel}");
    let _ = writeln!(w);
    let _ = writeln!(w, "use cpumodel_cpudata::Register::{{Eax, Ebx, Ecx, Edx}};");
    let _ = writeln!(w);
    let _ = writeln!(w, "use super::CapabilityWord::{{Cpuid, Linux}};");
    let _ = writeln!(w, "use super::{{CapabilityWord, LinuxFlag}};");
    let _ = writeln!(w);
    let _ = writeln!(w, "pub(super) const KERNEL: &str = {kernel:?};");
    let _ = writeln!(w);
    let _ = writeln!(w, "pub(super) const WORDS: &[CapabilityWord] = &[");
    for (i, (name, word)) in words.iter().enumerate() {
        match word {
            Word::Cpuid(leaf, sub, reg) => {
                let _ = writeln!(w, "    Cpuid({leaf:#x}, {sub:#x}, {reg}), // {i}: {name}");
            }
            Word::Linux => {
                let _ = writeln!(w, "    Linux, // {i}: {name}");
            }
        }
    }
    let _ = writeln!(w, "];");
    let _ = writeln!(w);
    let _ = writeln!(w, "pub(super) const FLAGS: &[LinuxFlag] = &[");
    for f in flags {
        if f.word as usize >= words.len() {
            return Err(format!(
                "X86_FEATURE_{} is in word {}, but enum cpuid_leafs has {} words",
                f.symbol,
                f.word,
                words.len()
            ));
        }
        let _ = writeln!(
            w,
            "    LinuxFlag {{ symbol: {:?}, word: {}, bit: {}, name: {:?} }},",
            f.symbol, f.word, f.bit, f.name
        );
    }
    let _ = writeln!(w, "];");
    Ok(out)
}

/// Reads `cpufeatures.h`, `cpufeature.h` next to it and the kernel tree's
/// Makefile, and writes `crates/map/src/linux/flags.rs`.
///
/// # Errors
/// Unreadable or unexpected files.
pub fn import(header: &Path) -> Result<std::path::PathBuf, String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let flags = parse_flags(&read(header)?)?;
    let dir = header.parent().unwrap_or(Path::new("."));
    let words = parse_words(&read(&dir.join("cpufeature.h"))?)?;
    // arch/x86/include/asm/ -> the tree's top.
    let makefile = dir.join("../../../../Makefile");
    let kernel = kernel_version(&read(&makefile)?)
        .ok_or_else(|| format!("{}: no VERSION/PATCHLEVEL/SUBLEVEL", makefile.display()))?;
    let text = generate(&kernel, &words, &flags)?;
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/map/src/linux/flags.rs");
    std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_cpuinfo_name_conventions() {
        let new = "#define X86_FEATURE_FPU\t\t( 0*32+ 0) /* \"fpu\" Onboard FPU */\n\
                   #define X86_FEATURE_OSXSAVE\t( 4*32+27) /* XSAVE enabled in the OS */\n\
                   #define X86_FEATURE_ZEN\t\t(7*32+28) /* \"\" no space */\n";
        // A `""` makes it the old convention: unquoted flags show their symbol.
        let flags = parse_flags(new).unwrap();
        assert_eq!(flags[0].name.as_deref(), Some("fpu"));
        assert_eq!(flags[1].name.as_deref(), Some("osxsave"));
        assert_eq!(
            (flags[2].word, flags[2].bit, flags[2].name.clone()),
            (7, 28, None)
        );
        let flags = parse_flags(&new.replace("\"\" no space", "no space")).unwrap();
        assert_eq!(flags[1].name, None);
        assert_eq!(flags[2].name, None);
        assert!(parse_flags("#define X86_FEATURE_X (1*32)").is_err());
    }

    #[test]
    fn reads_the_word_enum_and_the_version() {
        let words = parse_words(
            "enum cpuid_leafs\n{\n\tCPUID_1_EDX = 0,\n\tCPUID_LNX_1,\n\tNR_CPUID_WORDS,\n};",
        )
        .unwrap();
        assert_eq!(
            words,
            [
                ("CPUID_1_EDX".to_string(), Word::Cpuid(1, 0, "Edx")),
                ("CPUID_LNX_1".to_string(), Word::Linux)
            ]
        );
        assert!(parse_words("enum cpuid_leafs { CPUID_99_EAX };").is_err());
        assert_eq!(
            kernel_version("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 118\nEXTRAVERSION =\n")
                .as_deref(),
            Some("Linux 6.12.118")
        );
    }
}
