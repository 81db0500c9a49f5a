//! The relay's spool (`--spool FILE`): every queued message is written to a
//! file before the publisher can take it, and marked done once JetStream
//! acknowledged it or the queue dropped it. A relay that was killed reads the
//! file at start and publishes again what was not marked done, with the same
//! deduplication ids: what the server already stored it stores once, and what
//! it never got arrives late rather than never.
//!
//! Drops are kept too, so that a gap is announced even by the next relay:
//! a message the queue dropped is marked so, and counts as lost until an
//! `events-lost` notice that covers it is acknowledged.
//!
//! The file is a sequence of records, each `u32` length (little-endian) of
//! what follows, a tag byte and a body. Numbers are `u64`, texts a `u32`
//! length and their bytes:
//!
//! | tag | body | meaning |
//! |---|---|---|
//! | `M` | index, seq, start; host, URI, type, timestamp, payload | a message queued |
//! | `D` | indexes | those messages acknowledged |
//! | `X` | indexes | those messages dropped: lost, to announce |
//! | `L` | start, count, first, last; host, URI | drops to announce (a rewrite's) |
//! | `C` | start, last; host, URI | the drops of that origin up to seq `last` announced |
//!
//! A record cut short by a kill ends the file. It is emptied whenever nothing
//! is pending, and rewritten with only what is pending when it grows past its
//! bound.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::outbox::{Lost, Message, Origin};

pub struct Spool {
    path: PathBuf,
    file: BufWriter<File>,
    /// Bytes in the file (written or buffered).
    size: u64,
    /// Past this size, it is rewritten with only what is pending.
    bound: u64,
}

impl Spool {
    /// Opens (or makes) the spool at `path`; returns it with what an earlier
    /// relay left pending: its messages, in their order, and its drops not
    /// announced; the file is rewritten to hold only those.
    pub fn open(path: &Path, bound: u64) -> io::Result<(Spool, Left)> {
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let left = read(&bytes);
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(path)?;
        let mut spool = Spool { path: path.to_path_buf(), file: BufWriter::new(file), size: 0, bound };
        spool.write_left(left.messages.iter(), left.lost.iter())?;
        spool.flush()?;
        Ok((spool, left))
    }

    /// Writes what is pending: messages, and drops to announce.
    fn write_left<'a>(
        &mut self,
        messages: impl Iterator<Item = &'a Message>,
        lost: impl Iterator<Item = &'a Lost>,
    ) -> io::Result<()> {
        for m in messages {
            self.append(m)?;
        }
        for l in lost {
            let mut body = vec![b'L'];
            numbers(&mut body, &[l.origin.start, l.count, l.first, l.last]);
            texts(&mut body, &[l.origin.host.as_bytes(), l.origin.uri.as_bytes()]);
            self.record(&body)?;
        }
        Ok(())
    }

    /// Writes `m`, unless it is an `events-lost` notice (buffered: [`Spool::flush`] before the publisher takes it).
    pub fn append(&mut self, m: &Message) -> io::Result<()> {
        if m.covers.is_some() {
            return Ok(());
        }
        let mut body = vec![b'M'];
        numbers(&mut body, &[m.index, m.seq, m.origin.start]);
        texts(
            &mut body,
            &[m.origin.host.as_bytes(), m.origin.uri.as_bytes(), m.kind.as_bytes(), m.timestamp.as_bytes(), &m.payload],
        );
        self.record(&body)
    }

    /// Marks the messages with `indexes` acknowledged.
    pub fn done(&mut self, indexes: &[u64]) -> io::Result<()> {
        self.mark(b'D', indexes)
    }

    /// Marks the messages with `indexes` dropped: lost until announced.
    pub fn dropped(&mut self, indexes: &[u64]) -> io::Result<()> {
        self.mark(b'X', indexes)
    }

    /// Says the drops of `origin` up to seq `last` are announced.
    pub fn announced(&mut self, origin: &Origin, last: u64) -> io::Result<()> {
        let mut body = vec![b'C'];
        numbers(&mut body, &[origin.start, last]);
        texts(&mut body, &[origin.host.as_bytes(), origin.uri.as_bytes()]);
        self.record(&body)
    }

    fn mark(&mut self, tag: u8, indexes: &[u64]) -> io::Result<()> {
        if indexes.is_empty() {
            return Ok(());
        }
        let mut body = Vec::with_capacity(1 + 8 * indexes.len());
        body.push(tag);
        numbers(&mut body, indexes);
        self.record(&body)
    }

    fn record(&mut self, body: &[u8]) -> io::Result<()> {
        self.file.write_all(&(body.len() as u32).to_le_bytes())?;
        self.file.write_all(body)?;
        self.size += 4 + body.len() as u64;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    /// Whether it has grown past its bound.
    pub fn is_over(&self) -> bool {
        self.size > self.bound
    }

    /// Empties the file and writes what is pending alone: `messages`, and
    /// `lost` to announce (nothing pending: empty).
    pub fn rewrite<'a>(
        &mut self,
        messages: impl Iterator<Item = &'a Message>,
        lost: impl Iterator<Item = &'a Lost>,
    ) -> io::Result<()> {
        self.file.flush()?;
        let mut next = Spool {
            path: self.path.clone(),
            file: BufWriter::new(File::create(self.path.with_extension("new"))?),
            size: 0,
            bound: self.bound,
        };
        next.write_left(messages, lost)?;
        next.flush()?;
        std::fs::rename(next.path.with_extension("new"), &self.path)?;
        *self = next;
        Ok(())
    }
}

