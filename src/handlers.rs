//! Registered handlers and the index that finds, for an event type, the handlers
//! whose filters can match it, without visiting the others.

use std::collections::{BTreeMap, HashMap};

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, ErrorCode, Result};
use crate::event::Event;
use crate::filter::{Entry as FilterEntry, Filter, TypePattern};
use crate::fnv::FnvHashMap;
use crate::thread_mark;

/// A handler's id: unique on its connection, never reused.
pub type HandlerId = i32;

/// A handler's code. Dropping it is the moment its resources go (the C layer's
/// `freecb`): see [`Entry`] for when that happens.
pub type Callback = Box<dyn Fn(&Event) + Send + Sync>;

/// A registered handler.
///
/// Its callback is dropped exactly once, after its last call has returned: by
/// [`retire`] when no call is running, else by the end of the last running call
/// (a handler that removed itself). Deliveries may still hold the entry then;
/// they find it removed.
pub struct Entry {
    id: HandlerId,
    filter: Filter,
    /// The last seq assigned before registration: earlier events are not its own.
    after_seq: u64,
    calls: Mutex<Calls>,
    idle: Condvar,
}

/// The callback while it is registered, which threads (by [`thread_mark`]) are
/// running it now, and which thread removed it, if one has.
struct Calls {
    callback: Option<Arc<Callback>>,
    removed_by: Option<usize>,
    running: Vec<usize>,
}

impl Entry {
    /// Whether this handler takes `event`: one emitted after the handler was added
    /// whose type its filter matches, or an `events-lost` notice (seq 0), which
    /// every handler of the queue takes.
    fn takes(&self, event: &Event) -> bool {
        event.seq() == 0 || (event.seq() > self.after_seq && self.filter.matches(event))
    }

    /// Runs the handler on `event` unless it has been removed; returns whether it ran.
    pub fn call(&self, event: &Event) -> bool {
        let me = thread_mark::current();
        let callback = {
            let mut calls = self.calls.lock();
            let Some(callback) = calls.callback.clone().filter(|_| calls.removed_by.is_none()) else {
                return false;
            };
            calls.running.push(me);
            callback
        };
        let done = CallDone { entry: self, thread: me };
        callback(event);
        drop(callback);
        drop(done);
        true
    }

    /// Marks the handler removed, waits until no other thread is inside it, and
    /// drops its callback unless this thread is inside it (removal from inside
    /// the handler): then the end of that call drops it.
    fn retire(&self) {
        let me = thread_mark::current();
        let mut calls = self.calls.lock();
        calls.removed_by = Some(me);
        while calls.running.iter().any(|&t| t != me) {
            self.idle.wait(&mut calls);
        }
        let callback = if calls.running.is_empty() { calls.callback.take() } else { None };
        drop(calls);
        drop(callback);
    }
}

/// Ends a call's record even if the handler panics.
struct CallDone<'a> {
    entry: &'a Entry,
    thread: usize,
}

impl Drop for CallDone<'_> {
    fn drop(&mut self) {
        let mut calls = self.entry.calls.lock();
        if let Some(i) = calls.running.iter().position(|&t| t == self.thread) {
            calls.running.swap_remove(i);
        }
        let Some(remover) = calls.removed_by else { return };
        self.entry.idle.notify_all();
        // Removed from inside this very call: this was its last, and the
        // callback goes now. Removed from another thread: the remover drops it.
        let last = remover == self.thread && calls.running.is_empty();
        let callback = if last { calls.callback.take() } else { None };
        drop(calls);
        drop(callback);
    }
}

/// The handlers of a connection, indexed by the types they can match.
#[derive(Default)]
pub struct Registry {
    next_id: HandlerId,
    by_id: HashMap<HandlerId, Arc<Entry>>,
    /// Handlers that may take any event: filter NULL, or an XPath entry that
    /// does not fix the type.
    all: Vec<Arc<Entry>>,
    /// Handlers by an exact type their filter names.
    exact: FnvHashMap<Box<str>, Vec<Arc<Entry>>>,
    /// Handlers by the literal prefix of each wildcard pattern in their filter,
    /// beside that pattern.
    prefixed: FnvHashMap<Box<str>, Vec<(TypePattern, Arc<Entry>)>>,
    /// The lengths of those prefixes, with how many index slots use each.
    prefix_lengths: BTreeMap<usize, usize>,
}

