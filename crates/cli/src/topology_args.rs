//! The topology flags of `guest`, `cpuid` and `verify`, defined once.
//!
//! The three commands describe the same thing — a guest's vCPU count and
//! its sockets × dies × clusters × cores × threads — so they share one clap
//! struct ([`TopologyArgs`], flattened into each command's arguments): the
//! same names, the same help, the same validation and the same messages.
//! Every count is a positive `u32`, checked by clap as it parses
//! ([`positive_count`]); a bad value is one line,
//! `--vcpus='0' must be a positive integer`, in every command
//! ([`one_line_error`]). The counts are then built into the shared
//! [`Topology`], whose checked products make an overflowing topology a
//! typed error too.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use cpumodel_cpudef::{Topology, TopologyError};

/// The vCPU count and topology of a guest.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct TopologyArgs {
    /// The number of vCPUs. Without explicit counts (--sockets ...
    /// --threads) the topology is chosen as Nova chooses it; with them,
    /// they must multiply to it.
    #[arg(long, value_name = "N", value_parser = positive_count, allow_negative_numbers = true)]
    pub vcpus: Option<u32>,
    /// Sockets (each count left out is 1).
    #[arg(long, value_name = "N", value_parser = positive_count, allow_negative_numbers = true)]
    pub sockets: Option<u32>,
    /// Dies per socket.
    #[arg(long, value_name = "N", value_parser = positive_count, allow_negative_numbers = true)]
    pub dies: Option<u32>,
    /// Clusters per die (QEMU's modules).
    #[arg(long, value_name = "N", value_parser = positive_count, allow_negative_numbers = true)]
    pub clusters: Option<u32>,
    /// Cores per cluster, which is per die without --clusters.
    #[arg(long, value_name = "N", value_parser = positive_count, allow_negative_numbers = true)]
    pub cores: Option<u32>,
    /// Threads per core.
    #[arg(long, value_name = "N", value_parser = positive_count, allow_negative_numbers = true)]
    pub threads: Option<u32>,
}

impl TopologyArgs {
    /// The explicit topology, when any of its counts was given (the others
    /// count as 1).
    ///
    /// # Errors
    /// [`TopologyError`] when a product of the counts overflows.
    pub fn explicit(&self) -> Result<Option<Topology>, TopologyError> {
        let counts = [
            self.sockets,
            self.dies,
            self.clusters,
            self.cores,
            self.threads,
        ];
        if counts.iter().all(Option::is_none) {
            return Ok(None);
        }
        let [s, d, c, k, t] = counts.map(|n| n.unwrap_or(1));
        Topology::new(s, d, c, k, t).map(Some)
    }
}

/// A count that is not a positive integer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' must be a positive integer")]
pub struct NotPositive(String);

/// clap's value parser of every topology count: a `u32` of at least 1
/// (surrounding spaces allowed).
///
/// # Errors
/// [`NotPositive`] for anything else.
pub fn positive_count(value: &str) -> Result<u32, NotPositive> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| NotPositive(value.to_string()))
}

/// The one-line message of a clap error that [`positive_count`] raised:
/// `--vcpus='0' must be a positive integer`. `None` for other errors.
pub fn one_line_error(e: &clap::Error) -> Option<String> {
    if e.kind() != ErrorKind::ValueValidation {
        return None;
    }
    let bad = std::error::Error::source(e)?.downcast_ref::<NotPositive>()?;
    // clap names the argument as its usage shows it: `--vcpus <N>`.
    let ContextValue::String(arg) = e.get(ContextKind::InvalidArg)? else {
        return None;
    };
    let flag = arg.split(' ').next().unwrap_or(arg);
    Some(format!("{flag}={bad}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(Debug, clap::Parser)]
    struct Cmd {
        #[command(flatten)]
        topology: TopologyArgs,
    }

    #[test]
    fn counts_are_positive_u32s() {
        assert_eq!(positive_count("4"), Ok(4));
        assert_eq!(positive_count(" 4 "), Ok(4));
        for bad in ["0", "-1", "four", "2.5", "4294967296", ""] {
            assert_eq!(positive_count(bad), Err(NotPositive(bad.to_string())));
        }
    }

    #[test]
    fn bad_counts_are_one_line_naming_the_flag() {
        for (args, message) in [
            (
                &["x", "--vcpus", "0"][..],
                "--vcpus='0' must be a positive integer",
            ),
            (
                &["x", "--vcpus=-8"],
                "--vcpus='-8' must be a positive integer",
            ),
            (
                &["x", "--cores", "-2"],
                "--cores='-2' must be a positive integer",
            ),
            (
                &["x", "--clusters", "two"],
                "--clusters='two' must be a positive integer",
            ),
        ] {
            let e = Cmd::try_parse_from(args).unwrap_err();
            assert_eq!(one_line_error(&e).as_deref(), Some(message), "{args:?}");
        }
        let e = Cmd::try_parse_from(["x", "--nope"]).unwrap_err();
        assert_eq!(one_line_error(&e), None);
    }

    #[test]
    fn unset_counts_are_one() {
        let t = |args: &[&str]| Cmd::try_parse_from(args).unwrap().topology.explicit();
        assert_eq!(t(&["x", "--vcpus", "8"]), Ok(None));
        assert_eq!(
            t(&["x", "--cores", "4", "--threads", "2"]),
            Ok(Some(Topology::new(1, 1, 1, 4, 2).unwrap()))
        );
        assert_eq!(
            t(&["x", "--sockets", "65536", "--cores", "65536"])
                .unwrap_err()
                .to_string(),
            "topology 65536 sockets × 1 dies × 1 clusters × 65536 cores × 1 threads holds 4294967296 vCPUs; at most 4294967295 fit in 32 bits"
        );
    }
}
