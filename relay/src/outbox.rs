//! The bounded queue between the daemons' side and NATS: handlers push into
//! it and never wait; the publisher takes from its front. Beyond its limits
//! (a count and bytes) the oldest queued message goes, and each source's drops
//! are counted until the publisher takes the notice of them, ahead of that
//! source's next message: a gap in the stream is always announced where it is.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

/// Where events come from: one connection the relay opened.
#[derive(Debug, PartialEq, Eq)]
pub struct Origin {
    /// The host its subjects name (unescaped).
    pub host: String,
    pub uri: String,
    /// When the relay opened it, in microseconds since the epoch: with the
    /// host and a seq, a deduplication id no other connection shares.
    pub start: u64,
}

/// One event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub origin: Arc<Origin>,
    /// Its place among every message the relay queued (the spool's key).
    pub index: u64,
    pub kind: String,
    pub seq: u64,
    pub timestamp: String,
    pub payload: Bytes,
    /// For an `events-lost` notice (seq 0): the drops it announces.
    pub covers: Option<Lost>,
}

impl Message {
    /// Its subject, `virevent.<host>.<type>`.
    pub fn subject(&self) -> String {
        crate::subject::of(&self.origin.host, &self.kind)
    }

    /// Its deduplication id, `HOST/START/SEQ` (`headers::MSG_ID`); an
    /// `events-lost` notice, seq 0, is told apart by the seqs it covers.
    pub fn id(&self) -> String {
        match self.covers {
            None => format!("{}/{}/{}", self.origin.host, self.origin.start, self.seq),
            Some(Lost { first, last, .. }) => format!("{}/{}/lost-{first}-{last}", self.origin.host, self.origin.start),
        }
    }
}

/// How much may wait: whichever bound is reached first drops.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub count: usize,
    pub bytes: usize,
}

/// The messages dropped from one source since its last notice: how many,
/// and the seqs of the first and last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lost {
    pub origin: Arc<Origin>,
    pub count: u64,
    pub first: u64,
    pub last: u64,
}

impl Lost {
    /// Adds these drops to `list`, one entry per origin.
    pub fn add_to(self, list: &mut Vec<Lost>) {
        match list.iter_mut().find(|l| l.origin == self.origin) {
            Some(l) => {
                l.count += self.count;
                l.first = l.first.min(self.first);
                l.last = l.last.max(self.last);
            }
            None => list.push(self),
        }
    }
}

pub struct Outbox {
    queue: VecDeque<Message>,
    bytes: usize,
    limits: Limits,
    /// Drops not yet announced, one entry per source that has some.
    lost: Vec<Lost>,
    /// Every message dropped, over the relay's life.
    pub dropped: u64,
}

/// What a message weighs against the byte limit: about what goes on the wire.
fn weight(m: &Message) -> usize {
    m.payload.len() + 2 * m.origin.host.len() + m.origin.uri.len() + 2 * m.kind.len() + m.timestamp.len() + 100
}

impl Outbox {
    pub fn new(limits: Limits) -> Outbox {
        Outbox { queue: VecDeque::new(), bytes: 0, limits, lost: Vec::new(), dropped: 0 }
    }

    /// Queues `m` behind the others, dropping the oldest while over a limit
    /// (a message heavier than the byte limit alone waits, as the only one).
    /// Returns the indexes of the messages dropped.
    pub fn push(&mut self, m: Message) -> Vec<u64> {
        let mut dropped = Vec::new();
        self.bytes += weight(&m);
        self.queue.push_back(m);
        while self.queue.len() > self.limits.count.max(1) || (self.bytes > self.limits.bytes && self.queue.len() > 1) {
            let Some(old) = self.queue.pop_front() else { break };
            self.bytes -= weight(&old);
            self.dropped += 1;
            dropped.push(old.index);
            self.count_lost(Lost { count: 1, first: old.seq, last: old.seq, origin: old.origin });
        }
        dropped
    }

    /// Adds `lost` to its origin's drops not yet announced (a spool gives
    /// back those an earlier relay had not announced).
    pub fn count_lost(&mut self, lost: Lost) {
        lost.add_to(&mut self.lost);
    }

    /// The drops not yet announced.
    pub fn lost(&self) -> &[Lost] {
        &self.lost
    }

    /// Takes the drops to announce, then up to `max` messages from the front.
    pub fn take(&mut self, max: usize) -> (Vec<Lost>, Vec<Message>) {
        let n = max.min(self.queue.len());
        let taken: Vec<Message> = self.queue.drain(..n).collect();
        self.bytes -= taken.iter().map(weight).sum::<usize>();
        (std::mem::take(&mut self.lost), taken)
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.lost.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// The queued messages, front first.
    pub fn iter(&self) -> impl Iterator<Item = &Message> {
        self.queue.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(n: u64) -> Arc<Origin> {
        Arc::new(Origin { host: format!("h{n}"), uri: "u".into(), start: n })
    }

    fn message(source: u64, seq: u64, size: usize) -> Message {
        Message { origin: origin(source), index: seq, kind: "k".into(), seq, timestamp: "1".into(), payload: Bytes::from(vec![b'x'; size]), covers: None }
    }

    #[test]
    fn beyond_the_count_the_oldest_go_and_are_announced_per_source() {
        let mut outbox = Outbox::new(Limits { count: 3, bytes: usize::MAX });
        for seq in 1..=4 {
            outbox.push(message(0, seq, 1));
        }
        outbox.push(message(1, 1, 1));
        outbox.push(message(0, 5, 1));
        // Dropped: 0/1, 0/2, 0/3; left: 0/4, 1/1, 0/5.
        let (lost, taken) = outbox.take(10);
        assert_eq!(lost, [Lost { origin: origin(0), count: 3, first: 1, last: 3 }]);
        assert_eq!(taken.iter().map(Message::id).collect::<Vec<_>>(), ["h0/0/4", "h1/1/1", "h0/0/5"]);
        assert_eq!(outbox.dropped, 3);
        assert!(outbox.is_empty());
        // Announced once.
        assert_eq!(outbox.take(10), (vec![], vec![]));
    }

    #[test]
    fn beyond_the_bytes_the_oldest_go_but_one_heavy_message_waits() {
        let mut outbox = Outbox::new(Limits { count: 100, bytes: 1000 });
        outbox.push(message(0, 1, 600));
        outbox.push(message(0, 2, 600));
        let (lost, taken) = outbox.take(1);
        assert_eq!(lost, [Lost { origin: origin(0), count: 1, first: 1, last: 1 }]);
        assert_eq!(taken[0].seq, 2);
        outbox.push(message(0, 3, 5000));
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox.take(5).1[0].seq, 3);
        assert_eq!(outbox.bytes, 0);
    }

    #[test]
    fn take_gives_the_front_in_order_and_keeps_the_rest() {
        let mut outbox = Outbox::new(Limits { count: 10, bytes: usize::MAX });
        for seq in 1..=5 {
            outbox.push(message(0, seq, 1));
        }
        assert_eq!(outbox.take(2).1.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(outbox.len(), 3);
        assert_eq!(outbox.take(10).1.iter().map(|m| m.seq).collect::<Vec<_>>(), [3, 4, 5]);
    }
}
