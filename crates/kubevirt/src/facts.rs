//! What the node-labeller reads from libvirt on a node, read the way it
//! reads it.
//!
//! KubeVirt unmarshals `virsh domcapabilities` into a few fields and
//! ignores the rest: every `<mode>` of `<cpu>` (the host-model mode's
//! first `<model>`, `<vendor>` and `<feature policy='require'>` elements,
//! and in any mode each `<model>` that has a `usable` attribute and a
//! name), and the `<sev>`, `<launchSecurity>` and `<tdx>` elements of
//! `<features>`. The supported features are the `<feature
//! policy='require'>` children of the `virsh hypervisor-cpu-baseline
//! --features` output. [`NodeCpuFacts`] holds exactly these facts.

use cpumodel_cpudef::{DomainCpuCaps, Policy};
use cpumodel_xml::{child, elements, Source, XmlError};
use roxmltree::Node;

/// A document the node-labeller could not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KubevirtError {
    /// Malformed XML, or an element KubeVirt refuses (a host-model mode
    /// without a model, a count that is not a number).
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// The document is not `virsh domcapabilities` output.
    #[error("{file}: not domain capabilities (the root element is <{root}>, expected <domainCapabilities>)")]
    NotDomainCapabilities {
        /// The file.
        file: String,
        /// Its root element.
        root: String,
    },
}

/// The host-model CPU as the node-labeller keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostModelFacts {
    /// The model's name.
    pub name: String,
    /// The vendor (`Intel`, `AMD`), when given.
    pub vendor: Option<String>,
    /// The features the host-model CPU requires beyond its model.
    pub required: Vec<String>,
}

/// The secure-virtualization capabilities the node-labeller labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SevFacts {
    /// AMD SEV (`<sev supported='yes'>`).
    pub sev: bool,
    /// SEV-ES: SEV with `maxESGuests` above 0.
    pub sev_es: bool,
    /// SEV-SNP: SEV-ES, and `sev-snp` among the launch security types.
    pub sev_snp: bool,
    /// Intel TDX (`<tdx supported='yes'>`).
    pub tdx: bool,
}

/// Everything the node-labeller's CPU labels are made from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeCpuFacts {
    /// The host-model CPU, when the document has a host-model mode.
    pub host_model: Option<HostModelFacts>,
    /// Each named model with a `usable` attribute, in document order, and
    /// whether it is usable (anything but `usable='no'` is).
    pub models: Vec<(String, bool)>,
    /// The features the node supports.
    pub supported_features: Vec<String>,
    /// SEV, SEV-ES, SEV-SNP and TDX.
    pub security: SevFacts,
}

/// Reads the node-labeller's facts from `virsh domcapabilities` output;
/// the supported features stay empty (see [`read_supported_features`]).
///
/// # Errors
/// Malformed XML, another root element, a host-model mode without a
/// `<model>`, a `maxESGuests` that is not a number.
pub fn read_domain_capabilities(source: &str, text: &str) -> Result<NodeCpuFacts, KubevirtError> {
    let src = Source(source);
    let doc = src.parse(text)?;
    let root = doc.root_element();
    if !root.has_tag_name("domainCapabilities") {
        return Err(KubevirtError::NotDomainCapabilities {
            file: source.to_string(),
            root: root.tag_name().name().to_string(),
        });
    }
    let mut facts = NodeCpuFacts::default();
    let modes = child(root, "cpu")
        .into_iter()
        .flat_map(elements)
        .filter(|n| n.has_tag_name("mode"));
    for mode in modes {
        let models: Vec<Node> = elements(mode).filter(|n| n.has_tag_name("model")).collect();
        if mode.attribute("name") == Some("host-model") {
            let first = models
                .first()
                .ok_or_else(|| src.error(mode, "the host-model mode has no <model>"))?;
            facts.host_model = Some(HostModelFacts {
                name: first.text().unwrap_or("").to_string(),
                vendor: child(mode, "vendor")
                    .map(|v| v.text().unwrap_or("").to_string())
                    .filter(|v| !v.is_empty()),
                required: elements(mode)
                    .filter(|f| f.has_tag_name("feature"))
                    .filter(|f| f.attribute("policy") == Some("require"))
                    .map(|f| f.attribute("name").unwrap_or("").to_string())
                    .collect(),
            });
        }
        for m in models {
            let name = m.text().unwrap_or("").trim();
            match m.attribute("usable") {
                Some(usable) if !usable.is_empty() && !name.is_empty() => {
                    facts.models.push((name.to_string(), usable != "no"));
                }
                _ => {}
            }
        }
    }
    if let Some(features) = child(root, "features") {
        facts.security = security(&src, features)?;
    }
    Ok(facts)
}

fn supported(node: Option<Node>) -> bool {
    node.and_then(|n| n.attribute("supported")) == Some("yes")
}