impl Registry {
    /// Registers a handler that takes events with seq above `after_seq`.
    pub fn add(&mut self, filter: Filter, callback: Callback, after_seq: u64) -> Result<HandlerId> {
        let id = self.next_id;
        self.next_id = id.checked_add(1).ok_or_else(|| {
            Error::new(ErrorCode::OperationFailed, "this connection has used up its handler ids")
        })?;
        let entry = Arc::new(Entry {
            id,
            filter,
            after_seq,
            calls: Mutex::new(Calls { callback: Some(Arc::new(callback)), removed_by: None, running: Vec::new() }),
            idle: Condvar::new(),
        });
        for slot in self.slots(&entry.filter) {
            match slot {
                Slot::All => self.all.push(entry.clone()),
                Slot::Exact(kind) => self.exact.entry(kind.into()).or_default().push(entry.clone()),
                Slot::Wildcard(pattern) => {
                    let prefix = pattern.literal_prefix();
                    *self.prefix_lengths.entry(prefix.len()).or_default() += 1;
                    self.prefixed.entry(prefix.into()).or_default().push((pattern.clone(), entry.clone()));
                }
            }
        }
        self.by_id.insert(id, entry);
        Ok(id)
    }

    /// Unregisters a handler and returns it; the caller retires and drops it
    /// outside any lock (see [`retire`]).
    pub fn remove(&mut self, id: HandlerId) -> Result<Arc<Entry>> {
        let entry = self.by_id.remove(&id).ok_or_else(|| {
            Error::new(ErrorCode::InvalidArg, format!("no handler with id {id} on this connection"))
        })?;
        for slot in self.slots(&entry.filter) {
            match slot {
                Slot::All => self.all.retain(|e| e.id != id),
                Slot::Exact(kind) => remove_from(&mut self.exact, kind, |e| e.id != id),
                Slot::Wildcard(pattern) => {
                    let prefix = pattern.literal_prefix();
                    remove_from(&mut self.prefixed, prefix, |(_, e)| e.id != id);
                    if let Some(uses) = self.prefix_lengths.get_mut(&prefix.len()) {
                        *uses -= 1;
                        if *uses == 0 {
                            self.prefix_lengths.remove(&prefix.len());
                        }
                    }
                }
            }
        }
        Ok(entry)
    }

    /// Unregisters every handler and returns them, in id order.
    pub fn take_all(&mut self) -> Vec<Arc<Entry>> {
        let mut entries: Vec<_> = std::mem::take(&mut self.by_id).into_values().collect();
        entries.sort_by_key(|e| e.id);
        *self = Registry { next_id: self.next_id, ..Registry::default() };
        entries
    }

    /// Whether any handler could take an event of type `kind` (the queue keeps
    /// only those events).
    pub fn any_may_take(&self, kind: &str) -> bool {
        !self.all.is_empty()
            || self.exact.contains_key(kind)
            || self.wildcards_for(kind).any(|(p, _)| p.matches(kind))
    }

    /// Whether some handler takes `event` (see [`Registry::matching`]).
    pub fn any_takes(&self, event: &Event) -> bool {
        if event.seq() == 0 {
            return !self.by_id.is_empty();
        }
        let kind = event.kind();
        self.all.iter().chain(self.exact.get(kind).into_iter().flatten()).any(|e| e.takes(event))
            || self.wildcards_for(kind).any(|(p, e)| p.matches(kind) && e.takes(event))
    }

    /// Appends to `out` each handler that takes `event`, once, in id order.
    pub fn matching(&self, event: &Event, out: &mut Vec<Arc<Entry>>) {
        let start = out.len();
        if event.seq() == 0 {
            out.extend(self.by_id.values().cloned());
        } else {
            let kind = event.kind();
            let mut add = |e: &Arc<Entry>| {
                if e.takes(event) {
                    out.push(e.clone());
                }
            };
            self.all.iter().for_each(&mut add);
            self.exact.get(kind).into_iter().flatten().for_each(&mut add);
            self.wildcards_for(kind).filter(|(p, _)| p.matches(kind)).for_each(|(_, e)| add(e));
        }
        let found = &mut out[start..];
        if found.len() > 1 {
            found.sort_by_key(|e| e.id);
            let mut unique: Vec<_> = out.drain(start..).collect();
            unique.dedup_by_key(|e| e.id);
            out.extend(unique);
        }
    }

    /// The wildcard patterns whose literal prefix starts `kind`, with their handlers.
    fn wildcards_for<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a (TypePattern, Arc<Entry>)> + 'a {
        self.prefix_lengths
            .keys()
            .take_while(move |&&len| len <= kind.len())
            .filter_map(move |&len| self.prefixed.get(kind.get(..len)?))
            .flatten()
    }

    /// The index slots a filter occupies, one per distinct exact type or prefix.
    fn slots<'f>(&self, filter: &'f Filter) -> Vec<Slot<'f>> {
        let mut slots = Vec::new();
        match filter {
            Filter::All => slots.push(Slot::All),
            Filter::Any(entries) => {
                for entry in entries {
                    let slot = match entry {
                        FilterEntry::Type(p) if p.is_wildcard() => Slot::Wildcard(p),
                        FilterEntry::Type(p) => Slot::Exact(p.as_str()),
                        // `/event[@type='T' ...]` is indexed under T; other
                        // expressions may match any type.
                        FilterEntry::XPath(x) => x.fixed_type().map_or(Slot::All, Slot::Exact),
                    };
                    if !slots.contains(&slot) {
                        slots.push(slot);
                    }
                }
            }
        }
        slots
    }
}

