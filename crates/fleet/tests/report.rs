//! Reading host documents: views, host names and refusals.

use cpumodel_fleet::{read_host_report, View};
use cpumodel_map::Database;

const LEAF0: &str = "<cpuid eax_in='0x00000000' ecx_in='0x00' eax='0x0000000d' ebx='0x756e6547' ecx='0x6c65746e' edx='0x49656e69'/>";
const LEAF1: &str = "<cpuid eax_in='0x00000001' ecx_in='0x00' eax='0x000206c2' ebx='0x00200800' ecx='0x029ee3ff' edx='0xbfebfbff'/>";

fn dump(prologue: &str) -> String {
    format!("{prologue}<cpudata arch='x86'>\n{LEAF0}\n{LEAF1}\n</cpudata>\n")
}

#[test]
fn a_dump_names_its_host_and_view() {
    let db = Database::embedded();
    let r = read_host_report(&db, "a.xml", &dump("")).unwrap();
    assert_eq!((r.host, r.view), (None, View::RawCpuid));
    assert_eq!(r.profile.model_name(&db), "kvm32-v1");
    let r = read_host_report(
        &db,
        "a.xml",
        &dump("<!-- host: node-7 -->\n<!-- view: kvm (/dev/kvm) -->\n"),
    )
    .unwrap();
    assert_eq!((r.host.as_deref(), r.view), (Some("node-7"), View::Kvm));
}

#[test]
fn capabilities_and_host_cpus() {
    let db = Database::embedded();
    let cpu = "<cpu><arch>x86_64</arch><model>Westmere</model><vendor>Intel</vendor><feature name='vmx'/></cpu>";
    let caps = format!("<capabilities><host>{cpu}</host></capabilities>");
    let a = read_host_report(&db, "cpu.xml", cpu).unwrap();
    let b = read_host_report(&db, "caps.xml", &caps).unwrap();
    assert_eq!((a.view, b.view), (View::HostCpu, View::Capabilities));
    assert_eq!(a.profile, b.profile);
    assert_ne!(a.digest, b.digest);
    assert!(a.profile.features.contains(db.find_feature("vmx").unwrap()));
}

#[test]
fn linux_and_firecracker_documents_are_their_own_views() {
    let db = Database::embedded();
    let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 44\n\
                   stepping\t: 2\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca \
                   cmov pat pse36 clflush mmx fxsr sse sse2 syscall nx lm pni ssse3 cx16 sse4_1 \
                   sse4_2 popcnt lahf_lm\n";
    let r = read_host_report(&db, "cpuinfo", cpuinfo).unwrap();
    assert_eq!(r.view, View::LinuxFlags);
    assert_eq!(r.profile.model_name(&db), "Nehalem-v1");
    let flags = cpuinfo.lines().last().unwrap().split_once(':').unwrap().1;
    let lscpu = format!("Architecture: x86_64\nVendor ID: GenuineIntel\nFlags: {flags}\n");
    let r = read_host_report(&db, "lscpu", &lscpu).unwrap();
    assert_eq!(r.view, View::LinuxFlags);
    assert_eq!(r.profile.model_name(&db), "Nehalem-v1");
    // Leaf 1 of LEAF1 (a Westmere's), fixed whole.
    let bits = |v: u32| format!("0b{v:032b}");
    let template = format!(
        r#"{{"cpuid_modifiers": [{{"leaf": "0x1", "subleaf": "0x0", "flags": 0,
        "modifiers": [{{"register": "ecx", "bitmap": "{}"}}, {{"register": "edx", "bitmap": "{}"}}]}}]}}"#,
        bits(0x029e_e3ff),
        bits(0xbfeb_fbff)
    );
    let r = read_host_report(&db, "t.json", &template).unwrap();
    assert_eq!(r.view, View::Firecracker);
    assert_eq!(
        (View::parse("linux-flags"), View::parse("firecracker")),
        (Some(View::LinuxFlags), Some(View::Firecracker))
    );
}

#[test]
fn guest_cpus_are_refused() {
    let db = Database::embedded();
    let err = |text: &str| {
        read_host_report(&db, "g.xml", text)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("<cpu mode='custom' match='exact'><model>Westmere</model></cpu>"),
        "g.xml: holds a guest CPU, not a host CPU"
    );
    assert_eq!(
        err("<domain type='kvm'><cpu mode='host-model'/></domain>"),
        "g.xml: a domain definition holds a guest CPU, not a host CPU"
    );
    assert_eq!(
        err("<cpu><model>Westmere</model></cpu><cpu><model>Nehalem</model></cpu>"),
        "g.xml: holds 2 CPUs; a host document holds one"
    );
    assert_eq!(
        err("<cpu><arch>x86_64</arch><model>NoSuchModel</model></cpu>"),
        "g.xml: unknown CPU model 'NoSuchModel'"
    );
    assert_eq!(
        err("<cpudata arch='x86'>"),
        err("<cpudata arch='x86'>").lines().next().unwrap()
    );
    assert!(
        err("<cpudata arch='x86'>").starts_with("g.xml:1:"),
        "{}",
        err("<cpudata arch='x86'>")
    );
}

/// A `HostReader` answers exactly as `read_host_report`, for documents it
/// has seen (other prologue, same body) and not, and keeps views apart.
#[test]
fn the_reader_remembers_bodies_and_answers_the_same() {
    let db = Database::embedded();
    let reader = cpumodel_fleet::HostReader::new(&db);
    let docs = [
        dump("<!-- host: a -->\n"),
        dump("<!-- host: b -->\n"),
        dump("<!-- host: c -->\n<!-- view: kvm (/dev/kvm) -->\n"),
        dump(""),
        "<cpu><arch>x86_64</arch><model>Westmere</model><vendor>Intel</vendor></cpu>".to_string(),
    ];
    for _ in 0..2 {
        for d in &docs {
            assert_eq!(
                reader.read("d.xml", d),
                read_host_report(&db, "d.xml", d),
                "{d}"
            );
        }
    }
    let bad = "<cpu mode='custom'><model>Westmere</model></cpu>";
    assert_eq!(
        reader.read("g.xml", bad),
        read_host_report(&db, "g.xml", bad)
    );
}