/// What an earlier relay left: messages not acknowledged, in order, and
/// drops not announced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Left {
    pub messages: Vec<Message>,
    pub lost: Vec<Lost>,
}

/// What a spool's bytes leave pending; a record cut short or malformed ends them.
fn read(mut bytes: &[u8]) -> Left {
    let mut messages = Vec::new();
    let mut finished = HashSet::new();
    let mut origins: Vec<Arc<Origin>> = Vec::new();
    let mut lost: Vec<Lost> = Vec::new();
    while let Some(body) = take(&mut bytes) {
        let Some((&tag, mut body)) = body.split_first() else { break };
        match tag {
            b'M' => {
                let Some(m) = message(&mut body, &mut origins) else { break };
                messages.push(m);
            }
            b'D' | b'X' if body.len() % 8 == 0 => {
                let indexes = body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap()));
                for index in indexes {
                    finished.insert(index);
                    let dropped = messages.iter().find(|m| m.index == index).filter(|_| tag == b'X');
                    if let Some(m) = dropped {
                        lost.push(Lost { origin: m.origin.clone(), count: 1, first: m.seq, last: m.seq });
                    }
                }
            }
            b'L' => {
                let Some(l) = lost_record(&mut body, &mut origins) else { break };
                lost.push(l);
            }
            b'C' => {
                let (Some(start), Some(last)) = (number(&mut body), number(&mut body)) else { break };
                let (Some(host), Some(uri)) = (text(&mut body), text(&mut body)) else { break };
                let origin = Origin { host, uri, start };
                lost.retain(|l| *l.origin != origin || l.last > last);
            }
            _ => break,
        }
    }
    messages.retain(|m| !finished.contains(&m.index));
    // One entry per origin, as the queue counts them.
    let mut merged: Vec<Lost> = Vec::new();
    for l in lost {
        l.add_to(&mut merged);
    }
    Left { messages, lost: merged }
}

fn lost_record(body: &mut &[u8], origins: &mut Vec<Arc<Origin>>) -> Option<Lost> {
    let (start, count, first, last) = (number(body)?, number(body)?, number(body)?, number(body)?);
    let (host, uri) = (text(body)?, text(body)?);
    Some(Lost { origin: shared(origins, Origin { host, uri, start }), count, first, last })
}

/// `origin`, one `Arc` per origin however many records name it.
fn shared(origins: &mut Vec<Arc<Origin>>, origin: Origin) -> Arc<Origin> {
    if let Some(o) = origins.iter().find(|o| ***o == origin) {
        return o.clone();
    }
    origins.push(Arc::new(origin));
    origins[origins.len() - 1].clone()
}

fn numbers(body: &mut Vec<u8>, ns: &[u64]) {
    for n in ns {
        body.extend_from_slice(&n.to_le_bytes());
    }
}

