//! The probe guest: a 64 KiB firmware image that runs CPUID and prints the
//! answers on an I/O port.
//!
//! The guest replaces the BIOS (`-bios`, or libvirt's `<loader
//! type='rom'>`), so nothing runs before it and a boot takes no firmware
//! time. It is the real-mode CPUID loop of `cpumodel verify`'s guest
//! ([`cpumodel_kvm::guest`]) adapted to a ROM: the queries are part of the
//! image (read through DS = CS), the answers go to RAM through ES = 0 and
//! then out of an I/O port with one `rep outsb` (QEMU's `isa-debugcon`, or
//! the first serial port), and a write to `isa-debug-exit` ends QEMU.
//! Everything here is data: building the image and reading its output are
//! pure functions, tested without QEMU.
//!
//! Image layout (offset 0 is physical address 0xF0000, where the last
//! 64 KiB of the ROM also appear):
//!
//! | offset            | what                                          |
//! |-------------------|-----------------------------------------------|
//! | 0                 | the program ([`PROGRAM`])                     |
//! | [`QUERY_COUNT`]   | the number of queries, `u16`                  |
//! | [`QUERIES`]       | the queries: `u32` leaf, `u32` subleaf        |
//! | [`RESET`]         | the reset vector: `jmp far 0xf000:0`          |
//!
//! RAM (segment 0): the answers from [`RESULTS`], `u32` EAX, EBX, ECX, EDX
//! per query, which is also exactly what the port receives.

use cpumodel_cpudata::CpuidKey;
use cpumodel_kvm::guest::Instruction;

/// The image's size: QEMU's PC machine takes a BIOS of a multiple of
/// 64 KiB.
pub const IMAGE_SIZE: usize = 0x1_0000;
/// Where the number of queries is (`u16`).
pub const QUERY_COUNT: u16 = 0x0100;
/// Where the first query is.
pub const QUERIES: u16 = 0x0110;
/// Where the answers go in RAM (segment 0).
pub const RESULTS: u16 = 0x1000;
/// Where the processor starts after reset (CS base 0xFFFF0000, IP 0xFFF0:
/// the image's last 16 bytes).
pub const RESET: usize = 0xfff0;
/// Bytes per query.
pub const QUERY_SIZE: usize = 8;
/// Bytes per answer.
pub const RESULT_SIZE: usize = 16;
/// The most queries an image holds: the answers (16 bytes each) must fit
/// between [`RESULTS`] and the end of segment 0.
pub const MAX_QUERIES: usize = 1024;
/// `isa-debugcon`'s usual port (Bochs's `0xe9` hack).
pub const DEBUGCON_PORT: u16 = 0xe9;
/// The first serial port's transmit register (COM1).
pub const SERIAL_PORT: u16 = 0x3f8;
/// The port `isa-debug-exit` is placed at (`iobase=0xf4`): writing V ends
/// QEMU with exit status `2 * V + 1`.
pub const EXIT_PORT: u8 = 0xf4;
/// The value the guest writes to [`EXIT_PORT`].
pub const EXIT_VALUE: u8 = 0x10;
/// QEMU's exit status after the guest's write to [`EXIT_PORT`]: 33, which
/// QEMU itself never uses (it exits with 1 when it refuses to start).
pub const EXIT_STATUS: i32 = 2 * EXIT_VALUE as i32 + 1;

const fn i(bytes: &'static [u8], asm: &'static str) -> Instruction {
    Instruction { bytes, asm }
}

