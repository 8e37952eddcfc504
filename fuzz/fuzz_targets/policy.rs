//! Guest CPU policies: a nova.conf, then (after a line `%%%% policy`) one
//! setting per line: `mode=`, `model=`, `flag=`, `require=`, `vcpus=`,
//! `host=MODEL` (a host CPU of that model), `image KEY=VALUE` (an image
//! property) or a flavor extra spec. Parsing and building never panic, and
//! the guest `<cpu>` a valid policy gives reads back to the same definition.

#![no_main]

use cpumodel_cpudef::{parse_known_cpus, CpuDef, CpuKind, Mode};
use cpumodel_fuzz::{db, split_parts, text};
use cpumodel_policy::{
    build, parse_nova_conf, parse_specs, CpuMode, GuestDocument, HostCpu, PolicyInput,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    let db = db();
    let (mut conf_text, mut lines) = ("", "");
    for (name, part) in split_parts(text, "nova.conf") {
        if name == "nova.conf" {
            conf_text = part;
        } else {
            lines = part;
        }
    }
    let conf = parse_nova_conf("nova.conf", conf_text).ok();
    if let Some(c) = &conf {
        let _ = c.check_names(db, "nova.conf", true, true);
    }
    let (mut mode, mut models, mut flags) = (None, Vec::new(), Vec::new());
    let (mut required, mut vcpus, mut host) = (Vec::new(), None, None);
    let (mut flavor, mut image) = (Vec::new(), Vec::new());
    for line in lines.lines() {
        if let Some(v) = line.strip_prefix("mode=") {
            let Some(m) = CpuMode::parse(v) else { return };
            mode = Some(m);
        } else if let Some(v) = line.strip_prefix("model=") {
            models.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("flag=") {
            flags.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("require=") {
            required.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("vcpus=") {
            let Ok(n) = v.parse::<u32>() else { return };
            vcpus = Some(n);
        } else if let Some(v) = line.strip_prefix("host=") {
            let Ok(id) = db.find_model(v) else { return };
            let model = db.model(id);
            let mut def = CpuDef::new(CpuKind::Host);
            def.arch = Some("x86_64".into());
            def.model = Some(model.name.to_string());
            def.vendor = model.vendor.map(|v| db.vendor(v).name.to_string());
            host = Some(HostCpu {
                def,
                features: None,
            });
        } else if let Some(v) = line.strip_prefix("image ") {
            image.push(v.to_string());
        } else {
            flavor.push(line.to_string());
        }
    }
    let Ok(specs) = parse_specs(&flavor, &image) else {
        return;
    };
    let mode = mode
        .or(conf.as_ref().map(|c| c.effective_mode()))
        .unwrap_or(CpuMode::Cpu(Mode::HostModel));
    if models.is_empty() && mode == CpuMode::Cpu(Mode::Custom) {
        models = conf
            .as_ref()
            .map(|c| c.cpu_models.clone())
            .unwrap_or_default();
    }
    if flags.is_empty() {
        flags = conf
            .as_ref()
            .map(|c| c.extra_flags.clone())
            .unwrap_or_default();
    }
    let input = PolicyInput {
        mode,
        models,
        flags,
        required,
        vcpus,
        specs,
        explicit: None,
    };
    let Ok(guest) = build(db, &input, host.as_ref()) else {
        return;
    };
    let _ = GuestDocument::new(db, &guest);
    let _ = guest.qemu_arg(db);
    let cpu = guest.to_cpu_def(db);
    let xml = cpu.to_xml();
    match parse_known_cpus(db, "g.xml", &xml).as_deref() {
        Ok([back]) => assert_eq!(
            back.cpu, cpu,
            "the guest <cpu> reads back differently:\n{xml}"
        ),
        other => panic!("the guest <cpu> does not read back as one CPU: {other:?}\n{xml}"),
    }
});
