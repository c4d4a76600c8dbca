//! The Status List itself (draft-ietf-oauth-status-list-18 §4.1, §4.2): one status of `bits`
//! bits per Referenced Token, packed into bytes from the least significant bit, compressed with
//! DEFLATE in the ZLIB format (RFC 1950, RFC 1951) and base64url-encoded as the `lst` member.

use std::io::{Read, Write};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;

/// Why an encoded Status List was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArrayError {
    #[error("bits must be 1, 2, 4 or 8")]
    Bits,
    #[error("lst is not base64url")]
    Base64,
    #[error("lst does not decompress as ZLIB (RFC 1950)")]
    Zlib,
    /// The decompressed list is larger than the cap (a zlib bomb, or a list too large to keep).
    #[error("lst decompresses to more than {0} bytes")]
    TooLarge(usize),
    #[error("a status value of {value} does not fit {bits} bits")]
    Value { value: u8, bits: u8 },
    #[error("index {0} is outside the list")]
    Index(u64),
    #[error("compressing the list failed")]
    Compress,
}

/// The number of bits per status: 1, 2, 4 or 8 (§4.1 step 1), so that a status never spans two
/// bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bits(u8);

impl Bits {
    pub const TWO: Bits = Bits(2);

    pub fn new(bits: u64) -> Result<Bits, ArrayError> {
        match bits {
            1 | 2 | 4 | 8 => Ok(Bits(bits as u8)),
            _ => Err(ArrayError::Bits),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }

    fn per_byte(self) -> u64 {
        u64::from(8 / self.0)
    }

    fn mask(self) -> u8 {
        // 0b1, 0b11, 0b1111, 0b11111111
        u8::MAX >> (8 - self.0)
    }
}

/// Where the status of `index` lives in a list of `bits` bits per entry: its byte, and the
/// shift of its lowest bit (lower indexes take the less significant bits, §4.1 step 3). Stores
/// that keep the byte array themselves (redb, Redis) set entries with this.
pub fn entry_position(bits: Bits, index: u64) -> (u64, u32) {
    let per_byte = bits.per_byte();
    // index % per_byte < 8, times bits ≤ 8: the shift is below 8
    let shift = ((index % per_byte) * u64::from(bits.0)) as u32;
    (index / per_byte, shift)
}

/// `byte` with the entry at `shift` set to `value` (which must fit `bits`).
pub fn set_in_byte(byte: u8, bits: Bits, shift: u32, value: u8) -> u8 {
    let mask = bits.mask() << shift;
    (byte & !mask) | ((value & bits.mask()) << shift)
}

/// A decoded Status List: the byte array and its bit size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusArray {
    bits: Bits,
    bytes: Vec<u8>,
}

impl StatusArray {
    /// A list of `entries` statuses, all VALID (0): the default value that makes an unused
    /// index indistinguishable from a valid token (§13.3). Rounded up to whole bytes (§13.4).
    pub fn new(bits: Bits, entries: u64) -> StatusArray {
        let bytes = entries.div_ceil(bits.per_byte());
        StatusArray {
            bits,
            bytes: vec![0; usize::try_from(bytes).unwrap_or(usize::MAX)],
        }
    }

    /// A list over stored bytes, padded with VALID entries to `entries` when shorter (a store
    /// keeps only the bytes up to the last one ever set).
    pub fn from_bytes(bits: Bits, mut bytes: Vec<u8>, entries: u64) -> StatusArray {
        let wanted = usize::try_from(entries.div_ceil(bits.per_byte())).unwrap_or(usize::MAX);
        if bytes.len() < wanted {
            bytes.resize(wanted, 0);
        }
        StatusArray { bits, bytes }
    }

