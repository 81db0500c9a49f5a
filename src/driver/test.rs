//! The test driver: a simulated hypervisor, as libvirt's `test:///default` and
//! `test:///empty`, whose domain operations emit `domain-state-transition` events.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::domain::{state_transition, DomainIdentity, DomainState};
use crate::driver::Source;
use crate::error::{Error, ErrorCode, Result};
use crate::hub::Hub;

/// The uuid of `test:///default`'s domain, as libvirt's test driver has it.
pub const DEFAULT_DOMAIN_UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

/// The simulated hypervisor of one connection.
pub struct TestDriver {
    hub: Arc<Hub>,
    domains: Mutex<Domains>,
}

struct Domains {
    list: Vec<Record>,
    next_id: i32,
}

struct Record {
    identity: DomainIdentity,
    state: DomainState,
}

/// A domain operation of the test driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// shutoff -> running
    Create,
    /// running -> paused
    Suspend,
    /// paused -> running
    Resume,
    /// running -> shutoff
    Shutdown,
    /// active -> shutoff
    Destroy,
}

impl Operation {
    /// The verb for messages.
    fn verb(self) -> &'static str {
        match self {
            Operation::Create => "start",
            Operation::Suspend => "suspend",
            Operation::Resume => "resume",
            Operation::Shutdown => "shut down",
            Operation::Destroy => "destroy",
        }
    }

    /// The state it leaves the domain in and libvirt's event reason, or what the
    /// domain should have been in.
    fn apply(self, from: DomainState) -> std::result::Result<(DomainState, &'static str), &'static str> {
        use DomainState::*;
        match (self, from) {
            (Operation::Create, Shutoff) => Ok((Running, "started-booted")),
            (Operation::Create, _) => Err("shut off"),
            (Operation::Suspend, Running) => Ok((Paused, "suspended-paused")),
            (Operation::Suspend, _) => Err("running"),
            (Operation::Resume, Paused) => Ok((Running, "resumed-unpaused")),
            (Operation::Resume, _) => Err("paused"),
            (Operation::Shutdown, Running) => Ok((Shutoff, "stopped-shutdown")),
            (Operation::Shutdown, _) => Err("running"),
            (Operation::Destroy, s) if s.is_active() => Ok((Shutoff, "stopped-destroyed")),
            (Operation::Destroy, _) => Err("active"),
        }
    }
}

impl TestDriver {
    /// `test:///default`: one running domain named `test`, id 1.
    pub fn default_host(hub: Arc<Hub>) -> TestDriver {
        let test = Record {
            identity: DomainIdentity { id: 1, name: "test".into(), uuid: DEFAULT_DOMAIN_UUID.into() },
            state: DomainState::Running,
        };
        TestDriver { hub, domains: Mutex::new(Domains { list: vec![test], next_id: 2 }) }
    }

    /// `test:///empty`: no domains.
    pub fn empty_host(hub: Arc<Hub>) -> TestDriver {
        TestDriver { hub, domains: Mutex::new(Domains { list: Vec::new(), next_id: 1 }) }
    }

    /// Checks that a domain named `name` exists.
    pub fn lookup(&self, name: &str) -> Result<()> {
        self.hub.check_origin()?;
        if self.domains.lock().list.iter().any(|r| r.identity.name == name) {
            Ok(())
        } else {
            Err(Error::new(ErrorCode::NoDomain, format!("no domain with name '{name}'")))
        }
    }

    /// Applies `op` to the domain `name` and emits its transition. A domain in the
    /// wrong state is left alone and nothing is emitted.
    pub fn run(&self, name: &str, op: Operation) -> Result<()> {
        // Checked before the domain lock, which in a forked child may be a
        // copy of one a parent thread held.
        self.hub.check_origin()?;
        // The domain lock is held across the emit so that events leave in the
        // order the states changed.
        let mut domains = self.domains.lock();
        self.hub.check_open()?;
        let next_id = domains.next_id;
        let record = domains
            .list
            .iter_mut()
            .find(|r| r.identity.name == name)
            .ok_or_else(|| Error::new(ErrorCode::NoDomain, format!("no domain with name '{name}'")))?;
        let old = record.state;
        let (new, reason) = op.apply(old).map_err(|wanted| {
            Error::new(
                ErrorCode::OperationInvalid,
                format!("cannot {} domain '{name}': it is {}, not {wanted}", op.verb(), old.name()),
            )
        })?;
        let mut identity = record.identity.clone();
        identity.id = match (old.is_active(), new.is_active()) {
            (false, true) => next_id,
            (_, false) => -1,
            (true, true) => identity.id,
        };
        self.hub.emit(state_transition(&identity, old, new, reason))?;
        record.identity = identity;
        record.state = new;
        if !old.is_active() && new.is_active() {
            domains.next_id += 1;
        }
        Ok(())
    }
}

/// The test driver emits as its domain calls are made: a delivery round has
/// nothing to ask of it, and it owns no descriptor.
impl Source for TestDriver {
    fn pump(&self) {}

    fn check(&self) -> Result<()> {
        Ok(())
    }

    fn close(&self) {}

    fn descriptors_after_fork(&self, _out: &mut Vec<std::os::fd::RawFd>) {}
}
