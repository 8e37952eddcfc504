//! Fleet planning: every host's CPU, one model for the whole fleet.
//!
//! Operators pick a named guest CPU model so that guests start and migrate
//! on every host. This crate answers the questions that choice needs, from
//! the hosts' CPU reports: which models every host can run
//! ([`coverage`]), the newest one that enough hosts can run and what holds
//! newer ones back ([`recommend`]), libvirt's baseline of the fleet
//! ([`baseline`]), which hosts accept a given guest CPU ([`can_run`]) and
//! what changed on hosts between reports ([`drift`]), and a page that
//! shows it all ([`report_page`]).
//!
//! It is pure: documents come in as text ([`read_host_report`]) and hosts as
//! [`ProfileCount`]s from whatever store keeps them (`cpumodel-store`).
//! Answers are computed per distinct CPU [`Profile`], so their cost follows
//! the number of distinct CPUs, not of hosts.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod html;
mod plan;
mod profile;
mod report;
pub mod table;

pub use html::{report_page, GroupProfiles};
pub use plan::{
    baseline, can_run, coverage, drift, format_time, history, host_levels, hosts_text,
    models_newest_first, parse_time, recommend, Blocker, CanRunAnswer, CanRunDocument,
    CoverageDocument, DriftDocument, DriftRow, HeldBack, HistoryDocument, HistoryEntry, HistoryRow,
    HostDrift, HostLevelRow, HostRow, LevelShortfall, Limits, ModelCoverage, PlanError,
    RecommendAnswer, Recommendation,
};
pub use profile::{Profile, ProfileCount};
pub use report::{
    read_host_report, HostReader, HostReport, ReportError, View, HOST_NOTE, VIEW_NOTE,
};