    pub fn bits(&self) -> Bits {
        self.bits
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many statuses the list holds.
    pub fn len(&self) -> u64 {
        (self.bytes.len() as u64).saturating_mul(self.bits.per_byte())
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Where the status of `index` lives: its byte and the shift of its lowest bit.
    fn position(&self, index: u64) -> Option<(usize, u32)> {
        let (byte, shift) = entry_position(self.bits, index);
        let byte = usize::try_from(byte).ok()?;
        (byte < self.bytes.len()).then_some((byte, shift))
    }

    /// The status at `index`; `None` outside the list (§8.3 step 6: then nothing can be said,
    /// and the token is rejected).
    pub fn get(&self, index: u64) -> Option<u8> {
        let (byte, shift) = self.position(index)?;
        Some((self.bytes[byte] >> shift) & self.bits.mask())
    }

    pub fn set(&mut self, index: u64, value: u8) -> Result<(), ArrayError> {
        if value > self.bits.mask() {
            return Err(ArrayError::Value {
                value,
                bits: self.bits.0,
            });
        }
        let (byte, shift) = self.position(index).ok_or(ArrayError::Index(index))?;
        self.bytes[byte] = set_in_byte(self.bytes[byte], self.bits, shift, value);
        Ok(())
    }

    /// `lst`: the bytes compressed at the highest level (§4.1 step 4 recommends it), base64url.
    pub fn encode(&self) -> Result<String, ArrayError> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
        encoder
            .write_all(&self.bytes)
            .map_err(|_| ArrayError::Compress)?;
        let compressed = encoder.finish().map_err(|_| ArrayError::Compress)?;
        Ok(URL_SAFE_NO_PAD.encode(compressed))
    }

    /// Decode `lst`, refusing to decompress past `max_bytes`: a few kilobytes of zlib can
    /// expand to gigabytes.
    pub fn decode(bits: Bits, lst: &str, max_bytes: usize) -> Result<StatusArray, ArrayError> {
        let compressed = URL_SAFE_NO_PAD
            .decode(lst)
            .map_err(|_| ArrayError::Base64)?;
        let mut bytes = Vec::new();
        let limit = u64::try_from(max_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        ZlibDecoder::new(compressed.as_slice())
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|_| ArrayError::Zlib)?;
        if bytes.len() > max_bytes {
            return Err(ArrayError::TooLarge(max_bytes));
        }
        Ok(StatusArray { bits, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §4.1: the 1-bit example, 16 statuses in the bytes 0xB9 0xA3.
    const ONE_BIT: [u8; 16] = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1];
    /// §4.1: the 2-bit example, 12 statuses in the bytes 0xC9 0x44 0xF9.
    const TWO_BITS: [u8; 12] = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3];

    #[test]
    fn the_drafts_examples_pack_bits_from_the_least_significant_one() {
        let mut one = StatusArray::new(Bits::new(1).unwrap(), 16);
        for (index, status) in ONE_BIT.iter().enumerate() {
            one.set(index as u64, *status).unwrap();
        }
        assert_eq!(one.bytes(), [0xb9, 0xa3]);
        let mut two = StatusArray::new(Bits::TWO, 12);
        for (index, status) in TWO_BITS.iter().enumerate() {
            two.set(index as u64, *status).unwrap();
        }
        assert_eq!(two.bytes(), [0xc9, 0x44, 0xf9]);
    }

    #[test]
    fn the_drafts_encoded_lists_decode_to_their_statuses() {
        // §4.2: {"bits": 1, "lst": "eNrbuRgAAhcBXQ"} and {"bits": 2, "lst": "eNo76fITAAPfAgc"}
        let one = StatusArray::decode(Bits::new(1).unwrap(), "eNrbuRgAAhcBXQ", 1024).unwrap();
        assert_eq!(one.bytes(), [0xb9, 0xa3]);
        for (index, status) in ONE_BIT.iter().enumerate() {
            assert_eq!(one.get(index as u64), Some(*status), "index {index}");
        }
        let two = StatusArray::decode(Bits::TWO, "eNo76fITAAPfAgc", 1024).unwrap();
        for (index, status) in TWO_BITS.iter().enumerate() {
            assert_eq!(two.get(index as u64), Some(*status), "index {index}");
        }
        assert_eq!(two.get(12), None);
    }

    /// Appendix C.2: a 2-bit list of 2^20 entries with eleven statuses set.
    #[test]
    fn the_drafts_large_two_bit_test_vector() {
        let lst = concat!(
            "eNrt2zENACEQAEEuoaBABP5VIO01fCjIHTMStt9ovGV",
            "IAAAAAABAbiEBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEB5WwIAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAID0ugQAAAAAAAAAAAAAAAAAQG12SgAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAOCSIQEAAAAAAAAAAAAAAAAAAAAAAAD8ExIAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAwJEuAQAAAAAAAAAAAAAAAAAAAAAAAMB9S",
            "wIAAAAAAAAAAAAAAAAAAACoYUoAAAAAAAAAAAAAAEBqH81gAQw",
        );
        let list = StatusArray::decode(Bits::TWO, lst, 1 << 20).unwrap();
        let set = [
            (0, 1),
            (1993, 2),
            (25460, 1),
            (159495, 3),
            (495669, 1),
            (554353, 1),
            (645645, 2),
            (723232, 1),
            (854545, 1),
            (934534, 2),
            (1000345, 3),
        ];
        for (index, status) in set {
            assert_eq!(list.get(index), Some(status), "index {index}");
        }
        let others = (0..list.len()).filter(|i| list.get(*i) != Some(0)).count();
        assert_eq!(others, set.len());
    }

    #[test]
    fn encode_and_decode_round_trip() {
        let mut list = StatusArray::new(Bits::TWO, 1 << 20);
        list.set(7, 1).unwrap();
        list.set((1 << 20) - 1, 3).unwrap();
        let lst = list.encode().unwrap();
        // a list of a million mostly valid entries compresses to a few hundred bytes
        assert!(lst.len() < 1_000, "{}", lst.len());
        let decoded = StatusArray::decode(Bits::TWO, &lst, 1 << 20).unwrap();
        assert_eq!(decoded, list);
        assert_eq!(decoded.get(7), Some(1));
        assert_eq!(decoded.get(8), Some(0));
        assert_eq!(decoded.get((1 << 20) - 1), Some(3));
        assert_eq!(decoded.get(1 << 20), None);
    }

    #[test]
    fn garbage_and_bombs_are_refused() {
        assert_eq!(Bits::new(3), Err(ArrayError::Bits));
        assert_eq!(Bits::new(0), Err(ArrayError::Bits));
        assert_eq!(
            StatusArray::decode(Bits::TWO, "!!", 100),
            Err(ArrayError::Base64)
        );
        assert_eq!(
            StatusArray::decode(Bits::TWO, "AAAA", 100),
            Err(ArrayError::Zlib)
        );
        // 16 MiB of zeros compress to about 16 KiB: refused past the cap, never inflated whole
        let bomb = StatusArray::new(Bits::TWO, 64 << 20).encode().unwrap();
        assert!(bomb.len() < 40_000);
        assert_eq!(
            StatusArray::decode(Bits::TWO, &bomb, 1 << 20),
            Err(ArrayError::TooLarge(1 << 20))
        );
        let mut list = StatusArray::new(Bits::TWO, 4);
        assert_eq!(list.set(4, 1), Err(ArrayError::Index(4)));
        assert_eq!(list.set(0, 4), Err(ArrayError::Value { value: 4, bits: 2 }));
        assert_eq!(StatusArray::from_bytes(Bits::TWO, vec![0b11], 16).len(), 16);
    }
}
