//! The relay's spool (`--spool FILE`): every queued message is written to a
//! file before the publisher can take it, and marked done once JetStream
//! acknowledged it or the queue dropped it. A relay that was killed reads the
//! file at start and publishes again what was not marked done, with the same
//! deduplication ids: what the server already stored it stores once, and what
//! it never got arrives late rather than never.
//!
//! The file is a sequence of records, each `u32` length (little-endian) of
//! what follows, a tag byte and a body: `M` a message (index, seq, start as
//! `u64`, then host, URI, type, timestamp and payload, each a `u32` length and
//! its bytes), `D` the indexes (`u64`) of messages done. A record cut short by
//! a kill ends the file. It is emptied whenever nothing is pending, and
//! rewritten with only what is pending when it grows past its bound.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::outbox::{Message, Origin};

pub struct Spool {
    path: PathBuf,
    file: BufWriter<File>,
    /// Bytes in the file (written or buffered).
    size: u64,
    /// Past this size, it is rewritten with only what is pending.
    bound: u64,
}

impl Spool {
    /// Opens (or makes) the spool at `path`; returns it with the messages an
    /// earlier relay left pending, in their order, and the file rewritten to
    /// hold only those.
    pub fn open(path: &Path, bound: u64) -> io::Result<(Spool, Vec<Message>)> {
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let pending = read(&bytes);
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(path)?;
        let mut spool = Spool { path: path.to_path_buf(), file: BufWriter::new(file), size: 0, bound };
        for m in &pending {
            spool.append(m)?;
        }
        spool.flush()?;
        Ok((spool, pending))
    }

    /// Writes `m`, unless it is an `events-lost` notice (buffered: [`Spool::flush`] before the publisher takes it).
    pub fn append(&mut self, m: &Message) -> io::Result<()> {
        if m.covers.is_some() {
            return Ok(());
        }
        let mut body = vec![b'M'];
        for n in [m.index, m.seq, m.origin.start] {
            body.extend_from_slice(&n.to_le_bytes());
        }
        let parts: [&[u8]; 5] =
            [m.origin.host.as_bytes(), m.origin.uri.as_bytes(), m.kind.as_bytes(), m.timestamp.as_bytes(), &m.payload];
        for part in parts {
            body.extend_from_slice(&(part.len() as u32).to_le_bytes());
            body.extend_from_slice(part);
        }
        self.record(&body)
    }

    /// Marks the messages with `indexes` done.
    pub fn done(&mut self, indexes: &[u64]) -> io::Result<()> {
        if indexes.is_empty() {
            return Ok(());
        }
        let mut body = Vec::with_capacity(1 + 8 * indexes.len());
        body.push(b'D');
        for index in indexes {
            body.extend_from_slice(&index.to_le_bytes());
        }
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

    /// Empties the file and writes `pending` alone (nothing pending: empty).
    pub fn rewrite<'a>(&mut self, pending: impl Iterator<Item = &'a Message>) -> io::Result<()> {
        self.file.flush()?;
        let mut next = Spool {
            path: self.path.clone(),
            file: BufWriter::new(File::create(self.path.with_extension("new"))?),
            size: 0,
            bound: self.bound,
        };
        for m in pending {
            next.append(m)?;
        }
        next.flush()?;
        std::fs::rename(next.path.with_extension("new"), &self.path)?;
        *self = next;
        Ok(())
    }
}

/// The messages of a spool's bytes not marked done, in order; a record cut
/// short or malformed ends it.
fn read(mut bytes: &[u8]) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut done = HashSet::new();
    let mut origins: Vec<Arc<Origin>> = Vec::new();
    while let Some(body) = take(&mut bytes) {
        let mut body = body;
        match body.split_first() {
            Some((b'M', rest)) => {
                body = rest;
                let Some(m) = message(&mut body, &mut origins) else { break };
                messages.push(m);
            }
            Some((b'D', rest)) if rest.len() % 8 == 0 => {
                done.extend(rest.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())));
            }
            _ => break,
        }
    }
    messages.retain(|m| !done.contains(&m.index));
    messages
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
    let origin = Origin { host, uri, start };
    let origin = match origins.iter().find(|o| ***o == origin) {
        Some(o) => o.clone(),
        None => {
            origins.push(Arc::new(origin));
            origins.last()?.clone()
        }
    };
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
        let (mut spool, pending) = Spool::open(&path, 1 << 20).unwrap();
        assert!(pending.is_empty());
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
        let (_spool, pending) = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(pending, [message(2), message(4)]);
        // The file now holds those two alone.
        let (_spool, again) = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(again, [message(2), message(4)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rewrite_keeps_only_the_pending_and_goes_on_appending() {
        let dir = dir("rewrite");
        let path = dir.join("spool");
        let (mut spool, _) = Spool::open(&path, 100).unwrap();
        for i in 1..=5 {
            spool.append(&message(i)).unwrap();
        }
        assert!(spool.is_over());
        spool.rewrite([message(5)].iter()).unwrap();
        assert!(!spool.is_over());
        spool.append(&message(6)).unwrap();
        spool.flush().unwrap();
        let (_spool, pending) = Spool::open(&path, 100).unwrap();
        assert_eq!(pending, [message(5), message(6)]);
        assert!(!path.with_extension("new").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
