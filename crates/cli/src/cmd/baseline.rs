//! `cpumodel baseline INPUT...`: the CPU every input can run.

use std::path::PathBuf;

use cpumodel_cpudef::{add_cpus_to_baseline, parse_known_cpus, AddCpusError, BaselineAccumulator};

use crate::error::CliError;
use crate::names::NamesArgs;
use crate::shared::{collect_inputs, BaselineFlags, MapArgs, Output, XmlFormat};

/// Arguments of `cpumodel baseline`.
#[derive(Debug, clap::Args)]
pub struct BaselineArgs {
    /// The baseline's flags.
    #[command(flatten)]
    pub flags: BaselineFlags,
    /// Output format.
    #[arg(long, value_enum, default_value_t = XmlFormat::Xml)]
    pub format: XmlFormat,
    /// Feature names.
    #[command(flatten)]
    pub names: NamesArgs,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
    /// Input files, directories or glob patterns.
    #[arg(value_name = "FILE", required = true)]
    pub inputs: Vec<PathBuf>,
}

impl BaselineArgs {
    /// Runs `cpumodel baseline`.
    ///
    /// # Errors
    /// Unreadable or invalid inputs, inputs with no common CPU.
    pub fn run(&self) -> Result<Output, CliError> {
        use std::io::IsTerminal as _;
        let db = self.map.load()?;
        let opts = self.flags.options();
        let files = collect_inputs(&self.inputs)?;
        let progress = std::io::stderr().is_terminal() && files.len() >= 100;
        let mut acc = BaselineAccumulator::default();
        for (i, file) in files.iter().enumerate() {
            if progress && (i % 50 == 0) {
                eprint!("\rcpumodel: reading {}/{} files", i, files.len());
            }
            let text = crate::error::read_cpu_document(file)?;
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
        self.names.render(db, &cpu, self.format, None)
    }
}
