//! The command-line interface definition: every flag and its help text, in
//! one place.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Decide which CPU a KVM virtual machine sees.
///
/// cpumodel names x86 processors as libvirt CPU models, without a daemon:
/// it decodes CPUID dumps into a model plus features, and shows the live
/// host's model and the host-model guest <cpu> element.
///
/// Exit codes: 0 success, 1 negative answer, 2 error.
#[derive(Debug, Parser)]
#[command(name = "cpumodel", version, about, long_about)]
pub struct Args {
    /// Use this libvirt cpu_map directory instead of the embedded database
    /// (for example /usr/share/libvirt/cpu_map to match the local libvirt).
    #[arg(long, global = true, value_name = "DIR")]
    pub cpu_map: Option<PathBuf>,

    /// Output format; each command has its natural default (XML or a table).
    #[arg(long, global = true, value_enum)]
    pub format: Option<FormatArg>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// libvirt XML.
    Xml,
    /// JSON.
    Json,
    /// Human-readable text.
    Text,
    /// The QEMU `-cpu` argument (guest only).
    Qemu,
}

/// Every value of `--format`: the formats above, and the CPUID table
/// formats of the cpuid command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// libvirt XML.
    Xml,
    /// JSON.
    Json,
    /// Human-readable text.
    Text,
    /// The QEMU `-cpu` argument (guest only).
    Qemu,
    /// KVM's CPUID entry list as JSON (cpuid only).
    KvmJson,
    /// A Firecracker custom CPU template (cpuid only).
    Firecracker,
}

impl FormatArg {
    /// The spelling on the command line.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// Candidate scoring in decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScoringArg {
    /// Exactly libvirt's scoring, quirk included (default).
    Libvirt,
    /// Penalise every disabled feature, as libvirt's comments intend.
    Intended,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every CPU model: name, vendor, ancestor, number of features.
    Models,

    /// Show one model's expanded features and signatures.
    Model {
        /// The model name (case-insensitive).
        name: String,
    },

    /// Decode a <cpudata> dump into a CPU model plus features.
    Decode {
        /// Decode as a guest CPU (features may be disabled) instead of a host CPU.
        #[arg(long)]
        guest: bool,

        /// Only consider the models in this file of QEMU QMP replies
        /// (query-cpu-definitions); their unavailable features count as missing.
        #[arg(long, value_name = "FILE")]
        qemu_models: Option<PathBuf>,

        /// Compute the host-model CPU from QEMU QMP replies (the
        /// "model-expansion" reply of `host`, restricted by "definitions"
        /// when present) instead of a dump.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["qemu_models", "cpudata"])]
        qemu_replies: Option<PathBuf>,

        /// Also match QEMU feature names through the CPU map's qemu aliases
        /// (libvirt does not).
        #[arg(long)]
        qemu_aliases: bool,

        /// Candidate scoring.
        #[arg(long, value_enum, default_value = "libvirt")]
        scoring: ScoringArg,

        /// The <cpudata> dump.
        #[arg(value_name = "CPUDATA.xml", required_unless_present = "qemu_replies")]
        cpudata: Option<PathBuf>,
    },

    /// Write this machine's CPUID leaves as a <cpudata> dump.
    Dump {
        /// Write to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,

        /// Write what KVM can give a guest instead (KVM_GET_SUPPORTED_CPUID
        /// and the feature MSRs of /dev/kvm).
        #[arg(long)]
        kvm: bool,
    },

    /// Show this machine's CPU model and the host-model guest <cpu> element.
    ///
    /// Shows the hypervisor view (what /dev/kvm can give a guest) when KVM
    /// is usable, the raw CPUID view otherwise; the first line says which.
    Host {
        /// Show the raw CPUID view even when KVM is usable.
        #[arg(long)]
        raw: bool,
    },