/// The program, one instruction per entry, for 16-bit real mode. The two
/// 16-bit immediates of `mov dx` (the output port) are patched in by
/// [`image`].
///
/// `0x66` is the operand-size prefix (32-bit registers in 16-bit code),
/// `0x26` the ES segment override. The loop counter lives in BP because
/// CPUID overwrites EAX, EBX, ECX and EDX. ModRM bytes use 16-bit
/// addressing: `[si]` is r/m 100, `[di]` r/m 101 and a bare 16-bit address
/// r/m 110 with mod 00; mod 01 adds an 8-bit displacement.
#[rustfmt::skip]
pub const PROGRAM: &[Instruction] = &[
    // Offset 0.
    i(&[0xfa], "cli                  ; no interrupt handler exists"),
    // 1.
    i(&[0x31, 0xc0], "xor ax, ax"),
    // 3: 8E /r, ModRM 11 000(es) 000(ax).
    i(&[0x8e, 0xc0], "mov es, ax           ; ES = 0: answers go to RAM"),
    // 5: 8C /r, ModRM 11 001(cs) 000(ax).
    i(&[0x8c, 0xc8], "mov ax, cs"),
    // 7: 8E /r, ModRM 11 011(ds) 000(ax).
    i(&[0x8e, 0xd8], "mov ds, ax           ; DS = CS: queries are in the image"),
    // 9: B8+6 = mov si, imm16.
    i(&[0xbe, 0x10, 0x01], "mov si, 0x0110       ; SI = first query"),
    // 12: B8+7 = mov di, imm16.
    i(&[0xbf, 0x00, 0x10], "mov di, 0x1000       ; DI = first answer slot"),
    // 15: 8B /r, ModRM 00 101(bp) 110(disp16).
    i(&[0x8b, 0x2e, 0x00, 0x01], "mov bp, [0x0100]     ; BP = number of queries"),
    // 19: 85 /r, ModRM 11 101(bp) 101(bp).
    i(&[0x85, 0xed], "test bp, bp"),
    // 21: 74 rel8; the next instruction is at 23, done at 60: +37.
    i(&[0x74, 0x25], "jz done              ; no query: nothing to do"),
    // 23 (next): 66 8B /r, ModRM 00 000(eax) 100([si]).
    i(&[0x66, 0x8b, 0x04], "next: mov eax, [si]  ; leaf"),
    // 26: ModRM 01 001(ecx) 100([si+disp8]).
    i(&[0x66, 0x8b, 0x4c, 0x04], "mov ecx, [si+4]      ; subleaf"),
    // 30.
    i(&[0x0f, 0xa2], "cpuid"),
    // 32: 26 66 89 /r, ModRM 00 000(eax) 101([di]).
    i(&[0x26, 0x66, 0x89, 0x05], "mov es:[di], eax"),
    // 36: ModRM 01 011(ebx) 101([di+disp8]).
    i(&[0x26, 0x66, 0x89, 0x5d, 0x04], "mov es:[di+4], ebx"),
    // 41: ModRM 01 001(ecx) 101.
    i(&[0x26, 0x66, 0x89, 0x4d, 0x08], "mov es:[di+8], ecx"),
    // 46: ModRM 01 010(edx) 101.
    i(&[0x26, 0x66, 0x89, 0x55, 0x0c], "mov es:[di+12], edx"),
    // 51: 83 /0 ib, ModRM 11 000 110(si).
    i(&[0x83, 0xc6, 0x08], "add si, 8            ; next query"),
    // 54: ModRM 11 000 111(di).
    i(&[0x83, 0xc7, 0x10], "add di, 16           ; next answer slot"),
    // 57: 48+5 = dec bp.
    i(&[0x4d], "dec bp"),
    // 58: 75 rel8; the next instruction is at 60, next at 23: -37.
    i(&[0x75, 0xdb], "jnz next"),
    // 60 (done): 89 /r, ModRM 11 111(di) 001(cx).
    i(&[0x89, 0xf9], "done: mov cx, di"),
    // 62: 81 /5 iw, ModRM 11 101 001(cx).
    i(&[0x81, 0xe9, 0x00, 0x10], "sub cx, 0x1000       ; CX = bytes of answers"),
    // 66: 8C /r, ModRM 11 000(es) 000(ax).
    i(&[0x8c, 0xc0], "mov ax, es"),
    // 68: 8E /r, ModRM 11 011(ds) 000(ax).
    i(&[0x8e, 0xd8], "mov ds, ax           ; DS = 0: read the answers back"),
    // 70.
    i(&[0xbe, 0x00, 0x10], "mov si, 0x1000"),
    // 73: B8+2 = mov dx, imm16; the port is patched in.
    i(&[0xba, 0x00, 0x00], "mov dx, PORT         ; isa-debugcon or COM1"),
    // 76.
    i(&[0xfc], "cld                  ; SI counts up"),
    // 77: F3 = rep, 6E = outsb.
    i(&[0xf3, 0x6e], "rep outsb            ; every answer byte to the port"),
    // 79: B0 ib = mov al, imm8.
    i(&[0xb0, 0x10], "mov al, 0x10"),
    // 81: E6 ib = out imm8, al.
    i(&[0xe6, 0xf4], "out 0xf4, al         ; isa-debug-exit: QEMU exits with 33"),
    // 83 (stop).
    i(&[0xf4], "stop: hlt            ; without isa-debug-exit: wait here"),
    // 84: EB rel8; the next instruction would be at 86, stop at 83: -3.
    i(&[0xeb, 0xfd], "jmp stop             ; halt again if woken"),
];

/// The reset vector: `jmp far 0xf000:0x0000` (EA ptr16:16), so the program
/// runs with CS = 0xF000 (base 0xF0000) and its offsets are image offsets.
pub const RESET_JUMP: [u8; 5] = [0xea, 0x00, 0x00, 0x00, 0xf0];

