//! XDR (RFC 4506), as libvirt's remote protocol uses it: big-endian, every item
//! padded to 4 bytes. Decoding checks every length against what is left before
//! using it, so no input can make it read out of bounds or allocate more than
//! the packet holds.

use std::borrow::Cow;
use std::fmt;

/// The longest string the protocol allows (REMOTE_STRING_MAX).
pub const MAX_STRING: usize = 4_194_304;

/// Why a body did not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads XDR items from a byte slice.
#[derive(Clone)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
}

type Decoded<T> = Result<T, DecodeError>;

impl<'a> Decoder<'a> {
    /// A decoder at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Decoder<'a> {
        Decoder { bytes, at: 0 }
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    #[inline]
    fn take(&mut self, n: usize, what: &str) -> Decoded<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.truncated(n, what));
        }
        let taken = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(taken)
    }

    /// An `unsigned int`.
    #[inline]
    pub fn u32(&mut self) -> Decoded<u32> {
        match self.bytes.get(self.at..self.at + 4) {
            Some(&[a, b, c, d]) => {
                self.at += 4;
                Ok(u32::from_be_bytes([a, b, c, d]))
            }
            _ => Err(self.truncated(4, "an int")),
        }
    }

    #[cold]
    fn truncated(&self, n: usize, what: &str) -> DecodeError {
        DecodeError(format!("truncated body: {what} needs {n} bytes at offset {}, {} left", self.at, self.remaining()))
    }

    /// An `int`.
    pub fn i32(&mut self) -> Decoded<i32> {
        Ok(self.u32()? as i32)
    }

    /// An `unsigned hyper`.
    pub fn u64(&mut self) -> Decoded<u64> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }

    /// A `hyper`.
    pub fn i64(&mut self) -> Decoded<i64> {
        Ok(self.u64()? as i64)
    }

    /// A `string<>`: length, bytes, padding. Not UTF-8 is replaced, not refused:
    /// names come from the daemon's configuration.
    pub fn string(&mut self) -> Decoded<String> {
        self.text().map(Cow::into_owned)
    }

    /// A `string<>` borrowed from the body where it is valid UTF-8: what is
    /// only copied into an event needs no allocation of its own.
    pub fn text(&mut self) -> Decoded<Cow<'a, str>> {
        let len = self.u32()? as usize;
        if len > MAX_STRING {
            return Err(DecodeError(format!("string of {len} bytes, over the limit of {MAX_STRING}")));
        }
        let bytes = self.take(len, "a string")?;
        self.take(padding(len), "string padding")?;
        Ok(String::from_utf8_lossy(bytes))
    }

    /// A variable `char<max>` array, as rpcgen encodes it: a count, then
    /// each char as a 4-byte int (the SASL calls' data).
    #[cfg(virevent_sasl)]
    pub fn chars(&mut self, max: usize) -> Decoded<Vec<u8>> {
        let count = self.count(max)?;
        (0..count).map(|_| self.i32().map(|c| c as u8)).collect()
    }

    /// A `double`: IEEE 754, big-endian.
    pub fn f64(&mut self) -> Decoded<f64> {
        Ok(f64::from_bits(self.u64()?))
    }

    /// An optional item: a u32 0 (absent) or 1 followed by it.
    pub fn optional<T>(&mut self, item: impl FnOnce(&mut Self) -> Decoded<T>) -> Decoded<Option<T>> {
        match self.u32()? {
            0 => Ok(None),
            1 => item(self).map(Some),
            other => Err(DecodeError(format!("bad optional marker {other}"))),
        }
    }

    /// Fixed-length opaque data, such as a 16-byte UUID (no length, no padding
    /// for multiples of 4).
    pub fn fixed<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        let bytes = self.take(N, "fixed data")?;
        self.take(padding(N), "fixed data padding")?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// A variable array `T<max>`: a count, then the items. The count is checked
    /// against `max` and against the bytes left (each item takes at least 4).
    pub fn array<T>(&mut self, max: usize, mut item: impl FnMut(&mut Self) -> Decoded<T>) -> Decoded<Vec<T>> {
        let count = self.count(max)?;
        (0..count).map(|_| item(self)).collect()
    }

    /// A variable array's count, checked as [`Decoder::array`] checks it, for
    /// a caller that takes the items one by one.
    pub fn count(&mut self, max: usize) -> Decoded<usize> {
        let count = self.u32()? as usize;
        if count > max || count > self.remaining() / 4 {
            return Err(DecodeError(format!("array of {count} items does not fit (max {max}, {} bytes left)", self.remaining())));
        }
        Ok(count)
    }
}

