//! The one error type of the binary (every library error, plus file
//! access), and the one-line form of clap's usage errors.
//!
//! Every error cpumodel reports is one line on stderr,
//! `cpumodel: error: ...`, with exit code 2 and nothing on stdout, so a
//! script can show it as it is. clap's own rendering of a usage error spans
//! several lines (the message, a tip, the usage, a pointer to `--help`);
//! [`usage_line`] keeps its message and folds clap's suggestion or list of
//! valid values into the same line.

use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Anything that makes a command fail (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read or written.
    #[error("{}: {action}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// `cannot read` or `cannot write`.
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A CPU map could not be loaded.
    #[error(transparent)]
    Map(#[from] cpumodel_map::LoadMapError),
    /// A name is unknown.
    #[error(transparent)]
    Name(#[from] cpumodel_map::UnknownName),
    /// A definition could not be resolved.
    #[error(transparent)]
    Op(#[from] cpumodel_cpudef::OpError),
    /// A document KubeVirt's node-labeller could not read.
    #[error(transparent)]
    Kubevirt(#[from] cpumodel_kubevirt::KubevirtError),
    /// A Proxmox VE CPU setting is invalid or has no Proxmox form.
    #[error(transparent)]
    Proxmox(#[from] cpumodel_policy::proxmox::ProxmoxError),
    /// An x86-64 level name is unknown.
    #[error(transparent)]
    Level(#[from] cpumodel_map::UnknownLevel),
    /// An XML input is malformed or invalid.
    #[error(transparent)]
    Input(#[from] cpumodel_cpudef::InputError),
    /// The KVM device could not be probed.
    #[error(transparent)]
    Kvm(#[from] cpumodel_kvm::KvmProbeError),
    /// The KVM guest of `verify` could not run.
    #[error(transparent)]
    KvmRun(#[from] cpumodel_kvm::KvmRunError),
    /// QMP replies are malformed or incomplete.
    #[error(transparent)]
    Qmp(#[from] cpumodel_qemu::QmpError),
    /// Decoding failed; the string names the input.
    #[error("{input}: {source}")]
    Decode {
        /// The input's name.
        input: String,
        /// The cause.
        #[source]
        source: cpumodel_cpudef::DecodeError,
    },
    /// A topology cannot exist.
    #[error(transparent)]
    Topology(#[from] cpumodel_cpudef::TopologyError),
    /// A guest CPU policy is invalid.
    #[error(transparent)]
    Policy(#[from] cpumodel_policy::PolicyError),
    /// A nova.conf is invalid.
    #[error(transparent)]
    NovaConf(#[from] cpumodel_policy::NovaConfError),
    /// A Nova question cannot be answered for this host and configuration.
    #[error(transparent)]
    Nova(#[from] cpumodel_nova::NovaError),
    /// A document is not a host CPU the fleet can store.
    #[error(transparent)]
    Report(#[from] cpumodel_fleet::ReportError),
    /// A fleet question cannot be answered.
    #[error(transparent)]
    Plan(#[from] cpumodel_fleet::PlanError),
    /// The fleet store failed.
    #[error(transparent)]
    Store(#[from] cpumodel_store::StoreError),
    /// The probe guest could not run.
    #[error(transparent)]
    Probe(#[from] cpumodel_probe::ProbeError),
    /// The request cannot be served as asked.
    #[error("{0}")]
    Usage(String),
    /// An input is larger than the input size limit.
    #[error("{}: larger than the input size limit of {limit} bytes (set {MAX_INPUT_ENV} to change it)", path.display())]
    TooLarge {
        /// The file (`-` for standard input).
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// An input is not UTF-8 text.
    #[error("{}: not UTF-8: invalid byte 0x{byte:02x} at byte offset {offset} (line {line}, column {col})", path.display())]
    NotUtf8 {
        /// The file (`-` for standard input).
        path: PathBuf,
        /// The offset of the first invalid byte.
        offset: usize,
        /// Its 1-based line.
        line: usize,
        /// Its 1-based column, in characters.
        col: usize,
        /// The byte.
        byte: u8,
    },
}

/// The default of [`max_input_bytes`]: 1 GiB, several times the largest
/// fleet file (a million `<cpu>` elements is about 400 MB).
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 1 << 30;

/// The environment variable that changes [`max_input_bytes`].
pub const MAX_INPUT_ENV: &str = "CPUMODEL_MAX_INPUT";

/// The largest input file cpumodel reads: `CPUMODEL_MAX_INPUT` (bytes, or
/// with a `K`, `M` or `G` suffix, powers of 1024), else
/// [`DEFAULT_MAX_INPUT_BYTES`].
///
/// # Errors
/// A value that is not such a size.
pub fn max_input_bytes() -> Result<u64, CliError> {
    let Some(value) = std::env::var_os(MAX_INPUT_ENV) else {
        return Ok(DEFAULT_MAX_INPUT_BYTES);
    };
    let text = value.to_string_lossy();
    let t = text.trim();
    let (digits, shift) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 10),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 20),
        Some(b'g' | b'G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "{MAX_INPUT_ENV}='{text}' is not a size (a positive number of bytes, or with a K, M or G suffix)"
            ))
        })
}

/// Reads a whole file, naming it on failure; at most [`max_input_bytes`].
///
/// # Errors
/// The file cannot be read, is larger than the limit, or is not UTF-8 (the
/// message gives the offset of the first invalid byte).
pub fn read(path: &Path) -> Result<String, CliError> {
    let file = std::fs::File::open(path).map_err(|source| CliError::File {
        path: path.to_path_buf(),
        action: "cannot read",
        source,
    })?;
    read_from(path, file)
}

/// [`read`] for a CPU document: a `<cpudata>` dump that lists a CPUID leaf
/// or MSR more than once gets a warning (its values are merged, as libvirt
/// does).
///
/// # Errors
/// As [`read`].
pub fn read_cpu_document(path: &Path) -> Result<String, CliError> {
    let text = read(path)?;
    for (key, n) in cpumodel_cpudata::duplicate_items(&text) {
        warn(&format_args!(
            "{}: {key} is listed {n} times; its values are merged (OR), as libvirt does",
            path.display()
        ));
    }
    Ok(text)
}

/// Reads standard input (named `-`), as [`read`] reads a file.
///
/// # Errors
/// As [`read`].
pub fn read_stdin() -> Result<String, CliError> {
    read_from(Path::new("-"), std::io::stdin().lock())
}

/// Reads `reader` to its end, at most [`max_input_bytes`], as UTF-8.
fn read_from(path: &Path, reader: impl std::io::Read) -> Result<String, CliError> {
    use std::io::Read as _;
    let limit = max_input_bytes()?;
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| CliError::File {
            path: path.to_path_buf(),
            action: "cannot read",
            source,
        })?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(CliError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let offset = e.utf8_error().valid_up_to();
        let before = &bytes[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let col = std::str::from_utf8(&before[line_start..]).map_or(0, |s| s.chars().count()) + 1;
        CliError::NotUtf8 {
            path: path.to_path_buf(),
            offset,
            line,
            col,
            byte: bytes[offset],
        }
    })
}

/// `message` as one printable line: line breaks, tabs, escape sequences and
/// every other control or invisible formatting character (C0, DEL, C1,
/// bidirectional overrides, line and paragraph separators, byte order mark)
/// written as `\n`, `\r`, `\t`, `\xHH` or `\u{HHHH}`. Every message
/// cpumodel prints goes through here, so text from an input can never
/// break the one-line promise or reach the terminal as a control sequence.
pub fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() && u32::from(c) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}' => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Prints a warning: one line on stderr, escaped as [`one_line`].
pub fn warn(message: &dyn std::fmt::Display) {
    eprintln!("cpumodel: warning: {}", one_line(&message.to_string()));
}

/// The one-line message of a clap usage error (without the `cpumodel:
/// error: ` prefix): clap's first line, the missing arguments when they
/// are what is wrong, and clap's closest valid value, argument or
/// subcommand ("did you mean") or the list of valid values.
pub fn usage_line(e: &clap::Error) -> String {
    let strings = |kind: ContextKind| -> Vec<String> {
        match e.get(kind) {
            Some(ContextValue::String(s)) => vec![s.clone()],
            Some(ContextValue::Strings(v)) => v.clone(),
            _ => Vec::new(),
        }
    };
    let quoted = |v: &[String]| {
        v.iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    // A bad topology count is the same one line in every command.
    if let Some(message) = crate::topology_args::one_line_error(e) {
        return message;
    }
    let mut line = match e.kind() {
        ErrorKind::MissingRequiredArgument => format!(
            "missing required argument {}",
            strings(ContextKind::InvalidArg).join(", ")
        ),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            "no command given; see 'cpumodel --help'".to_string()
        }
        // From the raw values: clap's rendering drops what looks like a
        // terminal escape sequence from them, which would misquote the input.
        ErrorKind::InvalidValue if !strings(ContextKind::InvalidArg).is_empty() => format!(
            "invalid value '{}' for '{}'",
            strings(ContextKind::InvalidValue).join(""),
            strings(ContextKind::InvalidArg).join("")
        ),
        ErrorKind::InvalidSubcommand if !strings(ContextKind::InvalidSubcommand).is_empty() => {
            format!(
                "unrecognized subcommand '{}'",
                strings(ContextKind::InvalidSubcommand).join("")
            )
        }
        ErrorKind::UnknownArgument if !strings(ContextKind::InvalidArg).is_empty() => format!(
            "unexpected argument '{}' found",
            strings(ContextKind::InvalidArg).join("")
        ),
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        }
    };
    let valid = strings(ContextKind::ValidValue);
    if !valid.is_empty() {
        line.push_str(&format!(" (possible values: {})", valid.join(", ")));
    }
    let suggested: Vec<String> = [
        ContextKind::SuggestedSubcommand,
        ContextKind::SuggestedArg,
        ContextKind::SuggestedValue,
    ]
    .into_iter()
    .flat_map(strings)
    .collect();
    if !suggested.is_empty() {
        line.push_str(&format!("; did you mean {}?", quoted(&suggested)));
    }
    if e.kind() == ErrorKind::MissingRequiredArgument {
        if let Some(usage) = e.get(ContextKind::Usage) {
            let usage = usage.to_string();
            let usage = usage.trim().trim_start_matches("Usage:").trim();
            line.push_str(&format!(" (usage: {usage})"));
        }
    }
    line
}
