//! The CPUID guest: a tiny real-mode program and its memory layout.
//!
//! The program is written here as hand-assembled 16-bit x86 machine code.
//! It reads a list of `(leaf, subleaf)` queries from guest memory, executes
//! CPUID for each one, stores EAX, EBX, ECX and EDX next to each other in a
//! result table, writes where it stopped as proof that the loop ran to its
//! end, and halts. Nothing in it depends on a device: it is plain data, and
//! this module also encodes the query list and decodes the results, so all
//! of it is tested without KVM.
//!
//! Guest physical memory (one region of [`MEMORY_SIZE`] bytes at address
//! 0), all segments with base 0:
//!
//! | address            | what                                                         |
//! |--------------------|--------------------------------------------------------------|
//! | [`CODE`]           | the program ([`code`])                                       |
//! | [`QUERY_COUNT`]    | number of queries, `u16`                                     |
//! | [`END_MARK`]       | written by the guest: where its result pointer ended, `u16`  |
//! | [`QUERIES`]        | the queries, `u32` leaf then `u32` subleaf                   |
//! | [`RESULTS`]        | the results, `u32` EAX, EBX, ECX, EDX per query              |
//!
//! All values are little-endian, as x86 stores them.

use cpumodel_cpudata::CpuidKey;

/// Size of the guest's only memory region.
pub const MEMORY_SIZE: usize = 0x1_0000;
/// Where the program starts (CS base 0, IP = this).
pub const CODE: u16 = 0x1000;
/// The number of queries, a `u16`.
pub const QUERY_COUNT: u16 = 0x2000;
/// The guest stores its final result pointer here: [`RESULTS`] plus 16
/// bytes per query when every query ran.
pub const END_MARK: u16 = 0x2002;
/// The first query: leaf (`u32`) then subleaf (`u32`).
pub const QUERIES: u16 = 0x2010;
/// The first result: EAX, EBX, ECX, EDX (`u32` each).
pub const RESULTS: u16 = 0x3000;
/// Bytes per query.
pub const QUERY_SIZE: usize = 8;
/// Bytes per result.
pub const RESULT_SIZE: usize = 16;
/// The most queries one run takes: KVM's limit on CPUID entries, so any
/// table KVM accepts fits.
pub const MAX_QUERIES: usize = 256;

/// One instruction of the program: its bytes and its assembly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// The machine code.
    pub bytes: &'static [u8],
    /// The instruction in Intel syntax, with what it is for.
    pub asm: &'static str,
}

const fn i(bytes: &'static [u8], asm: &'static str) -> Instruction {
    Instruction { bytes, asm }
}

/// The program, one instruction per entry, for 16-bit real mode.
///
/// The loop counter lives in BP because CPUID overwrites EAX, EBX, ECX and
/// EDX. `0x66` is the operand-size prefix that makes an instruction use the
/// 32-bit registers in 16-bit code. ModRM bytes use 16-bit addressing:
/// `[si]` is r/m 100, `[di]` r/m 101 and a bare 16-bit address r/m 110
/// with mod 00; mod 01 adds an 8-bit displacement.
#[rustfmt::skip]
pub const PROGRAM: &[Instruction] = &[
    // Offset 0.
    i(&[0x31, 0xc0], "xor ax, ax           ; AX = 0"),
    // 2: 8E /r, ModRM 11 011(ds) 000(ax).
    i(&[0x8e, 0xd8], "mov ds, ax           ; data segment base 0"),
    // 4: B8+6 = mov si, imm16.
    i(&[0xbe, 0x10, 0x20], "mov si, 0x2010       ; SI = first query"),
    // 7: B8+7 = mov di, imm16.
    i(&[0xbf, 0x00, 0x30], "mov di, 0x3000       ; DI = first result slot"),
    // 10: 8B /r, ModRM 00 101(bp) 110(disp16).
    i(&[0x8b, 0x2e, 0x00, 0x20], "mov bp, [0x2000]     ; BP = number of queries"),
    // 14: 85 /r, ModRM 11 101(bp) 101(bp).
    i(&[0x85, 0xed], "test bp, bp"),
    // 16: 74 rel8; the next instruction is at 18, done at 51: +33.
    i(&[0x74, 0x21], "jz done              ; no query: nothing to do"),
    // 18 (next): 66 8B /r, ModRM 00 000(eax) 100([si]).
    i(&[0x66, 0x8b, 0x04], "next: mov eax, [si]  ; leaf"),
    // 21: ModRM 01 001(ecx) 100([si+disp8]).
    i(&[0x66, 0x8b, 0x4c, 0x04], "mov ecx, [si+4]      ; subleaf"),
    // 25.
    i(&[0x0f, 0xa2], "cpuid"),
    // 27: 66 89 /r, ModRM 00 000(eax) 101([di]).
    i(&[0x66, 0x89, 0x05], "mov [di], eax"),
    // 30: ModRM 01 011(ebx) 101([di+disp8]).
    i(&[0x66, 0x89, 0x5d, 0x04], "mov [di+4], ebx"),
    // 34: ModRM 01 001(ecx) 101.
    i(&[0x66, 0x89, 0x4d, 0x08], "mov [di+8], ecx"),
    // 38: ModRM 01 010(edx) 101.
    i(&[0x66, 0x89, 0x55, 0x0c], "mov [di+12], edx"),
    // 42: 83 /0 ib, ModRM 11 000 110(si).
    i(&[0x83, 0xc6, 0x08], "add si, 8            ; next query"),
    // 45: ModRM 11 000 111(di).
    i(&[0x83, 0xc7, 0x10], "add di, 16           ; next result slot"),
    // 48: 48+5 = dec bp.
    i(&[0x4d], "dec bp"),
    // 49: 75 rel8; the next instruction is at 51, next at 18: -33.
    i(&[0x75, 0xdf], "jnz next"),
    // 51 (done): 89 /r, ModRM 00 111(di) 110(disp16).
    i(&[0x89, 0x3e, 0x02, 0x20], "done: mov [0x2002], di ; end mark: 0x3000 + 16 * queries"),
    // 55 (stop).
    i(&[0xf4], "stop: hlt            ; exit to the VMM"),
    // 56: EB rel8; the next instruction would be at 58, stop at 55: -3.
    i(&[0xeb, 0xfd], "jmp stop             ; halt again if resumed"),
];

