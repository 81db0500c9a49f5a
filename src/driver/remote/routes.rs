//! Which registration each event message belongs to: an event is taken only
//! when its procedure and its callback ID are those of a registration this
//! connection made (network and secret callbacks are numbered by other driver
//! connections inside the daemon, so the ID alone does not say).

use super::kinds::Kind;

/// The lowest and highest event procedures of [`super::kinds::KINDS`].
const FIRST: i32 = 315;
const LAST: i32 = 453;

/// The registrations made, by procedure, and in the order made (the order
/// closing deregisters them in). Each procedure's slot is one byte, the
/// registration's place in `made` plus one (0: none), so that a fleet's
/// connections keep small tables.
pub struct Routes {
    by_procedure: Box<[u8; (LAST - FIRST + 1) as usize]>,
    made: Vec<(&'static Kind, i32)>,
}

impl Default for Routes {
    fn default() -> Routes {
        Routes { by_procedure: Box::new([0; (LAST - FIRST + 1) as usize]), made: Vec::with_capacity(super::kinds::KINDS.len()) }
    }
}

impl Routes {
    /// Records that `kind`'s events come with `callback_id`.
    pub fn add(&mut self, kind: &'static Kind, callback_id: i32) {
        self.made.push((kind, callback_id));
        let place = u8::try_from(self.made.len()).expect("one registration per kind, fewer than 256");
        self.by_procedure[slot(kind.procedure).expect("every kind's procedure has a slot")] = place;
    }

    /// The registration for events on `procedure`, if this connection made
    /// one: its callback ID and kind.
    pub fn get(&self, procedure: i32) -> Option<(i32, &'static Kind)> {
        let place = usize::from(self.by_procedure[slot(procedure)?]).checked_sub(1)?;
        self.made.get(place).map(|&(kind, id)| (id, kind))
    }

    /// The event types registered, in the order made.
    pub fn type_names(&self) -> Vec<&'static str> {
        self.made.iter().map(|(kind, _)| kind.type_name).collect()
    }

    /// Every registration in the order made, for deregistering: the kind and
    /// its callback ID. No event is taken afterwards.
    pub fn take(&mut self) -> Vec<(&'static Kind, i32)> {
        self.by_procedure.fill(0);
        std::mem::take(&mut self.made)
    }
}

fn slot(procedure: i32) -> Option<usize> {
    (FIRST..=LAST).contains(&procedure).then(|| (procedure - FIRST) as usize)
}

#[cfg(test)]
mod tests {
    use super::super::kinds::KINDS;
    use super::*;

    #[test]
    fn every_kind_has_a_slot() {
        let mut routes = Routes::default();
        for (n, kind) in KINDS.iter().enumerate() {
            routes.add(kind, n as i32 % 3);
        }
        for (n, kind) in KINDS.iter().enumerate() {
            let (id, found) = routes.get(kind.procedure).unwrap();
            assert_eq!((id, found.type_name), (n as i32 % 3, kind.type_name));
        }
        assert!(routes.get(FIRST - 1).is_none() && routes.get(LAST + 1).is_none() && routes.get(i32::MIN).is_none());
        let made: Vec<&str> = routes.take().iter().map(|(kind, _)| kind.type_name).collect();
        assert_eq!(made, KINDS.iter().map(|kind| kind.type_name).collect::<Vec<_>>());
        assert!(routes.get(318).is_none());
    }
}
