//! The clap root: the program's name, version and the list of subcommands.
//!
//! Each subcommand's flags live with the subcommand, in `cmd/<name>.rs`, so
//! a command offers exactly the flags and output formats it has: clap
//! rejects the rest before anything runs, and `cpumodel COMMAND --help`
//! lists only what applies. The doc comments of the variants below are the
//! one-line descriptions of `cpumodel --help`.

use clap::{Parser, Subcommand};
use cpumodel_map::Release;

use crate::cmd;
use crate::error::CliError;
use crate::shared::Output;

/// Decide which CPU a KVM virtual machine sees.
///
/// cpumodel names x86 processors as libvirt CPU models, without a daemon:
/// it decodes CPUID dumps into a model plus features, and shows the live
/// host's model and the host-model guest <cpu> element.
///
/// Exit codes: 0 success, 1 negative answer, 2 error.
#[derive(Debug, Parser)]
#[command(name = "cpumodel", version = version(), about, long_about)]
pub struct Args {
    /// Answer as this libvirt release: its CPU map and its behaviour
    /// (9.0, 10.7 or upstream; the default is the newest).
    #[arg(long, global = true, value_name = "VERSION", value_parser = parse_release)]
    pub libvirt: Option<&'static Release>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--libvirt VERSION` as a release.
fn parse_release(name: &str) -> Result<&'static Release, String> {
    Release::find(name).map_err(|e| e.to_string())
}

/// The version line: the crate version and the libvirt release answered
/// as with where its cpu_map came from, so that a report of a wrong answer
/// names the data behind it, then the releases cpumodel embeds.
pub fn version_of(release: &Release) -> String {
    let known: Vec<&str> = Release::all().iter().map(|r| r.name).collect();
    format!(
        "{} (libvirt {}; embedded: {})",
        env!("CARGO_PKG_VERSION"),
        release,
        known.join(", ")
    )
}

fn version() -> String {
    version_of(Release::newest())
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every CPU model: name, vendor, ancestor, number of features.
    Models(cmd::models::ModelsArgs),

    /// Show one model's expanded features and signatures.
    Model(cmd::model::ModelArgs),

    /// Decode a <cpudata> dump (or /proc/cpuinfo, lscpu, a Firecracker
    /// template) into a CPU model plus features.
    Decode(cmd::decode::DecodeArgs),

    /// Write this machine's CPUID leaves as a <cpudata> dump.
    Dump(cmd::dump::DumpArgs),

    /// Show this machine's CPU model and the host-model guest <cpu> element.
    ///
    /// Shows the hypervisor view (what /dev/kvm can give a guest) when KVM
    /// is usable, the raw CPUID view otherwise; the first line says which.
    Host(cmd::host::HostArgs),

    /// The CPU part of libvirt's domain capabilities (virsh domcapabilities),
    /// computed from what /dev/kvm can give a guest: host-passthrough,
    /// maximum, the host-model CPU (migratable features only) and every
    /// model with usable='yes|no' and the features that block it.
    Domcaps(cmd::domcaps::DomcapsArgs),

    /// Can HOST run the guest CPU? Prints identical, superset or
    /// incompatible, then the features that block the guest, one per line.
    /// Exit 0 for identical or superset, 1 for incompatible.
    Compare(cmd::compare::CompareArgs),

    /// The CPU every input can run. Inputs are files, directories (every
    /// file inside) or quoted glob patterns; each file may hold one or more
    /// CPUs in any supported shape.
    Baseline(cmd::baseline::BaselineArgs),

    /// Turn a guest CPU policy (Nova's cpu_mode / cpu_models /
    /// cpu_model_extra_flags, flavor and image topology) into the guest
    /// <cpu> element or QEMU's -cpu argument, validating it first.
    Guest(Box<cmd::guest::GuestArgs>),

    /// OpenStack Nova's view of a compute host: whether nova-compute starts
    /// with a nova.conf's CPU settings (exit 1 when not, with Nova's
    /// message), and the CPU traits it reports to Placement.
    Nova(cmd::nova::NovaArgs),

    /// The guest CPUID table of a model: every leaf and subleaf KVM gets,
    /// per-vCPU APIC IDs, as text, KVM JSON or a Firecracker template.
    Cpuid(cmd::cpuid::CpuidArgs),

    /// Run a model's CPUID table in a real KVM guest and check, bit by bit,
    /// that every vCPU sees the intended table (masked by what KVM can
    /// provide). Exit 0 when it does, 1 on a mismatch.
    Verify(cmd::verify::VerifyArgs),

    /// Boot a tiny guest in a real QEMU (or through libvirt) with a CPU and
    /// check that it sees the CPUID table `cpumodel cpuid` builds, apart
    /// from features QEMU reports filtering. Exit 0 when it does, 1 when
    /// anything else differs.
    Probe(Box<cmd::probe::ProbeArgs>),

    /// Rewrite a <cpu> with every feature of its model listed explicitly.
    Expand(cmd::expand::ExpandArgs),

    /// The CPU labels KubeVirt's node-labeller would put on a node
    /// (cpu-model, cpu-model-migration, cpu-feature, host-model-cpu,
    /// host-model-required-features, cpu-vendor), from its domcapabilities
    /// or any host document, as key=value lines or a JSON object.
    Labels(cmd::labels::LabelsArgs),

    /// Write a guest <cpu> as a custom CPU model of Proxmox VE's
    /// /etc/pve/virtual-guest/cpu-models.conf (reported-model, flags,
    /// phys-bits), used by VMs as `cpu: custom-NAME`.
    Proxmox(cmd::proxmox::ProxmoxArgs),

    /// The fleet store: import every host's CPU, then ask which model the
    /// whole fleet (or a group) can run, what holds it back, and what drifted.
    Fleet(cmd::fleet::FleetArgs),

    /// Rewrite a guest <cpu> for another libvirt release (or cpu_map) so
    /// that it accepts it and the guest gets the same features; features it
    /// cannot express are reported on stderr. Exit 0 when the features are
    /// the same, 1 when not.
    Convert(cmd::convert::ConvertArgs),

    /// Compare CPU maps: what changed from one libvirt release (or cpu_map
    /// directory) to another.
    Map(cmd::map::MapCommandArgs),

    /// Print a shell completion script (bash, zsh or fish).
    Completions(cmd::completions::CompletionsArgs),

    /// Print the manual page (roff).
    Man(cmd::man::ManArgs),
}

impl Command {
    /// Runs the command.
    ///
    /// # Errors
    /// Whatever the command reports; rendered once, by `main`.
    pub fn run(&self) -> Result<Output, CliError> {
        match self {
            Command::Models(a) => a.run(),
            Command::Model(a) => a.run(),
            Command::Decode(a) => a.run(),
            Command::Dump(a) => a.run(),
            Command::Host(a) => a.run(),
            Command::Domcaps(a) => a.run(),
            Command::Compare(a) => a.run(),
            Command::Baseline(a) => a.run(),
            Command::Guest(a) => a.run(),
            Command::Nova(a) => a.run(),
            Command::Cpuid(a) => a.run(),
            Command::Verify(a) => a.run(),
            Command::Probe(a) => a.run(),
            Command::Expand(a) => a.run(),
            Command::Labels(a) => a.run(),
            Command::Proxmox(a) => a.run(),
            Command::Fleet(a) => a.run(),
            Command::Convert(a) => a.run(),
            Command::Map(a) => a.run(),
            Command::Completions(a) => a.run(),
            Command::Man(a) => a.run(),
        }
    }
}
