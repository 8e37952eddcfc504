//! One function per subcommand. Each returns the complete output text, so a
//! failure never leaves partial output behind.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cpumodel_cpudata::{format_cpudata, CpuidKey};
use cpumodel_cpudef::{
    add_cpus_to_baseline, decode, host_features_from_cpudata, parse_known_cpus, AddCpusError,
    BaselineAccumulator, BaselineOptions, Comparison, CpuDef, CpuFeatures, CpuKind, DecodeOptions,
    Scoring,
};
use cpumodel_kvm::machine::HOST_CPUID_AVAILABLE;
use cpumodel_kvm::{KvmProbeError, MachineView, MachineViewError, ViewSource};
use cpumodel_map::{load_cpu_map, Database, ModelId};
use cpumodel_qemu::QemuNames;
use serde_json::json;

use crate::cli::{Args, Command, Format, GuestArgs, ScoringArg};
use crate::error::{read, CliError};

/// A command's whole output and exit code.
pub struct Output {
    pub text: String,
    pub code: u8,
}

impl Output {
    fn ok(text: String) -> Self {
        Output { text, code: 0 }
    }
}

/// Runs the command `args` describes.
pub fn run(args: &Args) -> Result<Output, CliError> {
    // The process ends right after the command: freeing the database's few
    // hundred allocations one by one would only cost time.
    let db = std::mem::ManuallyDrop::new(match &args.cpu_map {
        Some(dir) => load_cpu_map(dir)?,
        None => Database::embedded(),
    });
    let db: &Database = &db;
    let format = crate::cpuid_cmd::common_format(args)?;
    if format == Some(Format::Qemu) && !matches!(args.command, Command::Guest(_)) {
        return Err(CliError::Usage(
            "--format qemu applies to the guest command only".into(),
        ));
    }
    match &args.command {
        Command::Models => models(db, format),
        Command::Model { name } => model(db, name, format),
        Command::Decode {
            guest,
            qemu_models,
            qemu_replies,
            qemu_aliases,
            scoring,
            cpudata,
        } => {
            let names = if *qemu_aliases {
                QemuNames::WithAliases
            } else {
                QemuNames::Libvirt
            };
            let scoring = match scoring {
                ScoringArg::Libvirt => Scoring::Libvirt,
                ScoringArg::Intended => Scoring::Intended,
            };
            let kind = if *guest {
                CpuKind::Guest
            } else {
                CpuKind::Host
            };
            let cpu = match (qemu_replies, cpudata) {
                (Some(replies), _) => decode_qemu_replies(db, replies, kind, names, scoring)?,
                (None, Some(file)) => {
                    decode_file(db, file, kind, qemu_models.as_deref(), names, scoring)?
                }
                (None, None) => {
                    return Err(CliError::Usage(
                        "decode needs a CPUDATA.xml file or --qemu-replies".into(),
                    ))
                }
            };
            render_cpu(&cpu, format)
        }
        Command::Dump { output, kvm } => dump(output.as_deref(), *kvm, format),
        Command::Host { raw } => host(db, *raw, format),
        Command::Domcaps => domcaps(db, format),
        Command::Compare { host, cpu } => compare(db, host, cpu, format),
        Command::Baseline {
            expand_features,
            migratable,
            inputs,
        } => {
            let opts = BaselineOptions {
                expand_features: *expand_features,
                migratable: *migratable,
            };
            baseline(db, inputs, opts, format)
        }
        Command::Guest(g) => guest(db, g, format),
        Command::Cpuid(c) => crate::cpuid_cmd::run(db, c, args.format),
        Command::Verify(v) => crate::verify_cmd::run(db, v, format),
        Command::Expand { file } => {
            let cpu = first_cpu(db, file)?;
            let expanded = cpumodel_cpudef::expand(db, &cpu)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            render_cpu(&expanded, format)
        }
    }
}

fn json_text(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON values always serialize");
    s.push('\n');
    s
}