    /// The CPU part of libvirt's domain capabilities (virsh domcapabilities),
    /// computed from what /dev/kvm can give a guest: host-passthrough,
    /// maximum, the host-model CPU (migratable features only) and every
    /// model with usable='yes|no' and the features that block it.
    Domcaps,

    /// Can HOST run the guest CPU? Prints identical, superset or
    /// incompatible, then the features that block the guest, one per line.
    /// Exit 0 for identical or superset, 1 for incompatible.
    Compare {
        /// The host: capabilities, a host <cpu>, or a <cpudata> dump.
        #[arg(value_name = "HOST.xml")]
        host: PathBuf,
        /// The guest <cpu> (or any document holding one).
        #[arg(value_name = "CPU.xml")]
        cpu: PathBuf,
    },

    /// The CPU every input can run. Inputs are files, directories (every
    /// file inside) or quoted glob patterns; each file may hold one or more
    /// CPUs in any supported shape.
    Baseline {
        /// List every feature of the resulting model explicitly.
        #[arg(long)]
        expand_features: bool,
        /// Drop features that block live migration.
        #[arg(long)]
        migratable: bool,
        /// Input files, directories or glob patterns.
        #[arg(value_name = "FILE", required = true)]
        inputs: Vec<PathBuf>,
    },

    /// Turn a guest CPU policy (Nova's cpu_mode / cpu_models /
    /// cpu_model_extra_flags, flavor and image topology) into the guest
    /// <cpu> element or QEMU's -cpu argument, validating it first.
    Guest(Box<GuestArgs>),

    /// The guest CPUID table of a model: every leaf and subleaf KVM gets,
    /// per-vCPU APIC IDs, as text, KVM JSON or a Firecracker template.
    Cpuid(crate::cpuid_cmd::CpuidArgs),

    /// Run a model's CPUID table in a real KVM guest and check, bit by bit,
    /// that every vCPU sees the intended table (masked by what KVM can
    /// provide). Exit 0 when it does, 1 on a mismatch.
    Verify(crate::verify_cmd::VerifyArgs),

    /// Rewrite a <cpu> with every feature of its model listed explicitly.
    Expand {
        /// The CPU definition.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Arguments of `cpumodel guest`.
#[derive(Debug, clap::Args)]
pub struct GuestArgs {
    /// CPU mode: none, host-model, host-passthrough, custom or maximum
    /// (default: the nova.conf's, else host-model).
    #[arg(long)]
    pub mode: Option<String>,
    /// A CPU model for custom mode; repeat for an ordered list.
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
    /// An extra flag: +name or name requires it, -name disables it
    /// (case-insensitive; the last setting of a feature wins).
    #[arg(long = "flag", value_name = "F", allow_hyphen_values = true)]
    pub flags: Vec<String>,
    /// A feature the chosen model must have: the first listed model that
    /// has all of them is used.
    #[arg(long = "require-feature", value_name = "F")]
    pub required: Vec<String>,
    /// A flavor extra spec (hw:cpu_sockets=2, hw:cpu_max_threads=1,
    /// trait:HW_CPU_X86_AVX2=required, ...).
    #[arg(long = "spec", value_name = "KEY=VALUE")]
    pub specs: Vec<String>,
    /// An image property (hw_cpu_sockets=2, hw_cpu_max_cores=4, ...).
    #[arg(long = "image-prop", value_name = "KEY=VALUE")]
    pub image_props: Vec<String>,
    /// Check the policy against this host and resolve host-model from it:
    /// a <cpudata> dump, capabilities, or a host <cpu>.
    #[arg(long, value_name = "FILE")]
    pub host: Option<PathBuf>,
    /// Read cpu_mode, cpu_models, cpu_model_extra_flags and virt_type from
    /// the [libvirt] section of this nova.conf; command-line values win.
    #[arg(long, value_name = "FILE")]
    pub nova_conf: Option<PathBuf>,
    /// The vCPU count and topology; with either, the <cpu> gets a
    /// <topology>.
    #[command(flatten)]
    pub topology: crate::topology_args::TopologyArgs,
}
