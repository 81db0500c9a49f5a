//! A bounded queue of events for one consumer, which counts what it had to drop
//! and hands over one `events-lost` notice as soon as it has room again.

use std::collections::VecDeque;

use crate::event::Event;

/// How many events a queue holds when the caller sets no limit.
pub const DEFAULT_LIMIT: usize = 65536;

/// Events waiting for one consumer.
pub struct Queue {
    events: VecDeque<Event>,
    limit: usize,
    lost: Option<Lost>,
}

/// Events dropped since the consumer last had room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost {
    /// How many.
    pub count: u64,
    /// The seq of the first.
    pub first: u64,
    /// The seq of the last.
    pub last: u64,
}

impl Lost {
    fn notice(self) -> Event {
        Event::lost(self.count, self.first, self.last)
    }
}

impl Queue {
    /// An empty queue holding at most `limit` events.
    pub fn new(limit: usize) -> Queue {
        Queue { events: VecDeque::new(), limit, lost: None }
    }

    /// Queues `event`, or drops and counts it when the queue is full. An
    /// `events-lost` notice for earlier drops goes in first.
    pub fn push(&mut self, event: Event) {
        if self.events.len() >= self.limit {
            let lost = self.lost.get_or_insert(Lost { count: 0, first: event.seq(), last: 0 });
            lost.count += 1;
            lost.last = event.seq();
            return;
        }
        if let Some(lost) = self.lost.take() {
            self.events.push_back(lost.notice());
        }
        self.events.push_back(event);
    }

    /// Moves every queued event to `out`, followed by the `events-lost` notice of
    /// what was dropped, if anything was: draining is what makes room.
    pub fn drain_into(&mut self, out: &mut Vec<Event>) {
        out.extend(self.events.drain(..));
        if let Some(lost) = self.lost.take() {
            out.push(lost.notice());
        }
    }

    /// The queued events, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    /// Removes the oldest event. The room this makes lets the `events-lost` notice
    /// of earlier drops in at once, behind what is queued and before any later
    /// event.
    pub fn pop_front(&mut self) {
        self.events.pop_front();
        if self.events.len() < self.limit {
            if let Some(lost) = self.lost.take() {
                self.events.push_back(lost.notice());
            }
        }
    }

    /// Keeps only the events `keep` accepts; a pending `events-lost` notice is
    /// forgotten when nothing is kept (nobody is left to tell).
    pub fn retain(&mut self, mut keep: impl FnMut(&Event) -> bool) {
        self.events.retain(|e| keep(e));
        if self.events.is_empty() && self.lost.is_some_and(|lost| !keep(&lost.notice())) {
            self.lost = None;
        }
    }

    /// Whether nothing waits, dropped events included.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.lost.is_none()
    }

    /// Changes the limit; events already queued stay.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse;

    fn event(seq: u64) -> Event {
        parse(r#"<event type="t"/>"#).unwrap().seal(seq)
    }

    #[test]
    fn full_queue_counts_drops_and_reports_them_after_the_kept_events() {
        let mut q = Queue::new(10);
        (1..=25).for_each(|seq| q.push(event(seq)));
        let mut out = Vec::new();
        q.drain_into(&mut out);
        assert_eq!(out.len(), 11);
        assert_eq!(out[..10].iter().map(Event::seq).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
        let notice = out[10].xml();
        assert!(notice.contains(r#"count="15" first-seq="11" last-seq="25""#), "{notice}");
        assert_eq!(out[10].seq(), 0);
        assert!(q.is_empty());
    }

    #[test]
    fn popping_makes_room_for_the_notice_at_once() {
        let mut q = Queue::new(2);
        (1..=4).for_each(|seq| q.push(event(seq)));
        q.pop_front();
        let seqs: Vec<_> = q.iter().map(|e| (e.kind().to_string(), e.seq())).collect();
        assert_eq!(seqs, [("t".into(), 2), ("events-lost".into(), 0)]);
        assert!(q.iter().nth(1).unwrap().xml().contains(r#"count="2" first-seq="3" last-seq="4""#));
    }

    #[test]
    fn notice_precedes_later_events_when_room_comes_back() {
        let mut q = Queue::new(1);
        q.push(event(1));
        q.push(event(2));
        q.set_limit(5);
        q.push(event(3));
        let mut out = Vec::new();
        q.drain_into(&mut out);
        let kinds: Vec<_> = out.iter().map(|e| (e.kind().to_string(), e.seq())).collect();
        assert_eq!(kinds, [("t".into(), 1), ("events-lost".into(), 0), ("t".into(), 3)]);
    }
}