fn render_cpu(cpu: &CpuDef, format: Option<Format>) -> Result<Output, CliError> {
    match format.unwrap_or(Format::Xml) {
        Format::Xml | Format::Text | Format::Qemu => Ok(Output::ok(cpu.to_xml())),
        Format::Json => Ok(Output::ok(json_text(
            &serde_json::to_value(cpu).expect("CpuDef serializes"),
        ))),
    }
}

fn models(db: &Database, format: Option<Format>) -> Result<Output, CliError> {
    let vendor = |m: &cpumodel_map::Model| m.vendor.map(|v| db.vendor(v).name.to_string());
    let ancestor = |m: &cpumodel_map::Model| m.ancestor.map(|a| db.model(a).name.to_string());
    match format.unwrap_or(Format::Text) {
        Format::Json => {
            let list: Vec<_> = db
                .models()
                .iter()
                .map(|m| json!({"name": m.name, "vendor": vendor(m), "ancestor": ancestor(m), "features": m.features.len()}))
                .collect();
            Ok(Output::ok(json_text(&json!(list))))
        }
        Format::Xml => Err(CliError::Usage(
            "models has no XML form; use --format text or json".into(),
        )),
        Format::Text | Format::Qemu => {
            let width = db
                .models()
                .iter()
                .map(|m| m.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            // Ancestors are model names, but the column is at least as wide as its header.
            let awidth = width.max("ANCESTOR".len());
            let mut out = format!(
                "{:<width$}  {:<20}  {:<awidth$}  FEATURES\n",
                "NAME", "VENDOR", "ANCESTOR"
            );
            for m in db.models() {
                let _ = writeln!(
                    out,
                    "{:<width$}  {:<20}  {:<awidth$}  {}",
                    m.name,
                    vendor(m).unwrap_or_else(|| "-".into()),
                    ancestor(m).unwrap_or_else(|| "-".into()),
                    m.features.len()
                );
            }
            Ok(Output::ok(out))
        }
    }
}

fn model(db: &Database, name: &str, format: Option<Format>) -> Result<Output, CliError> {
    let id: ModelId = db.find_model(name)?;
    let m = db.model(id);
    let sigs: Vec<String> = m
        .signatures
        .iter()
        .map(|s| match s.steppings {
            None => format!("family {} model {}", s.family, s.model),
            Some(bits) => {
                let list: Vec<String> = (0..16)
                    .filter(|b| bits & (1 << b) != 0)
                    .map(|b| b.to_string())
                    .collect();
                format!(
                    "family {} model {} stepping {}",
                    s.family,
                    s.model,
                    list.join(",")
                )
            }
        })
        .collect();
    let names = |ids: &[cpumodel_map::FeatureId]| {
        ids.iter()
            .map(|f| db.feature_name(*f).to_string())
            .collect::<Vec<_>>()
    };
    let features: Vec<&str> = db.feature_names(&m.features).collect();
    let vendor = m.vendor.map(|v| db.vendor(v).name.to_string());
    let ancestor = m.ancestor.map(|a| db.model(a).name.to_string());
    match format.unwrap_or(Format::Text) {
        Format::Json => Ok(Output::ok(json_text(&json!({
            "name": m.name,
            "vendor": vendor,
            "ancestor": ancestor,
            "decode": {"host": m.decode_host, "guest": m.decode_guest},
            "signatures": m.signatures.iter().map(|s| json!({
                "family": s.family, "model": s.model,
                "steppings": s.steppings.map(|b| (0..16).filter(|i| b & (1 << i) != 0).collect::<Vec<u32>>()),
            })).collect::<Vec<_>>(),
            "features": features,
            "removed": names(&m.removed),
            "added": names(&m.added),
        })))),
        Format::Xml => {
            let mut cpu = CpuDef::new(CpuKind::Guest);
            cpu.model = Some(m.name.to_string());
            cpu.vendor = vendor;
            for f in &features {
                cpu.set_feature(f, Some(cpumodel_cpudef::Policy::Require));
            }
            Ok(Output::ok(cpu.to_xml()))
        }
        Format::Text | Format::Qemu => {
            let mut out = String::new();
            let _ = writeln!(out, "name:       {}", m.name);
            let _ = writeln!(out, "vendor:     {}", vendor.as_deref().unwrap_or("-"));
            let _ = writeln!(out, "ancestor:   {}", ancestor.as_deref().unwrap_or("-"));
            let decode = match (m.decode_host, m.decode_guest) {
                (true, true) => "host, guest",
                (true, false) => "host",
                (false, true) => "guest",
                (false, false) => "never",
            };
            let _ = writeln!(out, "decode:     {decode}");
            let _ = writeln!(
                out,
                "signatures: {}",
                if sigs.is_empty() {
                    "-".to_string()
                } else {
                    sigs.join("; ")
                }
            );
            let _ = writeln!(out, "removed:    {}", list_or_dash(&names(&m.removed)));
            let _ = writeln!(out, "added:      {}", list_or_dash(&names(&m.added)));
            let _ = writeln!(out, "features ({}):", features.len());
            for f in features {
                let _ = writeln!(out, "  {f}");
            }
            Ok(Output::ok(out))
        }
    }
}

fn list_or_dash(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(" ")
    }
}

