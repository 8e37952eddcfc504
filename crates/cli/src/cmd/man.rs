//! `cpumodel man`: the manual page, in roff, generated from the same clap
//! definitions that parse the command line.
//!
//! The page is clap_mangen's page of the root command (name, synopsis,
//! description, the subcommand list, version), followed by one OPTIONS
//! section per subcommand, so that every flag of every command is in the
//! one page `man cpumodel` shows.

use clap::CommandFactory as _;

use crate::cli::Args;
use crate::error::CliError;
use crate::shared::Output;

/// Arguments of `cpumodel man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {}

impl ManArgs {
    /// Runs `cpumodel man`.
    ///
    /// # Errors
    /// None; the page is generated in memory.
    pub fn run(&self) -> Result<Output, CliError> {
        let mut cmd = Args::command();
        cmd.build();
        let mut page = Vec::new();
        let write = "writing to memory cannot fail";
        clap_mangen::Man::new(cmd.clone())
            .render(&mut page)
            .expect(write);
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut section = Vec::new();
            clap_mangen::Man::new(sub.clone())
                .render_options_section(&mut section)
                .expect(write);
            let section = String::from_utf8_lossy(&section);
            // clap_mangen titles the section OPTIONS; name the command.
            let body = section.strip_prefix(".SH OPTIONS\n").unwrap_or(&section);
            page.extend_from_slice(
                format!(".SH \"OPTIONS OF cpumodel {}\"\n", sub.get_name()).as_bytes(),
            );
            page.extend_from_slice(body.as_bytes());
        }
        Ok(Output::ok(String::from_utf8_lossy(&page).into_owned()))
    }
}
