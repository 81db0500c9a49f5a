//! Packet framing of libvirt's remote protocol: a length word that counts
//! itself, a 24-byte header, a body. Incoming bytes are split into whole
//! packets only; a partial packet waits for more bytes, and a bad length word
//! is an error before anything is allocated for it.

use std::ops::Range;

use super::xdr::{DecodeError, Decoder, Encoder};

/// The REMOTE program.
pub const PROGRAM_REMOTE: u32 = 0x2000_8086;
/// The KEEPALIVE program ("keep").
pub const PROGRAM_KEEPALIVE: u32 = 0x6b65_6570;
/// KEEPALIVE program procedures.
pub(crate) const KEEPALIVE_PING: i32 = 1;
pub(crate) const KEEPALIVE_PONG: i32 = 2;

/// The only version of either.
pub const VERSION: u32 = 1;

/// Length word plus header.
pub const HEADER_BYTES: usize = 28;
/// The most a length word may say beyond itself (32 MiB).
pub const MAX_AFTER_LENGTH: usize = 33_554_432;

/// Message types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Client to daemon.
    Call,
    /// The answer to a call.
    Reply,
    /// Asynchronous: events, keepalive.
    Message,
    /// Anything else (streams, fd passing): not for an events client.
    Other(i32),
}

impl Kind {
    fn from_wire(v: i32) -> Kind {
        match v {
            0 => Kind::Call,
            1 => Kind::Reply,
            2 => Kind::Message,
            other => Kind::Other(other),
        }
    }
}

/// A packet's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The program.
    pub program: u32,
    /// Its version.
    pub version: u32,
    /// The procedure.
    pub procedure: i32,
    /// What kind of message.
    pub kind: Kind,
    /// The serial (meaningful for replies).
    pub serial: u32,
    /// 0 OK, 1 error (the body is a `remote_error`).
    pub status: i32,
}

/// A whole packet: its header and body, borrowed from the bytes read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The header.
    pub header: Header,
    /// The body, after the header.
    pub body: &'a [u8],
}

/// A CALL of `procedure` of the REMOTE program with `serial` and `body`.
pub fn call(procedure: i32, serial: u32, body: &[u8]) -> Vec<u8> {
    packet(PROGRAM_REMOTE, procedure, 0, serial, body)
}

/// A KEEPALIVE MESSAGE (PING or PONG), which has serial 0 and no body.
pub fn keepalive(procedure: i32) -> Vec<u8> {
    packet(PROGRAM_KEEPALIVE, procedure, 2, 0, &[])
}