fn decode_options<'a>(kind: CpuKind, scoring: Scoring) -> DecodeOptions<'a> {
    let mut opts = DecodeOptions::new(kind);
    opts.scoring = scoring;
    opts
}

fn decode_file(
    db: &Database,
    file: &Path,
    kind: CpuKind,
    qemu_models: Option<&Path>,
    names: QemuNames,
    scoring: Scoring,
) -> Result<CpuDef, CliError> {
    let text = read(file)?;
    let input = file.display().to_string();
    let (_, features) = host_features_from_cpudata(db, &input, &text)?;
    let hv = match qemu_models {
        Some(path) => {
            let name = path.display().to_string();
            let replies = cpumodel_qemu::parse_replies(&name, &read(path)?)?;
            let defs = replies
                .definitions
                .ok_or(cpumodel_qemu::QmpError::MissingReply {
                    file: name,
                    id: "definitions",
                })?;
            Some(cpumodel_qemu::hypervisor_models(db, &defs, names))
        }
        None => None,
    };
    let mut opts = decode_options(kind, scoring);
    opts.hypervisor = hv.as_ref();
    let decoded =
        decode(db, &features, &opts).map_err(|source| CliError::Decode { input, source })?;
    Ok(decoded.to_cpu_def(db, kind))
}

fn decode_qemu_replies(
    db: &Database,
    file: &Path,
    kind: CpuKind,
    names: QemuNames,
    scoring: Scoring,
) -> Result<CpuDef, CliError> {
    let input = file.display().to_string();
    let replies = cpumodel_qemu::parse_replies(&input, &read(file)?)?;
    let exp = replies
        .expansion
        .as_ref()
        .ok_or(cpumodel_qemu::QmpError::MissingReply {
            file: input.clone(),
            id: "model-expansion",
        })?;
    let data = cpumodel_qemu::expansion_to_data(db, &input, exp, names)?;
    let features = CpuFeatures::from_data(db, &data).map_err(|source| CliError::Decode {
        input: format!("{input}: reply 'model-expansion'"),
        source,
    })?;
    let hv = replies
        .definitions
        .as_deref()
        .map(|d| cpumodel_qemu::hypervisor_models(db, d, names));
    let mut opts = decode_options(kind, scoring);
    opts.hypervisor = hv.as_ref();
    let decoded =
        decode(db, &features, &opts).map_err(|source| CliError::Decode { input, source })?;
    Ok(decoded.to_cpu_def(db, kind))
}

