//! Errors of the CPU operations.

/// Decoding CPU data into a model failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// CPUID leaf 0 names a vendor the CPU map does not define.
    #[error("unknown CPU vendor string '{string}' (known: {})", known.join(", "))]
    UnknownVendor {
        /// The 12-character string from CPUID leaf 0.
        string: String,
        /// The vendor strings the map defines.
        known: Vec<String>,
    },
    /// No model fits the data (for a host CPU: no model is a subset of it).
    #[error("no CPU model in the map fits the CPU data")]
    NoModel,
    /// The only preferred model is not offered by the hypervisor.
    #[error("CPU model '{model}' is not supported by the hypervisor")]
    PreferredUnsupported {
        /// The model.
        model: String,
    },
}