/// Writes XDR items.
#[derive(Default)]
pub struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// What was written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// An `unsigned int`.
    pub fn u32(&mut self, v: u32) -> &mut Encoder {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// An `int`.
    pub fn i32(&mut self, v: i32) -> &mut Encoder {
        self.u32(v as u32)
    }

    /// A `string<>`.
    pub fn string(&mut self, s: &str) -> &mut Encoder {
        self.u32(s.len() as u32);
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.extend(std::iter::repeat_n(0, padding(s.len())));
        self
    }

    /// Fixed-length opaque data (a UUID), padded to 4 bytes.
    pub fn bytes(&mut self, data: &[u8]) -> &mut Encoder {
        self.bytes.extend_from_slice(data);
        self.bytes.extend(std::iter::repeat_n(0, padding(data.len())));
        self
    }

    /// A variable `char<>` array: a count, then each char as a 4-byte int.
    #[cfg(virevent_sasl)]
    pub fn chars(&mut self, data: &[u8]) -> &mut Encoder {
        self.u32(data.len() as u32);
        for &c in data {
            self.i32(i32::from(c as i8));
        }
        self
    }

    /// The encoded bytes, wiped when dropped (for bodies that carry secrets).
    #[cfg(virevent_sasl)]
    pub fn into_secret(self) -> crate::credentials::Secret {
        crate::credentials::Secret::new(self.bytes)
    }

    /// An optional string (`remote_string`).
    pub fn optional_string(&mut self, s: Option<&str>) -> &mut Encoder {
        match s {
            Some(s) => self.u32(1).string(s),
            None => self.u32(0),
        }
    }
}

/// The zero bytes that pad `len` bytes to a multiple of 4.
fn padding(len: usize) -> usize {
    (4 - len % 4) % 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: String = text.chars().filter(char::is_ascii_hexdigit).collect();
        (0..digits.len()).step_by(2).map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    #[cfg(virevent_sasl)]
    fn char_arrays_take_four_bytes_a_char_and_are_bounded() {
        let mut e = Encoder::new();
        e.chars(&[b'a', 0xff]);
        let bytes = e.into_bytes();
        assert_eq!(bytes, hex("00000002 00000061 ffffffff"));
        assert_eq!(Decoder::new(&bytes).chars(10).unwrap(), [b'a', 0xff]);
        assert!(Decoder::new(&bytes).chars(1).is_err(), "over the maximum");
        assert!(Decoder::new(&bytes[..8]).chars(10).is_err(), "truncated");
        assert!(Decoder::new(&hex("7fffffff")).chars(usize::MAX).is_err(), "a count beyond the body");
    }

    #[test]
    fn strings_are_padded_both_ways() {
        // "test2" from docs/protocol.md 5.2: 5 bytes and 3 of padding.
        let bytes = hex("00000005 7465737432 000000 ffffffff");
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.string().unwrap(), "test2");
        assert_eq!(d.i32().unwrap(), -1);
        assert_eq!(d.remaining(), 0);
        let mut e = Encoder::new();
        e.string("test2").i32(-1);
        assert_eq!(e.into_bytes(), bytes);
    }

    #[test]
    fn every_length_is_checked_before_use() {
        assert!(Decoder::new(&hex("000000")).u32().is_err());
        assert!(Decoder::new(&hex("00000008 7465")).string().is_err());
        assert!(Decoder::new(&hex("00000002 7465")).string().is_err()); // no padding
        assert!(Decoder::new(&hex("ffffffff")).string().unwrap_err().0.contains("limit"));
        assert!(Decoder::new(&hex("00000002")).optional(Decoder::u32).is_err());
        assert!(Decoder::new(&hex("7fffffff 00000000")).array(1 << 30, Decoder::u32).is_err());
        assert!(Decoder::new(&hex("00000003 00000001 00000002")).array(10, Decoder::u32).is_err());
        assert_eq!(Decoder::new(&hex("00000002 00000001 00000002")).array(10, Decoder::u32).unwrap(), [1, 2]);
        assert!(Decoder::new(&hex("0011")).fixed::<16>().is_err());
    }

    #[test]
    fn hypers_and_optionals() {
        let bytes = hex("00000001 00000002 ffffffff fffffffe 00000001 00000001 61000000 00000000");
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.u64().unwrap(), (1 << 32) | 2);
        assert_eq!(d.i64().unwrap(), -2);
        assert_eq!(d.optional(Decoder::string).unwrap().as_deref(), Some("a"));
        assert_eq!(d.optional(Decoder::string).unwrap(), None);
        let mut e = Encoder::new();
        e.optional_string(Some("a")).optional_string(None);
        assert_eq!(e.into_bytes(), hex("00000001 00000001 61000000 00000000"));
    }
}