/// The KVM device: `/dev/kvm`, or the path in `CPUMODEL_KVM_DEVICE` (which
/// lets tests point the probe at a missing or non-KVM file).
pub(crate) fn kvm_device() -> PathBuf {
    std::env::var_os("CPUMODEL_KVM_DEVICE")
        .filter(|p| !p.is_empty())
        .map_or_else(
            || PathBuf::from(cpumodel_kvm::DEFAULT_DEVICE),
            PathBuf::from,
        )
}

/// What KVM can give a guest, read from the device of [`kvm_device`].
fn kvm_view() -> Result<MachineView, KvmProbeError> {
    MachineView::kvm(&kvm_device())
}

/// The live machine's CPUID, or `what` (a sentence naming the command)
/// when this processor has none.
fn raw_view(what: &str) -> Result<MachineView, CliError> {
    MachineView::raw().map_err(|e| machine_error(e, what))
}

/// A failed read of the live machine, as the command's error.
fn machine_error(e: MachineViewError, what: &str) -> CliError {
    match e {
        MachineViewError::Kvm(e) => e.into(),
        MachineViewError::NoCpuid => CliError::Usage(format!(
            "{what} reads CPUID, which this processor architecture does not have"
        )),
    }
}

fn dump(output: Option<&Path>, kvm: bool, format: Option<Format>) -> Result<Output, CliError> {
    if !kvm && !HOST_CPUID_AVAILABLE {
        return Err(CliError::Usage(
            "dump reads CPUID, which this processor architecture does not have".into(),
        ));
    }
    if format == Some(Format::Text) {
        return Err(CliError::Usage(
            "dump writes libvirt <cpudata> XML or JSON; use --format xml or json".into(),
        ));
    }
    let data = if kvm { kvm_view()? } else { raw_view("dump")? }.data;
    let text = if format == Some(Format::Json) {
        let items: Vec<_> = data
            .nonzero_items()
            .map(|i| match i.key {
                cpumodel_cpudata::ItemKey::Cpuid(CpuidKey { leaf, subleaf }) => json!({
                    "cpuid": {"eax_in": leaf, "ecx_in": subleaf},
                    "eax": i.regs[0], "ebx": i.regs[1], "ecx": i.regs[2], "edx": i.regs[3],
                }),
                cpumodel_cpudata::ItemKey::Msr { index } => json!({
                    "msr": {"index": index}, "eax": i.regs[0], "edx": i.regs[1],
                }),
            })
            .collect();
        json_text(&json!({ "arch": "x86", "items": items }))
    } else {
        format_cpudata(&data)
    };
    match output {
        Some(path) => {
            std::fs::write(path, &text).map_err(|source| CliError::File {
                path: path.to_path_buf(),
                action: "cannot write",
                source,
            })?;
            Ok(Output::ok(String::new()))
        }
        None => Ok(Output::ok(text)),
    }
}

/// Text that is safe inside an XML comment (no `--`).
fn comment_safe(s: &str) -> String {
    let mut out = s.to_string();
    while out.contains("--") {
        out = out.replace("--", "-\u{2010}");
    }
    out
}