/// The program's machine code, to be loaded at [`CODE`].
pub fn code() -> Vec<u8> {
    PROGRAM
        .iter()
        .flat_map(|i| i.bytes.iter().copied())
        .collect()
}

/// The program as an assembly listing: offset from [`CODE`], bytes,
/// instruction.
pub fn listing() -> String {
    let mut out = String::new();
    let mut offset = usize::from(CODE);
    for ins in PROGRAM {
        let bytes: Vec<String> = ins.bytes.iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(&format!(
            "{offset:04x}  {:<12}  {}\n",
            bytes.join(" "),
            ins.asm
        ));
        offset += ins.bytes.len();
    }
    out
}

/// The query area: the count at [`QUERY_COUNT`], then the queries from
/// [`QUERIES`], as the bytes to write at [`QUERY_COUNT`].
///
/// # Panics
/// When there are more than [`MAX_QUERIES`] queries (the runner checks
/// first).
pub fn encode_queries(queries: &[CpuidKey]) -> Vec<u8> {
    assert!(queries.len() <= MAX_QUERIES, "too many CPUID queries");
    let mut out = vec![0u8; usize::from(QUERIES - QUERY_COUNT) + queries.len() * QUERY_SIZE];
    // cast: at most MAX_QUERIES (256), asserted above.
    #[allow(clippy::cast_possible_truncation)]
    let count = queries.len() as u16;
    out[..2].copy_from_slice(&count.to_le_bytes());
    let base = usize::from(QUERIES - QUERY_COUNT);
    for (n, key) in queries.iter().enumerate() {
        let at = base + n * QUERY_SIZE;
        out[at..at + 4].copy_from_slice(&key.leaf.to_le_bytes());
        out[at + 4..at + 8].copy_from_slice(&key.subleaf.to_le_bytes());
    }
    out
}

/// The end mark a guest that ran `queries` queries leaves.
///
/// # Panics
/// When there are more than [`MAX_QUERIES`] queries (the runner checks
/// first).
pub fn expected_end_mark(queries: usize) -> u16 {
    assert!(queries <= MAX_QUERIES, "too many CPUID queries");
    // cast: at most MAX_QUERIES × RESULT_SIZE = 0x1000 bytes, asserted above.
    #[allow(clippy::cast_possible_truncation)]
    let size = (queries * RESULT_SIZE) as u16;
    RESULTS + size
}

