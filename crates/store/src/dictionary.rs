//! zstd dictionaries trained on a store's own documents.
//!
//! A fleet's host documents are near copies of each other: machines of one
//! kind differ in a host name and a few feature bits. Compressed one by one
//! each still carries the whole structure (about 520 bytes of a 3.3 KB
//! dump); compressed with a dictionary trained on a couple of hundred of
//! them, it carries little more than what differs (about 170 bytes).
//!
//! An importer trains a dictionary on its first documents, before the store
//! is even opened, and compresses every document with it on its reader
//! threads. The dictionary travels with the documents and the store keeps
//! it, once per content digest, in the same transaction as the first batch
//! that uses it: a failed import leaves no dictionary behind, and each
//! document names the one it needs.

use std::cell::RefCell;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// zstd level for documents: on host documents of a few KB, level 1
/// compresses as well as level 3 (zstd's default) in less time.
const ZSTD_LEVEL: i32 = 1;

/// Documents an import needs before it trains a dictionary: fewer are not
/// worth one (a dictionary costs a few KB and tens of milliseconds).
pub const DICTIONARY_SAMPLES: usize = 200;

/// The largest dictionary trained.
const DICTIONARY_BYTES: usize = 16 * 1024;

/// A dictionary for documents, shared by the threads that compress with it
/// (cloning it is cheap).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentDictionary {
    digest: [u8; 32],
    bytes: Arc<[u8]>,
}

impl DocumentDictionary {
    /// A dictionary trained on `samples` (an import's first documents);
    /// `None` when there are fewer than [`DICTIONARY_SAMPLES`] or zstd
    /// finds nothing to learn from them (documents are then compressed on
    /// their own).
    pub fn train(samples: &[&str]) -> Option<Self> {
        if samples.len() < DICTIONARY_SAMPLES {
            return None;
        }
        let samples: Vec<&[u8]> = samples.iter().map(|s| s.as_bytes()).collect();
        let bytes = zstd::dict::from_samples(&samples, DICTIONARY_BYTES).ok()?;
        Some(Self::from_bytes(bytes))
    }

    /// A dictionary as the store keeps it.
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Self {
        DocumentDictionary {
            digest: Sha256::digest(&bytes).into(),
            bytes: bytes.into(),
        }
    }

    /// The SHA-256 of the dictionary, which identifies it in a store.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The dictionary itself.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `document` compressed with this dictionary, for a
    /// [`Document::Compressed`](crate::Document::Compressed) that carries it.
    ///
    /// # Errors
    /// zstd's, which only a failed allocation causes.
    pub fn compress(&self, document: &str) -> std::io::Result<Vec<u8>> {
        compress_with(Some(self), document.as_bytes())
    }
}

/// `document` compressed with `dictionary`, or plainly, on this thread's
/// compression context (making one per document costs more than
/// compressing it).
pub(crate) fn compress_with(
    dictionary: Option<&DocumentDictionary>,
    document: &[u8],
) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static COMPRESSOR: RefCell<Option<(Option<[u8; 32]>, zstd::bulk::Compressor<'static>)>> =
            const { RefCell::new(None) };
    }
    let id = dictionary.map(|d| d.digest);
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|(have, _)| *have != id) {
            let compressor = match dictionary {
                Some(d) => zstd::bulk::Compressor::with_dictionary(ZSTD_LEVEL, &d.bytes)?,
                None => zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
            };
            *c = Some((id, compressor));
        }
        let (_, compressor) = c.as_mut().expect("set above");
        compressor.compress(document)
    })
}

/// A document's text from its stored body: `size` bytes, compressed with
/// `dictionary` when it names one.
pub(crate) fn decompress(
    body: &[u8],
    size: usize,
    dictionary: Option<&[u8]>,
) -> std::io::Result<Vec<u8>> {
    match dictionary {
        Some(d) => zstd::bulk::Decompressor::with_dictionary(d)?.decompress(body, size),
        None => zstd::stream::decode_all(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                format!(
                    "<cpudata arch='x86'>\n<!-- host: node-{i:05} -->\n  <cpuid eax_in='0x00000001' ecx_in='0x00000000' eax='0x000{:05x}' ebx='0x00000800' ecx='0x{:08x}' edx='0x178bfbff'/>\n  <cpuid eax_in='0x00000007' ecx_in='0x00000000' eax='0x00000000' ebx='0x219c91a9' ecx='0x{:08x}' edx='0x00000000'/>\n</cpudata>\n",
                    i % 7,
                    0x7ed8_320b_u32 ^ (1 << (i % 31)),
                    i * 2_654_435_761 % 0xffff_ffff,
                )
            })
            .collect()
    }

    #[test]
    fn documents_round_trip_with_and_without_a_dictionary() {
        let docs = fleet(DICTIONARY_SAMPLES);
        let samples: Vec<&str> = docs.iter().map(String::as_str).collect();
        let dict = DocumentDictionary::train(&samples).expect("enough samples");
        assert_eq!(DocumentDictionary::from_bytes(dict.bytes().to_vec()), dict);
        for doc in &docs[..20] {
            let packed = dict.compress(doc).unwrap();
            let plain = compress_with(None, doc.as_bytes()).unwrap();
            assert!(
                packed.len() < plain.len(),
                "{} < {}",
                packed.len(),
                plain.len()
            );
            assert_eq!(
                decompress(&packed, doc.len(), Some(&dict.bytes)).unwrap(),
                doc.as_bytes()
            );
            assert_eq!(decompress(&plain, doc.len(), None).unwrap(), doc.as_bytes());
        }
        assert!(decompress(b"garbage", 10, Some(&dict.bytes)).is_err());
    }

    #[test]
    fn too_few_samples_train_nothing() {
        let docs = fleet(DICTIONARY_SAMPLES - 1);
        let samples: Vec<&str> = docs.iter().map(String::as_str).collect();
        assert_eq!(DocumentDictionary::train(&samples), None);
    }
}