/// SEV, SEV-ES, SEV-SNP and TDX from `<features>`, as KubeVirt decides
/// them.
fn security(src: &Source, features: Node) -> Result<SevFacts, XmlError> {
    let sev_node = child(features, "sev");
    let sev = supported(sev_node);
    let max_es = match sev_node.and_then(|s| child(s, "maxESGuests")) {
        Some(n) => {
            let text = n.text().unwrap_or("").trim();
            text.parse::<u32>()
                .map_err(|_| src.error(n, format!("'{text}' is not a number of guests")))?
        }
        None => 0,
    };
    let sev_es = sev && max_es > 0;
    let launch = child(features, "launchSecurity");
    let snp_type = launch.into_iter().flat_map(elements).any(|e| {
        e.has_tag_name("enum")
            && elements(e).any(|v| v.has_tag_name("value") && v.text() == Some("sev-snp"))
    });
    Ok(SevFacts {
        sev,
        sev_es,
        sev_snp: sev_es && supported(launch) && snp_type,
        tdx: supported(child(features, "tdx")),
    })
}

/// The supported features of a node: the `<feature policy='require'>`
/// children of the root of `virsh hypervisor-cpu-baseline --features`
/// output (a `<cpu>`), in document order.
///
/// # Errors
/// Malformed XML.
pub fn read_supported_features(source: &str, text: &str) -> Result<Vec<String>, KubevirtError> {
    let doc = Source(source).parse(text)?;
    Ok(elements(doc.root_element())
        .filter(|f| f.has_tag_name("feature") && f.attribute("policy") == Some("require"))
        .map(|f| f.attribute("name").unwrap_or("").to_string())
        .collect())
}

/// The facts of a node whose domain capabilities cpumodel computed (from a
/// CPUID dump, or a host CPU), with `supported_features` as the features
/// the hypervisor offers.
pub fn facts_from_caps(caps: &DomainCpuCaps, supported_features: Vec<String>) -> NodeCpuFacts {
    let hm = &caps.host_model;
    NodeCpuFacts {
        host_model: hm.model.as_ref().map(|name| HostModelFacts {
            name: name.clone(),
            vendor: hm.vendor.clone(),
            required: hm
                .features
                .iter()
                .filter(|f| f.policy.unwrap_or(Policy::Require) == Policy::Require)
                .map(|f| f.name.clone())
                .collect(),
        }),
        models: caps
            .custom
            .iter()
            .map(|m| (m.name.clone(), m.usable))
            .collect(),
        supported_features,
        security: SevFacts::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_without_usable_or_name_are_skipped() {
        let f = read_domain_capabilities(
            "d.xml",
            "<domainCapabilities><cpu><mode name='custom'>\
             <model>NoAttr</model><model usable='yes'> </model>\
             <model usable='no'>Off</model><model usable='unknown'> Spaced </model>\
             </mode></cpu></domainCapabilities>",
        )
        .unwrap();
        assert_eq!(
            f.models,
            [("Off".to_string(), false), ("Spaced".to_string(), true)]
        );
        assert_eq!(f.host_model, None);
    }

    #[test]
    fn a_host_model_without_a_model_is_refused() {
        let e = read_domain_capabilities(
            "d.xml",
            "<domainCapabilities>\n<cpu><mode name='host-model' supported='yes'>\
             <vendor>Intel</vendor></mode></cpu></domainCapabilities>",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.xml:2:6: <mode>: the host-model mode has no <model>"
        );
    }

    #[test]
    fn sev_es_needs_guests_and_snp_needs_the_launch_type() {
        let doc = |es: &str, types: &str| {
            format!(
                "<domainCapabilities><features><sev supported='yes'>\
                 <maxESGuests>{es}</maxESGuests></sev>\
                 <launchSecurity supported='yes'><enum name='sectype'>{types}</enum>\
                 </launchSecurity><tdx supported='yes'/></features></domainCapabilities>"
            )
        };
        let s = |es, types| {
            read_domain_capabilities("d.xml", &doc(es, types))
                .unwrap()
                .security
        };
        let all = SevFacts {
            sev: true,
            sev_es: true,
            sev_snp: true,
            tdx: true,
        };
        assert_eq!(s("15", "<value>sev</value><value>sev-snp</value>"), all);
        assert_eq!(
            s("0", "<value>sev-snp</value>"),
            SevFacts {
                sev_es: false,
                sev_snp: false,
                ..all
            }
        );
        assert_eq!(
            s("1", "<value>sev</value>"),
            SevFacts {
                sev_snp: false,
                ..all
            }
        );
        assert_eq!(
            read_domain_capabilities("d.xml", &doc("x", ""))
                .unwrap_err()
                .to_string(),
            "d.xml:1:52: <maxESGuests>: 'x' is not a number of guests"
        );
    }
}