fn host(db: &Database, raw: bool, format: Option<Format>) -> Result<Output, CliError> {
    // The hypervisor view unless asked for raw, or unless KVM is unusable
    // (then say why).
    let machine = if raw {
        raw_view("host")?
    } else {
        MachineView::detect(&kvm_device()).map_err(|e| machine_error(e, "host"))?
    };
    let (view, comment, data, host_model) = match machine.source {
        ViewSource::Kvm { device } => {
            let input = format!("KVM at {}", device.display());
            let caps = cpumodel_cpudef::domain_cpu_caps(db, &machine.data).map_err(|source| {
                CliError::Decode {
                    input: input.clone(),
                    source,
                }
            })?;
            let view =
                json!({"view": "hypervisor (KVM)", "kvm_device": device.display().to_string()});
            let comment = format!(
                "hypervisor: what KVM at {} can give a guest",
                comment_safe(&device.display().to_string())
            );
            (view, comment, (input, machine.data), Some(caps.host_model))
        }
        ViewSource::Raw { kvm_unusable } => {
            let (view, comment) = match kvm_unusable {
                Some(e) => (
                    json!({"view": "raw CPUID", "kvm_unusable": e.reason()}),
                    format!(
                        "raw CPUID of this machine (KVM not usable: {})",
                        comment_safe(&e.reason())
                    ),
                ),
                None => (
                    json!({"view": "raw CPUID"}),
                    "raw CPUID of this machine".to_string(),
                ),
            };
            (
                view,
                comment,
                ("this machine's CPUID".to_string(), machine.data),
                None,
            )
        }
    };
    let (input, data) = data;
    let features = CpuFeatures::from_data(db, &data).map_err(|source| CliError::Decode {
        input: input.clone(),
        source,
    })?;
    let host = decode(db, &features, &DecodeOptions::new(CpuKind::Host))
        .map_err(|source| CliError::Decode {
            input: input.clone(),
            source,
        })?
        .to_cpu_def(db, CpuKind::Host);
    let guest = match host_model {
        Some(cpu) => cpu,
        None => decode(db, &features, &DecodeOptions::new(CpuKind::Guest))
            .map_err(|source| CliError::Decode { input, source })?
            .to_cpu_def(db, CpuKind::Guest),
    };
    match format.unwrap_or(Format::Text) {
        Format::Json => {
            let mut v = view;
            v["host"] = serde_json::to_value(&host).expect("CpuDef serializes");
            v["host_model"] = serde_json::to_value(&guest).expect("CpuDef serializes");
            Ok(Output::ok(json_text(&v)))
        }
        Format::Xml | Format::Text | Format::Qemu => {
            let mut out = format!("<!-- view: {comment} -->\n<!-- host CPU -->\n");
            out.push_str(&host.to_xml());
            out.push_str("<!-- host-model guest CPU -->\n");
            out.push_str(&guest.to_xml());
            Ok(Output::ok(out))
        }
    }
}

fn domcaps(db: &Database, format: Option<Format>) -> Result<Output, CliError> {
    if format == Some(Format::Text) {
        return Err(CliError::Usage(
            "domcaps has no text form; use --format xml or json".into(),
        ));
    }
    let device = kvm_device();
    let view = MachineView::kvm(&device)?;
    let caps =
        cpumodel_cpudef::domain_cpu_caps(db, &view.data).map_err(|source| CliError::Decode {
            input: format!("KVM at {}", device.display()),
            source,
        })?;
    match format.unwrap_or(Format::Xml) {
        Format::Json => {
            let enums = |name: &str| json!({ name: ["on", "off"] });
            let models: Vec<_> = caps
                .custom
                .iter()
                .map(|m| {
                    json!({
                        "name": m.name,
                        "usable": if m.usable { "yes" } else { "no" },
                        "vendor": m.vendor.as_deref().unwrap_or("unknown"),
                        "blockers": m.blockers,
                    })
                })
                .collect();
            Ok(Output::ok(json_text(&json!({
                "domainCapabilities": {
                    "domain": "kvm",
                    "arch": "x86_64",
                    "cpu": {
                        "modes": [
                            {"name": "host-passthrough", "supported": "yes",
                             "enums": enums("hostPassthroughMigratable")},
                            {"name": "maximum", "supported": "yes",
                             "enums": enums("maximumMigratable")},
                            {"name": "host-model", "supported": "yes", "cpu": caps.host_model},
                            {"name": "custom", "supported": if models.is_empty() { "no" } else { "yes" },
                             "models": models},
                        ]
                    }
                }
            }))))
        }
        Format::Xml | Format::Text | Format::Qemu => Ok(Output::ok(caps.to_xml())),
    }
}