/// The offset of the `mov dx, PORT` immediate in the program.
fn port_offset() -> usize {
    let mut at = 0;
    for ins in PROGRAM {
        if ins.asm.starts_with("mov dx") {
            return at + 1;
        }
        at += ins.bytes.len();
    }
    unreachable!("the program sets DX")
}

/// The program's machine code with `port` as the output port.
pub fn code(port: u16) -> Vec<u8> {
    let mut code: Vec<u8> = PROGRAM
        .iter()
        .flat_map(|i| i.bytes.iter().copied())
        .collect();
    let at = port_offset();
    code[at..at + 2].copy_from_slice(&port.to_le_bytes());
    code
}

/// The program as an assembly listing: image offset, bytes, instruction.
pub fn listing() -> String {
    let mut out = String::new();
    let mut offset = 0;
    for ins in PROGRAM {
        let bytes: Vec<String> = ins.bytes.iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(&format!(
            "{offset:04x}  {:<14}  {}\n",
            bytes.join(" "),
            ins.asm
        ));
        offset += ins.bytes.len();
    }
    out
}

/// Too many queries for one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{count} CPUID queries do not fit the probe image (at most {MAX_QUERIES})")]
pub struct TooManyQueries {
    /// How many were asked.
    pub count: usize,
}

/// The firmware image that runs `queries` and writes the answers to
/// `port`: [`IMAGE_SIZE`] bytes.
///
/// # Errors
/// [`TooManyQueries`] past [`MAX_QUERIES`].
pub fn image(queries: &[CpuidKey], port: u16) -> Result<Vec<u8>, TooManyQueries> {
    let count = u16::try_from(queries.len())
        .ok()
        .filter(|_| queries.len() <= MAX_QUERIES)
        .ok_or(TooManyQueries {
            count: queries.len(),
        })?;
    let mut rom = vec![0u8; IMAGE_SIZE];
    let code = code(port);
    rom[..code.len()].copy_from_slice(&code);
    let at = usize::from(QUERY_COUNT);
    rom[at..at + 2].copy_from_slice(&count.to_le_bytes());
    for (n, key) in queries.iter().enumerate() {
        let at = usize::from(QUERIES) + n * QUERY_SIZE;
        rom[at..at + 4].copy_from_slice(&key.leaf.to_le_bytes());
        rom[at + 4..at + 8].copy_from_slice(&key.subleaf.to_le_bytes());
    }
    rom[RESET..RESET + RESET_JUMP.len()].copy_from_slice(&RESET_JUMP);
    Ok(rom)
}

/// Subleaves queried beyond 0, per leaf with subleaves: enough for every
/// rule of the `<cpudata>` walk (`cpumodel_cpudata::walk`) on any CPU QEMU
/// models, plus the AMD cache leaf 0x8000001D.
const SUBLEAVES: &[(u32, u32)] = &[
    (0x4, 15),
    (0x7, 3),
    (0xb, 7),
    (0xd, 63),
    (0xf, 3),
    (0x10, 7),
    (0x12, 15),
    (0x14, 3),
    (0x17, 3),
    (0x18, 7),
    (0x1d, 3),
    (0x1f, 7),
    (0x24, 3),
    (0x8000_001d, 7),
    (0x8000_0020, 3),
    (0x8000_0026, 3),
];

/// The highest basic and extended leaf queried: above any maximum leaf a
/// QEMU model reports.
pub const SWEEP_BASIC: u32 = 0x3f;
/// See [`SWEEP_BASIC`].
pub const SWEEP_EXTENDED: u32 = 0x8000_003f;

