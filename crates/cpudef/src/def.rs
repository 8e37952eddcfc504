//! The CPU definition: libvirt's `<cpu>` element as a Rust value.
//!
//! Host CPUs (what a machine is) and guest CPUs (what a VM should see) share
//! one element in libvirt; [`CpuKind`] tells them apart, as libvirt does, by
//! whether an `<arch>` child is present. Feature names are kept as written;
//! they are resolved against a [`Database`](cpumodel_map::Database) by the
//! operations that need them, so one definition can be checked against
//! several CPU maps.

use std::fmt::{self, Write as _};

use cpumodel_xml::escape;

use crate::topology::Topology;

/// Whether a definition describes a real processor or a guest's CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuKind {
    /// A host CPU: features are plain names, there is an `<arch>`.
    Host,
    /// A guest CPU: features carry policies.
    Guest,
}

macro_rules! xml_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The XML spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the XML spelling.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The accepted spellings, for error messages.
            pub fn spellings() -> String {
                [$($text),+].join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

xml_enum! {
    /// How the guest CPU is specified (`<cpu mode=...>`).
    Mode {
        /// A named model plus features.
        Custom = "custom",
        /// The named model closest to the host plus the missing features.
        HostModel = "host-model",
        /// The host CPU unchanged.
        HostPassthrough = "host-passthrough",
        /// Everything the hypervisor can offer.
        Maximum = "maximum",
    }
}

xml_enum! {
    /// How strictly the host must match a custom CPU (`<cpu match=...>`).
    Match {
        /// The host may provide more; extra features are exposed.
        Minimum = "minimum",
        /// The guest sees exactly the specified CPU.
        Exact = "exact",
        /// The host must not provide anything beyond the specification.
        Strict = "strict",
    }
}

xml_enum! {
    /// Whether another model may be used when the named one is unavailable.
    Fallback {
        /// Another model may be used.
        Allow = "allow",
        /// Only the named model.
        Forbid = "forbid",
    }
}

xml_enum! {
    /// What a guest asks of one feature (`<feature policy=...>`).
    Policy {
        /// Expose it even if the host lacks it.
        Force = "force",
        /// The host must have it; exposed.
        Require = "require",
        /// Exposed when the host has it.
        Optional = "optional",
        /// Not exposed.
        Disable = "disable",
        /// The host must not have it.
        Forbid = "forbid",
    }
}

impl Policy {
    /// Applies this policy for `feature` to the features a guest gets:
    /// `force` and `require` add it, `disable` and `forbid` remove it,
    /// `optional` leaves the set as it is.
    pub fn apply(self, features: &mut cpumodel_map::FeatureSet, feature: cpumodel_map::FeatureId) {
        match self {
            Policy::Require | Policy::Force => features.insert(feature),
            Policy::Disable | Policy::Forbid => features.remove(feature),
            Policy::Optional => {}
        }
    }
}

xml_enum! {
    /// How the hypervisor checks the guest CPU (`<cpu check=...>`).
    Check {
        /// No check.
        None = "none",
        /// Check what libvirt can check itself.
        Partial = "partial",
        /// Check everything.
        Full = "full",
    }
}

/// One `<feature>` child.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FeatureRef {
    /// The feature name as written.
    pub name: String,
    /// The policy; `None` for host CPUs.
    pub policy: Option<Policy>,
}

/// The processor signature of a host CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignatureDef {
    /// Family.
    pub family: u32,
    /// Model.
    pub model: u32,
    /// Stepping.
    pub stepping: u32,
}

/// A libvirt `<cpu>` element.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CpuDef {
    /// Host or guest.
    pub kind: CpuKind,
    /// Guest mode (custom when not written).
    pub mode: Mode,
    /// Guest match attribute.
    #[serde(rename = "match")]
    pub match_: Option<Match>,
    /// Guest check attribute.
    pub check: Option<Check>,
    /// `migratable` of host-passthrough and maximum CPUs.
    pub migratable: Option<bool>,
    /// The `<arch>` of a host CPU.
    pub arch: Option<String>,
    /// The model name.
    pub model: Option<String>,
    /// The model's fallback attribute.
    pub fallback: Option<Fallback>,
    /// A vendor_id override (12 characters).
    pub vendor_id: Option<String>,
    /// The vendor name.
    pub vendor: Option<String>,
    /// A host CPU's signature.
    pub signature: Option<SignatureDef>,
    /// The topology.
    pub topology: Option<Topology>,
    /// The features, in order.
    pub features: Vec<FeatureRef>,
}

impl CpuDef {
    /// An empty definition of the given kind (custom mode, no model).
    pub fn new(kind: CpuKind) -> Self {
        CpuDef {
            kind,
            mode: Mode::Custom,
            match_: None,
            check: None,
            migratable: None,
            arch: None,
            model: None,
            fallback: None,
            vendor_id: None,
            vendor: None,
            signature: None,
            topology: None,
            features: Vec::new(),
        }
    }

    /// The feature entry with this exact name.
    pub fn feature(&self, name: &str) -> Option<&FeatureRef> {
        self.features.iter().find(|f| f.name == name)
    }

    /// Adds a feature, or changes the policy of an existing one.
    pub fn set_feature(&mut self, name: &str, policy: Option<Policy>) {
        match self.features.iter_mut().find(|f| f.name == name) {
            Some(f) => f.policy = policy,
            None => self.features.push(FeatureRef {
                name: name.to_string(),
                policy,
            }),
        }
    }