/// The first CPU definition in a file of any supported shape.
fn first_cpu(db: &Database, file: &Path) -> Result<CpuDef, CliError> {
    let text = read(file)?;
    let mut cpus = parse_known_cpus(db, &file.display().to_string(), &text)?;
    Ok(cpus.remove(0).cpu)
}

fn compare(
    db: &Database,
    host: &Path,
    cpu: &Path,
    format: Option<Format>,
) -> Result<Output, CliError> {
    let h = first_cpu(db, host)?;
    let c = first_cpu(db, cpu)?;
    let resolve = |def: &CpuDef, file: &Path| {
        cpumodel_cpudef::ResolvedCpu::new(db, def)
            .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))
    };
    let r = cpumodel_cpudef::compare_resolved(&h, &resolve(&h, host)?, &c, &resolve(&c, cpu)?);
    let code = if r.result == Comparison::Incompatible {
        1
    } else {
        0
    };
    let blockers: Vec<&str> = r.blockers.iter().map(|f| db.feature_name(*f)).collect();
    let text = match format.unwrap_or(Format::Text) {
        Format::Json => {
            json_text(&json!({"result": r.result, "reason": r.reason, "blockers": blockers}))
        }
        Format::Xml | Format::Qemu => {
            return Err(CliError::Usage(
                "compare has no XML form; use --format text or json".into(),
            ))
        }
        Format::Text => {
            let mut out = format!("{}\n", r.result);
            for b in blockers {
                let _ = writeln!(out, "{b}");
            }
            out
        }
    };
    Ok(Output { text, code })
}