fn packet(program: u32, procedure: i32, kind: i32, serial: u32, body: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.u32((HEADER_BYTES + body.len()) as u32).u32(program).u32(VERSION).i32(procedure).i32(kind).u32(serial).i32(0);
    let mut bytes = e.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Splits a byte stream into packets.
#[derive(Default)]
pub struct Framer {
    pending: Vec<u8>,
    /// Where the first packet not yet taken starts in `pending`: taken packets
    /// are dropped in one move when more bytes come, not one move each.
    start: usize,
}

impl Framer {
    /// A framer with nothing pending.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Adds bytes (as read from the socket): for tests and the fuzz target.
    pub fn push(&mut self, bytes: &[u8]) {
        self.fill(bytes.len(), |room, _| {
            // SAFETY: `fill` hands over room for at least `bytes.len()` bytes.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), room, bytes.len()) };
            bytes.len() as isize
        });
    }

    /// Appends what `read` writes into fresh room of at least `room` bytes:
    /// `read(buffer, capacity)` returns how many bytes it wrote, or a negative
    /// number, as recv(2) does; that result is returned. The room is not
    /// zeroed first: the socket's bytes land where they stay.
    pub fn fill(&mut self, room: usize, read: impl FnOnce(*mut u8, usize) -> isize) -> isize {
        if self.start > 0 {
            self.pending.drain(..self.start);
            self.start = 0;
        }
        // Exactly: a partial packet plus the room, not the doubling `reserve`
        // would make of it.
        if self.pending.capacity() - self.pending.len() < room {
            self.pending.reserve_exact(room);
        }
        let spare = self.pending.spare_capacity_mut();
        let capacity = spare.len();
        let n = read(spare.as_mut_ptr().cast(), capacity);
        if n > 0 {
            let len = self.pending.len() + (n as usize).min(capacity);
            // SAFETY: `read` wrote the first `n` bytes of the spare room.
            unsafe { self.pending.set_len(len) };
        }
        n
    }

    /// Lets the buffer go once every packet in it is taken, so that an idle
    /// connection keeps none (a burst would otherwise leave it filled, and
    /// resident, for good); the next fill takes a new one.
    pub fn release_if_empty(&mut self) {
        if self.start == self.pending.len() && self.pending.capacity() > 0 {
            self.pending = Vec::new();
            self.start = 0;
        }
    }

    /// Whether part of a packet waits for more bytes.
    pub fn has_partial(&self) -> bool {
        self.start < self.pending.len()
    }

    /// The next whole packet, if one has arrived: its header, and where its
    /// body lies for [`Framer::body`] (valid until the next fill). An error
    /// for a length word that cannot be right (under 28, or over 32 MiB past
    /// itself).
    pub fn next_packet(&mut self) -> Result<Option<(Header, Range<usize>)>, DecodeError> {
        let pending = &self.pending[self.start..];
        if pending.len() < 4 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([pending[0], pending[1], pending[2], pending[3]]) as usize;
        if length < HEADER_BYTES || length - 4 > MAX_AFTER_LENGTH {
            return Err(DecodeError(format!("bad packet length {length}")));
        }
        if pending.len() < length {
            return Ok(None);
        }
        let mut d = Decoder::new(&pending[4..HEADER_BYTES]);
        let header = Header {
            program: d.u32()?,
            version: d.u32()?,
            procedure: d.i32()?,
            kind: Kind::from_wire(d.i32()?),
            serial: d.u32()?,
            status: d.i32()?,
        };
        let body = self.start + HEADER_BYTES..self.start + length;
        self.start += length;
        Ok(Some((header, body)))
    }

    /// The body of a packet [`Framer::next_packet`] returned.
    pub fn body(&self, range: Range<usize>) -> &[u8] {
        &self.pending[range]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The bytes of a hex dump; anything but hex digits is ignored.
    pub(crate) fn hex(text: &str) -> Vec<u8> {
        let digits: String = text.chars().filter(char::is_ascii_hexdigit).collect();
        (0..digits.len()).step_by(2).map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap()).collect()
    }

    /// `virsh suspend test`, docs/protocol.md section 5.2.
    const SUSPEND: &str = "0000004420008086000000010000013e0000000200000001000000000000000000000004746573746695eb01f6a4830479aa97f2502e193f000000010000000300000000";

    #[test]
    fn splits_whole_packets_only_whatever_the_reads() {
        let bytes = hex(SUSPEND);
        let twice = [bytes.clone(), bytes.clone()].concat();
        for chunk in [1, 3, 4, 27, 28, 67, 68, 100, 136] {
            let mut framer = Framer::new();
            let mut packets = Vec::new();
            for piece in twice.chunks(chunk) {
                framer.push(piece);
                while let Some((header, body)) = framer.next_packet().unwrap() {
                    packets.push((header, framer.body(body).to_vec()));
                }
            }
            assert_eq!(packets.len(), 2, "chunks of {chunk}");
            let (header, body) = &packets[0];
            assert_eq!((header.program, header.version, header.procedure), (PROGRAM_REMOTE, 1, 318));
            assert_eq!((header.kind, header.serial, header.status), (Kind::Message, 1, 0));
            assert_eq!(body[..], bytes[28..]);
        }
    }

    #[test]
    fn bad_lengths_are_errors_before_anything_is_read() {
        for bad in ["00000003", "0000001b", "7fffffff", "02000005"] {
            let mut framer = Framer::new();
            framer.push(&hex(bad));
            assert!(framer.next_packet().is_err(), "{bad}");
        }
        // Exactly 32 MiB past the length word is allowed, and waits for its bytes.
        let mut framer = Framer::new();
        framer.push(&hex("02000004"));
        assert_eq!(framer.next_packet().unwrap(), None);
    }

    #[test]
    fn pong_answers_the_reference_ping() {
        let mut framer = Framer::new();
        framer.push(&hex("0000001c 6b656570 00000001 00000001 00000002 00000000 00000000"));
        let (ping, _) = framer.next_packet().unwrap().unwrap();
        assert_eq!((ping.program, ping.procedure, ping.kind), (PROGRAM_KEEPALIVE, 1, Kind::Message));
        assert_eq!(keepalive(2), hex("0000001c 6b656570 00000001 00000002 00000002 00000000 00000000"));
    }

    #[test]
    fn calls_are_framed_as_libvirt_frames_them() {
        // AUTH_LIST with serial 1, section 4.2.
        assert_eq!(call(66, 1, &[]), hex("0000001c 20008086 00000001 00000042 00000000 00000001 00000000"));
        // A body-less call is 28 bytes: CONNECT_OPEN's header with serial 0.
        let packet = call(1, 0, &[]);
        assert_eq!(packet, hex("0000001c 20008086 00000001 00000001 00000000 00000000 00000000"));
        let mut framer = Framer::new();
        framer.push(&call(66, 7, &[0, 0, 0, 5]));
        let (header, body) = framer.next_packet().unwrap().unwrap();
        assert_eq!((header.procedure, header.kind, header.serial), (66, Kind::Call, 7));
        assert_eq!(framer.body(body), [0, 0, 0, 5]);
    }
}
