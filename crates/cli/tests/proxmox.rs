//! Proxmox VE: VM `cpu:` options and `cpu-models.conf` read as guest CPUs,
//! and guest CPUs written as custom models.

mod common;
use common::*;

const VM: &str = "boot: order=scsi0\ncores: 4\ncpu: Skylake-Client-IBRS,flags=+pcid;-spec-ctrl;+aes\nmemory: 4096\nname: web-1\n\n[before-upgrade]\ncpu: host\n";

#[test]
fn a_vm_config_is_a_guest_cpu_and_becomes_a_custom_model() {
    let dir = TempDir::new();
    dir.write("100.conf", VM);
    assert_eq!(
        run(&dir, &["proxmox", "100.conf", "--name", "web", "--phys-bits", "40"]),
        Run::ok(
            "cpu-model: web\n\tflags +pcid;-spec-ctrl;+aes\n\tphys-bits 40\n\treported-model Skylake-Client-IBRS\n\n"
        )
    );
    // The custom model reads back as the same guest CPU.
    let conf = run(&dir, &["proxmox", "100.conf", "--name", "web"]);
    dir.write("cpu-models.conf", &conf.stdout);
    let a = run(&dir, &["expand", "100.conf"]);
    let b = run(&dir, &["expand", "cpu-models.conf"]);
    assert_eq!(a.code, Some(0), "{a:?}");
    assert_eq!(a, b);
    assert!(a
        .stdout
        .starts_with("<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>Skylake-Client-IBRS</model>\n"));
    let json = run(
        &dir,
        &["proxmox", "100.conf", "--name", "web", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["vm_cpu"], "custom-web");
    assert_eq!(
        v["flags"],
        serde_json::json!(["+pcid", "-spec-ctrl", "+aes"])
    );
}

#[test]
fn a_libvirt_guest_becomes_a_custom_model_with_qemu_flag_names() {
    let dir = TempDir::new();
    dir.write(
        "guest.xml",
        "<cpu mode='custom' match='exact'>\n  <model>Haswell-noTSX</model>\n  \
         <feature policy='disable' name='vmx'/>\n  <feature policy='require' name='pclmuldq'/>\n  \
         <feature policy='force' name='lahf_lm'/>\n</cpu>\n",
    );
    assert_eq!(
        run(&dir, &["proxmox", "guest.xml", "--name", "fleet_v2"]),
        Run::ok(
            "cpu-model: fleet_v2\n\tflags -vmx;+pclmulqdq;+lahf-lm\n\treported-model Haswell-noTSX\n\n"
        )
    );
}

#[test]
fn proxmox_level_types_reach_their_level() {
    // Proxmox's x86-64-vN types are qemu64 plus the level's flags; QEMU's
    // qemu64 has lahf_lm (libvirt's definition of it does not), and the
    // guest gets QEMU's.
    let dir = TempDir::new();
    for (ty, level) in [
        ("x86-64-v2", "v2"),
        ("x86-64-v2-AES", "v2"),
        ("x86-64-v3", "v3"),
        ("x86-64-v4", "v4"),
    ] {
        dir.write("vm.conf", &format!("cores: 1\ncpu: {ty}\n"));
        let out = run(&dir, &["expand", "vm.conf", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["model"], "qemu64", "{ty}");
        assert_eq!(v["psabi_level"], level, "{ty}");
    }
}

#[test]
fn nested_virt_follows_the_models_vendor() {
    let dir = TempDir::new();
    dir.write("vm.conf", "cpu: EPYC-Rome,flags=+nested-virt\n");
    let out = run(&dir, &["expand", "vm.conf"]);
    assert!(
        out.stdout
            .contains("<feature policy='require' name='svm'/>"),
        "{out:?}"
    );
    dir.write("vm.conf", "cpu: kvm64,flags=+nested-virt\n");
    assert_eq!(
        run(&dir, &["expand", "vm.conf"]),
        Run::error("vm.conf:1: flags: nested-virt is vmx or svm by the host's vendor, and this CPU type names none")
    );
}