/// Drops the items `keep` refuses from `map[key]`, and the key once it is empty.
fn remove_from<T>(map: &mut FnvHashMap<Box<str>, Vec<T>>, key: &str, keep: impl FnMut(&T) -> bool) {
    if let Some(list) = map.get_mut(key) {
        list.retain(keep);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

#[derive(PartialEq, Eq)]
enum Slot<'f> {
    All,
    Exact(&'f str),
    Wildcard(&'f TypePattern),
}

/// Marks removed handlers as such, waits for their calls on other threads to
/// return, and drops their callbacks (see [`Entry`]). Call with no lock held.
pub fn retire(entries: &[Arc<Entry>]) {
    entries.iter().for_each(|e| e.retire());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse;

    fn event(kind: &str, seq: u64) -> Event {
        parse(&format!(r#"<event type="{kind}"/>"#)).unwrap().seal(seq)
    }

    fn add(registry: &mut Registry, entries: &[&str]) -> HandlerId {
        registry.add(Filter::parse(entries).unwrap(), Box::new(|_| {}), 0).unwrap()
    }

    fn takers(registry: &Registry, kind: &str) -> Vec<HandlerId> {
        let mut out = Vec::new();
        registry.matching(&event(kind, 1), &mut out);
        out.iter().map(|e| e.id).collect()
    }

    #[test]
    fn index_finds_exactly_the_matching_handlers_once_in_id_order() {
        let mut r = Registry::default();
        let exact = add(&mut r, &["domain-state-transition"]);
        let wild = add(&mut r, &["domain-*"]);
        let both = add(&mut r, &["domain-*", "domain-state-transition", "d*n"]);
        let longer = add(&mut r, &["domain-state-*"]);
        let suffix = add(&mut r, &["*-lost"]);
        let other = add(&mut r, &["disk-error"]);
        assert_eq!(takers(&r, "domain-state-transition"), [exact, wild, both, longer]);
        assert_eq!(takers(&r, "domain-reboot"), [wild, both]);
        assert_eq!(takers(&r, "domain"), [both]);
        assert_eq!(takers(&r, "events-lost"), [suffix]);
        assert_eq!(takers(&r, "disk-error"), [other]);
        assert!(takers(&r, "dom").is_empty());
        assert!(r.any_may_take("domain") && !r.any_may_take("dom"));

        r.remove(wild).unwrap();
        r.remove(both).unwrap();
        assert_eq!(takers(&r, "domain-state-transition"), [exact, longer]);
        assert!(takers(&r, "domain-reboot").is_empty());
        assert_eq!(r.prefix_lengths.keys().copied().collect::<Vec<_>>(), [0, 13]);
        assert_eq!(r.remove(wild).err().map(|e| e.code), Some(ErrorCode::InvalidArg));
    }

    #[test]
    fn handlers_take_only_events_after_their_registration_and_every_notice() {
        let mut r = Registry::default();
        let late = r.add(Filter::All, Box::new(|_| {}), 5).unwrap();
        let mut out = Vec::new();
        r.matching(&event("t", 5), &mut out);
        assert!(out.is_empty());
        r.matching(&event("t", 6), &mut out);
        r.matching(&crate::event::Event::lost(1, 2, 2), &mut out);
        assert_eq!(out.iter().map(|e| e.id).collect::<Vec<_>>(), [late, late]);
    }

    #[test]
    fn xpath_entries_that_fix_the_type_are_indexed_by_it() {
        let mut r = Registry::default();
        let fixed = add(&mut r, &["/event[@type='a' and x]"]);
        let free = add(&mut r, &["/event[x]"]);
        assert!(r.all.iter().map(|e| e.id).eq([free]));
        assert!(r.exact["a"].iter().map(|e| e.id).eq([fixed]));
        let with_x = parse(r#"<event type="a"><x/></event>"#).unwrap().seal(1);
        let without = parse(r#"<event type="a"/>"#).unwrap().seal(2);
        let other = parse(r#"<event type="b"><x/></event>"#).unwrap().seal(3);
        let ids = |e: &Event| {
            let mut out = Vec::new();
            r.matching(e, &mut out);
            out.iter().map(|e| e.id).collect::<Vec<_>>()
        };
        assert_eq!(ids(&with_x), [fixed, free]);
        assert!(ids(&without).is_empty());
        assert_eq!(ids(&other), [free]);
    }

    #[test]
    fn ids_are_never_reused() {
        let mut r = Registry::default();
        let first = add(&mut r, &["a"]);
        r.remove(first).unwrap();
        assert_ne!(add(&mut r, &["a"]), first);
        assert_eq!(r.take_all().len(), 1);
        assert_eq!(add(&mut r, &["a"]), first + 2);
    }
}