/// The results of `count` queries from the bytes at [`RESULTS`].
///
/// # Panics
/// When `bytes` is shorter than `count` results.
pub fn decode_results(bytes: &[u8], count: usize) -> Vec<[u32; 4]> {
    bytes[..count * RESULT_SIZE]
        .chunks_exact(RESULT_SIZE)
        .map(|r| {
            let word = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
            [word(0), word(4), word(8), word(12)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offset of every instruction from the start of the program.
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

    /// The offset of the instruction whose assembly starts with `label:`.
    fn label(name: &str) -> usize {
        let at = PROGRAM
            .iter()
            .position(|i| i.asm.starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no label {name}"));
        offsets()[at]
    }

    /// Where the rel8 jump at `index` lands.
    fn jump_target(index: usize) -> usize {
        let ins = PROGRAM[index];
        assert_eq!(ins.bytes.len(), 2, "{}", ins.asm);
        let next = offsets()[index] + 2;
        (next as isize + isize::from(ins.bytes[1] as i8)) as usize
    }

    fn index_of(asm_prefix: &str) -> usize {
        PROGRAM
            .iter()
            .position(|i| i.asm.starts_with(asm_prefix))
            .unwrap_or_else(|| panic!("no instruction {asm_prefix}"))
    }

    #[test]
    fn jumps_land_on_their_labels() {
        assert_eq!(jump_target(index_of("jz done")), label("done"));
        assert_eq!(jump_target(index_of("jnz next")), label("next"));
        assert_eq!(jump_target(index_of("jmp stop")), label("stop"));
        assert_eq!(
            offsets(),
            [0, 2, 4, 7, 10, 14, 16, 18, 21, 25, 27, 30, 34, 38, 42, 45, 48, 49, 51, 55, 56]
        );
    }

    #[test]
    fn the_addresses_in_the_code_are_the_layout() {
        let imm16 = |prefix: &str, at: usize| {
            let b = PROGRAM[index_of(prefix)].bytes;
            u16::from_le_bytes([b[at], b[at + 1]])
        };
        assert_eq!(imm16("mov si", 1), QUERIES);
        assert_eq!(imm16("mov di", 1), RESULTS);
        assert_eq!(imm16("mov bp", 2), QUERY_COUNT);
        assert_eq!(imm16("done:", 2), END_MARK);
        // The pointer steps are the record sizes.
        assert_eq!(
            usize::from(PROGRAM[index_of("add si")].bytes[2]),
            QUERY_SIZE
        );
        assert_eq!(
            usize::from(PROGRAM[index_of("add di")].bytes[2]),
            RESULT_SIZE
        );
        // The stores cover EAX, EBX, ECX, EDX in that order.
        let disp: Vec<u8> = ["mov [di+4]", "mov [di+8]", "mov [di+12]"]
            .iter()
            .map(|p| PROGRAM[index_of(p)].bytes[3])
            .collect();
        assert_eq!(disp, [4, 8, 12]);
    }

    #[test]
    fn the_regions_do_not_overlap_and_fit_in_memory() {
        let code_end = usize::from(CODE) + code().len();
        assert_eq!(code().len(), 58);
        assert!(code_end <= usize::from(QUERY_COUNT));
        assert!(usize::from(END_MARK) + 2 <= usize::from(QUERIES));
        let queries_end = usize::from(QUERIES) + MAX_QUERIES * QUERY_SIZE;
        assert!(queries_end <= usize::from(RESULTS));
        let results_end = usize::from(RESULTS) + MAX_QUERIES * RESULT_SIZE;
        assert!(results_end <= MEMORY_SIZE);
        // DI never wraps: the end mark of a full run fits in 16 bits.
        assert_eq!(expected_end_mark(MAX_QUERIES), 0x4000);
        assert_eq!(expected_end_mark(0), RESULTS);
    }

    #[test]
    fn queries_are_a_count_then_leaf_and_subleaf_pairs() {
        let bytes = encode_queries(&[
            CpuidKey::new(0, 0),
            CpuidKey::new(0x8000_001e, 0),
            CpuidKey::new(0xb, 1),
        ]);
        assert_eq!(bytes.len(), 0x10 + 3 * 8);
        assert_eq!(bytes[..2], [3, 0]);
        assert_eq!(bytes[0x10..0x18], [0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[0x18..0x20], [0x1e, 0, 0, 0x80, 0, 0, 0, 0]);
        assert_eq!(bytes[0x20..0x28], [0xb, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn results_are_four_little_endian_registers() {
        let mut bytes = Vec::new();
        for w in [0xd_u32, 0x756e_6547, 0x6c65_746e, 0x4965_6e69, 1, 2, 3, 4] {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(
            decode_results(&bytes, 2),
            [[0xd, 0x756e_6547, 0x6c65_746e, 0x4965_6e69], [1, 2, 3, 4]]
        );
    }

    #[test]
    fn the_listing_shows_every_instruction_at_its_address() {
        let l = listing();
        assert_eq!(l.lines().count(), PROGRAM.len());
        assert!(l.starts_with("1000  31 c0         xor ax, ax"), "{l}");
        assert!(l.contains("\n1019  0f a2         cpuid\n"), "{l}");
        assert!(l.contains("\n1037  f4            stop: hlt"), "{l}");
    }
}