fn texts(body: &mut Vec<u8>, parts: &[&[u8]]) {
    for part in parts {
        body.extend_from_slice(&(part.len() as u32).to_le_bytes());
        body.extend_from_slice(part);
    }
}

/// The next length-prefixed piece of `bytes`.
fn take<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let piece = bytes.get(4..4 + len)?;
    *bytes = &bytes[4 + len..];
    Some(piece)
}

fn number(bytes: &mut &[u8]) -> Option<u64> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    *bytes = &bytes[8..];
    Some(n)
}

fn text(bytes: &mut &[u8]) -> Option<String> {
    String::from_utf8(take(bytes)?.to_vec()).ok()
}

fn message(body: &mut &[u8], origins: &mut Vec<Arc<Origin>>) -> Option<Message> {
    let (index, seq, start) = (number(body)?, number(body)?, number(body)?);
    let (host, uri, kind, timestamp) = (text(body)?, text(body)?, text(body)?, text(body)?);
    let payload = Bytes::copy_from_slice(take(body)?);
    let origin = shared(origins, Origin { host, uri, start });
    Some(Message { origin, index, kind, seq, timestamp, payload, covers: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(index: u64) -> Message {
        let origin = Arc::new(Origin { host: "h".into(), uri: "test:///default".into(), start: 7 });
        Message { origin, index, kind: "k".into(), seq: index + 10, timestamp: "1.5".into(), payload: Bytes::from("<x/>"), covers: None }
    }

    fn dir(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("virevent-spool-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn what_was_not_done_comes_back_in_order_and_a_torn_end_is_cut() {
        let dir = dir("back");
        let path = dir.join("spool");
        let (mut spool, left) = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(left, Left::default());
        for i in 1..=4 {
            spool.append(&message(i)).unwrap();
        }
        spool.done(&[1, 3]).unwrap();
        spool.flush().unwrap();
        drop(spool);
        // A kill in the middle of a record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, b'M', 1]).unwrap();
        drop(f);
        let (_spool, left) = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(left.messages, [message(2), message(4)]);
        // The file now holds those two alone.
        let (_spool, again) = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(again.messages, [message(2), message(4)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn drops_stay_lost_until_a_notice_covers_them() {
        let dir = dir("drops");
        let path = dir.join("spool");
        let (mut spool, _) = Spool::open(&path, 1 << 20).unwrap();
        for i in 1..=5 {
            spool.append(&message(i)).unwrap();
        }
        // Seqs 11 and 12 dropped, 13 acknowledged.
        spool.dropped(&[1, 2]).unwrap();
        spool.done(&[3]).unwrap();
        spool.flush().unwrap();
        let (mut spool, left) = Spool::open(&path, 1 << 20).unwrap();
        let origin = message(1).origin;
        assert_eq!(left.messages, [message(4), message(5)]);
        assert_eq!(left.lost, [Lost { origin: origin.clone(), count: 2, first: 11, last: 12 }]);
        // Then 14 dropped too, and a notice up to 12 announced: 14 is left.
        spool.dropped(&[4]).unwrap();
        spool.announced(&origin, 12).unwrap();
        spool.flush().unwrap();
        let (_spool, left) = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(left.messages, [message(5)]);
        assert_eq!(left.lost, [Lost { origin, count: 1, first: 14, last: 14 }]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rewrite_keeps_only_the_pending_and_goes_on_appending() {
        let dir = dir("rewrite");
        let path = dir.join("spool");
        let (mut spool, _) = Spool::open(&path, 200).unwrap();
        for i in 1..=5 {
            spool.append(&message(i)).unwrap();
        }
        assert!(spool.is_over());
        let lost = Lost { origin: message(1).origin, count: 2, first: 11, last: 12 };
        spool.rewrite([message(5)].iter(), [lost.clone()].iter()).unwrap();
        assert!(!spool.is_over());
        spool.append(&message(6)).unwrap();
        spool.flush().unwrap();
        let (_spool, left) = Spool::open(&path, 1000).unwrap();
        assert_eq!(left, Left { messages: vec![message(5), message(6)], lost: vec![lost] });
        assert!(!path.with_extension("new").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
