//! One module per subcommand. Each declares its flags (an `Args` type that
//! clap fills) and its output formats (a `Format` enum listing exactly what
//! the command can print, or the shared
//! [`TextFormat`](crate::shared::TextFormat) or
//! [`XmlFormat`](crate::shared::XmlFormat) when those are exactly its
//! formats), and turns them into one call to the libraries and one complete
//! [`Output`](crate::shared::Output).

pub mod baseline;
pub mod compare;
pub mod completions;
pub mod convert;
pub mod cpuid;
pub mod decode;
pub mod domcaps;
pub mod dump;
pub mod expand;
pub mod fleet;
pub mod guest;
pub mod host;
pub mod labels;
pub mod man;
pub mod map;
pub mod model;
pub mod models;
pub mod nova;
pub mod probe;
pub mod proxmox;
pub mod verify;