/// Expands directories and glob patterns into a sorted list of files.
fn collect_inputs(inputs: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>, CliError> {
    let mut files = Vec::new();
    for input in inputs {
        let s = input.to_string_lossy();
        if input.is_dir() {
            let entries = std::fs::read_dir(input).map_err(|source| CliError::File {
                path: input.clone(),
                action: "cannot read directory",
                source,
            })?;
            let mut found: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(CliError::Usage(format!(
                    "{}: directory holds no files",
                    input.display()
                )));
            }
            files.extend(found);
        } else if !input.exists() && s.contains(['*', '?', '[']) {
            let paths = glob::glob(&s)
                .map_err(|e| CliError::Usage(format!("{s}: invalid glob pattern: {e}")))?;
            let mut found: Vec<_> = paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(CliError::Usage(format!(
                    "{s}: no file matches this pattern"
                )));
            }
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

fn baseline(
    db: &Database,
    inputs: &[std::path::PathBuf],
    opts: BaselineOptions,
    format: Option<Format>,
) -> Result<Output, CliError> {
    use std::io::IsTerminal as _;
    let files = collect_inputs(inputs)?;
    let progress = std::io::stderr().is_terminal() && files.len() >= 100;
    let mut acc = BaselineAccumulator::default();
    for (i, file) in files.iter().enumerate() {
        if progress && (i % 50 == 0) {
            eprint!("\rcpumodel: reading {}/{} files", i, files.len());
        }
        let text = read(file)?;
        let name = file.display().to_string();
        match add_cpus_to_baseline(&mut acc, db, &name, &text) {
            Ok(()) => {}
            Err(AddCpusError::Input(e)) => return Err(e.into()),
            Err(AddCpusError::Baseline(e)) => {
                // Unknown names are reported at their element, which the
                // checked parse knows; other errors stand as they are.
                parse_known_cpus(db, &name, &text)?;
                return Err(CliError::Usage(e.to_string()));
            }
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    let cpu = acc
        .finish(db, opts)
        .map_err(|e| CliError::Usage(format!("baseline of {} CPUs: {e}", acc.len())))?;
    render_cpu(&cpu, format)
}

fn guest(db: &Database, g: &GuestArgs, format: Option<Format>) -> Result<Output, CliError> {
    use cpumodel_policy::{build, parse_nova_conf, parse_specs, CpuMode, HostCpu, PolicyInput};
    let conf = match &g.nova_conf {
        Some(path) => Some(parse_nova_conf(&path.display().to_string(), &read(path)?)?),
        None => None,
    };
    let mode = match (&g.mode, &conf) {
        (Some(m), _) => CpuMode::parse(m).ok_or_else(|| {
            CliError::Usage(format!(
                "--mode {m}: unknown mode (expected none, host-model, host-passthrough, custom or maximum)"
            ))
        })?,
        (None, Some(c)) => c.effective_mode(),
        (None, None) => CpuMode::HostModel,
    };
    let pick = |cli: &Vec<String>, conf_value: Option<&Vec<String>>| {
        if cli.is_empty() {
            conf_value.cloned().unwrap_or_default()
        } else {
            cli.clone()
        }
    };
    let input = PolicyInput {
        mode,
        // The nova.conf's models belong to its custom mode: a --mode other
        // than custom given on the command line leaves them out.
        models: pick(
            &g.models,
            conf.as_ref()
                .filter(|_| g.mode.is_none() || mode == CpuMode::Custom)
                .map(|c| &c.cpu_models),
        ),
        flags: pick(&g.flags, conf.as_ref().map(|c| &c.extra_flags)),
        required: g.required.clone(),
        vcpus: g.topology.vcpus,
        specs: parse_specs(&g.specs, &g.image_props).map_err(cpumodel_policy::PolicyError::from)?,
        explicit: g.topology.explicit()?,
    };
    let host = match &g.host {
        Some(path) => Some(host_from_file(db, path)?),
        None if mode == CpuMode::HostModel => Some(live_host(db)?),
        None => None,
    };
    let cpu = build(db, &input, host.as_ref())?;
    let def = cpu.to_cpu_def(db);
    let text = match format.unwrap_or(Format::Xml) {
        Format::Xml | Format::Text => def.to_xml(),
        Format::Qemu => format!("{}\n", cpu.qemu_arg(db)),
        Format::Json => json_text(&json!({
            "mode": cpu.mode,
            "cpu": def,
            "qemu": cpu.qemu_arg(db),
        })),
    };
    return Ok(Output::ok(text));

    fn host_from_file(db: &Database, path: &Path) -> Result<HostCpu, CliError> {
        let text = read(path)?;
        let name = path.display().to_string();
        if text.contains("<cpudata") {
            let (_, features) = host_features_from_cpudata(db, &name, &text)?;
            let def = decode(db, &features, &DecodeOptions::new(CpuKind::Host))
                .map_err(|source| CliError::Decode {
                    input: name,
                    source,
                })?
                .to_cpu_def(db, CpuKind::Host);
            return Ok(HostCpu {
                def,
                features: Some(features),
            });
        }
        let mut cpus = parse_known_cpus(db, &name, &text)?;
        Ok(HostCpu {
            def: cpus.remove(0).cpu,
            features: None,
        })
    }

    /// This machine as guests see it: KVM's view when /dev/kvm is usable
    /// (as `cpumodel host` shows), the processor's own CPUID otherwise.
    fn live_host(db: &Database) -> Result<HostCpu, CliError> {
        let view = MachineView::detect(&kvm_device()).map_err(|e| machine_error(e, "guest"))?;
        let input = match &view.source {
            ViewSource::Kvm { device } => format!("what KVM at {} offers", device.display()),
            ViewSource::Raw { .. } => "this machine's CPUID".to_string(),
        };
        let data = view.data;
        let features = CpuFeatures::from_data(db, &data).map_err(|source| CliError::Decode {
            input: input.clone(),
            source,
        })?;
        let def = decode(db, &features, &DecodeOptions::new(CpuKind::Host))
            .map_err(|source| CliError::Decode { input, source })?
            .to_cpu_def(db, CpuKind::Host);
        Ok(HostCpu {
            def,
            features: Some(features),
        })
    }
}