    /// Adds a feature unless one with that name is already listed.
    pub fn add_feature_if_missing(&mut self, name: &str, policy: Option<Policy>) {
        if self.feature(name).is_none() {
            self.features.push(FeatureRef {
                name: name.to_string(),
                policy,
            });
        }
    }

    /// Writes the element in libvirt's formatting (two-space indentation,
    /// single quotes, libvirt's attribute and child order).
    pub fn to_xml(&self) -> String {
        let attrs = self.xml_attributes();
        let body = self.xml_body();
        if body.is_empty() {
            format!("<cpu{attrs}/>\n")
        } else {
            format!("<cpu{attrs}>\n{body}</cpu>\n")
        }
    }

    /// The attributes of the `<cpu>` element, each with a leading space.
    fn xml_attributes(&self) -> String {
        let mut attrs = String::new();
        let guest = self.kind == CpuKind::Guest;
        if guest && (self.mode != Mode::Custom || self.model.is_some()) {
            let _ = write!(attrs, " mode='{}'", self.mode);
            if self.mode == Mode::Custom {
                let _ = write!(attrs, " match='{}'", self.match_.unwrap_or(Match::Exact));
            }
            if let Some(c) = self.check {
                let _ = write!(attrs, " check='{c}'");
            }
            if matches!(self.mode, Mode::HostPassthrough | Mode::Maximum) {
                if let Some(m) = self.migratable {
                    let _ = write!(attrs, " migratable='{}'", if m { "on" } else { "off" });
                }
            }
        }
        attrs
    }

    /// The children of the `<cpu>` element as libvirt formats them, one per
    /// line, each indented by two spaces (empty when there are none). This
    /// is also the content of the host-model `<mode>` of domain capabilities.
    pub fn xml_body(&self) -> String {
        let guest = self.kind == CpuKind::Guest;
        let mut body = String::new();
        if !guest {
            // A host CPU is told from a guest one by its <arch>: a host read
            // without one (from <cpuTest> or capabilities) still gets it.
            let arch = self.arch.as_deref().unwrap_or("x86_64");
            let _ = writeln!(body, "  <arch>{}</arch>", escape(arch));
        }
        let format_model = matches!(self.mode, Mode::Custom | Mode::HostModel);
        if format_model && (self.model.is_some() || self.vendor_id.is_some()) {
            body.push_str("  <model");
            if guest && self.model.is_some() {
                let _ = write!(
                    body,
                    " fallback='{}'",
                    self.fallback.unwrap_or(Fallback::Allow)
                );
            }
            if guest {
                if let Some(v) = &self.vendor_id {
                    let _ = write!(body, " vendor_id='{}'", escape(v));
                }
            }
            match &self.model {
                Some(m) => {
                    let _ = writeln!(body, ">{}</model>", escape(m));
                }
                None => body.push_str("/>\n"),
            }
        }
        if format_model {
            if let Some(v) = &self.vendor {
                let _ = writeln!(body, "  <vendor>{}</vendor>", escape(v));
            }
        }
        if !guest {
            if let Some(s) = self.signature.filter(|s| s.family != 0) {
                let _ = writeln!(
                    body,
                    "  <signature family='{}' model='{}' stepping='{}'/>",
                    s.family, s.model, s.stepping
                );
            }
        }
        if let Some(t) = &self.topology {
            let _ = writeln!(
                body,
                "  <topology sockets='{}' dies='{}' clusters='{}' cores='{}' threads='{}'/>",
                t.sockets(),
                t.dies(),
                t.clusters(),
                t.cores(),
                t.threads()
            );
        }
        for f in &self.features {
            match (guest, f.policy) {
                (true, p) => {
                    let _ = writeln!(
                        body,
                        "  <feature policy='{}' name='{}'/>",
                        p.unwrap_or(Policy::Require),
                        escape(&f.name)
                    );
                }
                (false, _) => {
                    let _ = writeln!(body, "  <feature name='{}'/>", escape(&f.name));
                }
            }
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_and_host_formatting_follow_libvirt() {
        let mut g = CpuDef::new(CpuKind::Guest);
        g.match_ = Some(Match::Exact);
        g.model = Some("Westmere".into());
        g.fallback = Some(Fallback::Forbid);
        g.vendor = Some("Intel".into());
        g.set_feature("vmx", Some(Policy::Require));
        g.set_feature("ht", Some(Policy::Disable));
        assert_eq!(
            g.to_xml(),
            "<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>Westmere</model>\n  <vendor>Intel</vendor>\n  <feature policy='require' name='vmx'/>\n  <feature policy='disable' name='ht'/>\n</cpu>\n"
        );
        let mut h = CpuDef::new(CpuKind::Host);
        h.arch = Some("x86_64".into());
        h.model = Some("Westmere".into());
        h.signature = Some(SignatureDef {
            family: 6,
            model: 37,
            stepping: 2,
        });
        h.set_feature("vmx", None);
        assert_eq!(
            h.to_xml(),
            "<cpu>\n  <arch>x86_64</arch>\n  <model>Westmere</model>\n  <signature family='6' model='37' stepping='2'/>\n  <feature name='vmx'/>\n</cpu>\n"
        );
        let mut p = CpuDef::new(CpuKind::Guest);
        p.mode = Mode::HostPassthrough;
        p.migratable = Some(false);
        assert_eq!(
            p.to_xml(),
            "<cpu mode='host-passthrough' migratable='off'/>\n"
        );
    }
}