/// Every `(leaf, subleaf)` the guest asks: all basic leaves up to
/// [`SWEEP_BASIC`] and extended ones up to [`SWEEP_EXTENDED`], the
/// subleaves of the leaves that have them, and every key of `extra` (the
/// intended table's), sorted and without repeats. What the CPU really
/// offers is picked from the answers afterwards ([`crate::output`]).
pub fn sweep(extra: &[CpuidKey]) -> Vec<CpuidKey> {
    let mut keys: Vec<CpuidKey> = (0..=SWEEP_BASIC)
        .chain(0x8000_0000..=SWEEP_EXTENDED)
        .map(CpuidKey::leaf)
        .collect();
    for &(leaf, last) in SUBLEAVES {
        keys.extend((1..=last).map(|sub| CpuidKey::new(leaf, sub)));
    }
    keys.extend_from_slice(extra);
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets() -> Vec<usize> {
        PROGRAM
            .iter()
            .scan(0, |at, i| {
                let this = *at;
                *at += i.bytes.len();
                Some(this)
            })
            .collect()
    }

    fn index_of(asm_prefix: &str) -> usize {
        PROGRAM
            .iter()
            .position(|i| i.asm.starts_with(asm_prefix))
            .unwrap_or_else(|| panic!("no instruction {asm_prefix}"))
    }

    fn label(name: &str) -> usize {
        offsets()[index_of(&format!("{name}:"))]
    }

    fn jump_target(index: usize) -> usize {
        let ins = PROGRAM[index];
        assert_eq!(ins.bytes.len(), 2, "{}", ins.asm);
        let next = offsets()[index] + 2;
        next.checked_add_signed(isize::from(i8::from_le_bytes([ins.bytes[1]])))
            .expect("in the image")
    }

    #[test]
    fn jumps_land_on_their_labels() {
        assert_eq!(jump_target(index_of("jz done")), label("done"));
        assert_eq!(jump_target(index_of("jnz next")), label("next"));
        assert_eq!(jump_target(index_of("jmp stop")), label("stop"));
    }

    #[test]
    fn the_addresses_in_the_code_are_the_layout() {
        let imm16 = |prefix: &str, at: usize| {
            let b = PROGRAM[index_of(prefix)].bytes;
            u16::from_le_bytes([b[at], b[at + 1]])
        };
        assert_eq!(imm16("mov si, 0x0110", 1), QUERIES);
        assert_eq!(imm16("mov di", 1), RESULTS);
        assert_eq!(imm16("mov bp", 2), QUERY_COUNT);
        assert_eq!(imm16("sub cx", 2), RESULTS);
        assert_eq!(imm16("mov si, 0x1000", 1), RESULTS);
        assert_eq!(PROGRAM[index_of("out 0xf4")].bytes[1], EXIT_PORT);
        assert_eq!(PROGRAM[index_of("mov al")].bytes[1], EXIT_VALUE);
        assert_eq!(EXIT_STATUS, 33);
        assert_eq!(
            usize::from(PROGRAM[index_of("add si")].bytes[2]),
            QUERY_SIZE
        );
        assert_eq!(
            usize::from(PROGRAM[index_of("add di")].bytes[2]),
            RESULT_SIZE
        );
        let disp: Vec<u8> = ["mov es:[di+4]", "mov es:[di+8]", "mov es:[di+12]"]
            .iter()
            .map(|p| PROGRAM[index_of(p)].bytes[4])
            .collect();
        assert_eq!(disp, [4, 8, 12]);
    }

    #[test]
    fn the_regions_fit() {
        assert!(code(DEBUGCON_PORT).len() <= usize::from(QUERY_COUNT));
        assert!(usize::from(QUERY_COUNT) + 2 <= usize::from(QUERIES));
        assert!(usize::from(QUERIES) + MAX_QUERIES * QUERY_SIZE <= RESET);
        // DI never wraps, and the answers stay below 640 KiB of RAM.
        assert!(usize::from(RESULTS) + MAX_QUERIES * RESULT_SIZE <= 0x1_0000);
        assert!(sweep(&[]).len() <= MAX_QUERIES);
    }

    #[test]
    fn the_image_holds_code_port_queries_and_reset_vector() {
        let rom = image(
            &[CpuidKey::new(0x8000_001e, 0), CpuidKey::new(0xd, 1)],
            0x3f8,
        )
        .expect("fits");
        assert_eq!(rom.len(), IMAGE_SIZE);
        assert_eq!(rom[0], 0xfa);
        let at = port_offset();
        assert_eq!(rom[at - 1..at + 2], [0xba, 0xf8, 0x03]);
        assert_eq!(rom[0x100..0x102], [2, 0]);
        assert_eq!(rom[0x110..0x118], [0x1e, 0, 0, 0x80, 0, 0, 0, 0]);
        assert_eq!(rom[0x118..0x120], [0xd, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(rom[0xfff0..0xfff5], RESET_JUMP);
        assert_eq!(
            image(&vec![CpuidKey::leaf(0); MAX_QUERIES + 1], 0xe9),
            Err(TooManyQueries {
                count: MAX_QUERIES + 1
            })
        );
    }

    #[test]
    fn the_sweep_covers_every_leaf_and_the_table() {
        let keys = sweep(&[CpuidKey::new(0x8000_001d, 3), CpuidKey::new(0x40, 0)]);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for k in [
            CpuidKey::leaf(0),
            CpuidKey::leaf(0x3f),
            CpuidKey::new(0xd, 63),
            CpuidKey::new(0x4, 15),
            CpuidKey::leaf(0x8000_0000),
            CpuidKey::leaf(0x8000_003f),
            CpuidKey::new(0x40, 0),
        ] {
            assert!(keys.contains(&k), "{k}");
        }
    }

    #[test]
    fn the_listing_shows_every_instruction() {
        let l = listing();
        assert_eq!(l.lines().count(), PROGRAM.len());
        assert!(l.starts_with("0000  fa              cli"), "{l}");
        assert!(l.contains("\n001e  0f a2           cpuid\n"), "{l}");
    }
}
