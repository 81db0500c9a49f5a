//! libvirt's enums in two spellings: the word an event carries (lower case,
//! hyphenated: docs/events.md) and the word virsh prints for the same number
//! (`virevent-watch --format virsh`). One table per enum, indexed by libvirt's
//! number; a number past the end is `unknown-N` in an event, and virsh's own
//! word for numbers it does not know.

/// One of libvirt's enums.
pub struct Words {
    /// `(event word, virsh word)` for each number from 0.
    pub names: &'static [(&'static str, &'static str)],
    /// What virsh prints for a number it does not know.
    pub virsh_unknown: &'static str,
}

impl Words {
    /// The event word for `n`, or `None` for a number this library does not know.
    pub fn event_word(&self, n: i32) -> Option<&'static str> {
        usize::try_from(n).ok().and_then(|i| self.names.get(i)).map(|(word, _)| *word)
    }

    /// What virsh prints for the number an event spells `word` (`unknown-N`
    /// included).
    pub fn virsh_word(&self, word: &str) -> &'static str {
        self.names.iter().find(|(w, _)| *w == word).map_or(self.virsh_unknown, |(_, v)| v)
    }
}

const fn words(names: &'static [(&'static str, &'static str)], virsh_unknown: &'static str) -> Words {
    Words { names, virsh_unknown }
}

/// `virDomainEventType`.
pub const DOMAIN_EVENT: Words = words(
    &[
        ("defined", "Defined"),
        ("undefined", "Undefined"),
        ("started", "Started"),
        ("suspended", "Suspended"),
        ("resumed", "Resumed"),
        ("stopped", "Stopped"),
        ("shutdown", "Shutdown"),
        ("pmsuspended", "PMSuspended"),
        ("crashed", "Crashed"),
    ],
    "unknown",
);

/// The detail enums of each `virDomainEventType`, in [`DOMAIN_EVENT`]'s order.
pub const DOMAIN_EVENT_DETAIL: [Words; 9] = [
    words(&[("added", "Added"), ("updated", "Updated"), ("renamed", "Renamed"), ("from-snapshot", "Snapshot")], "unknown"),
    words(&[("removed", "Removed"), ("renamed", "Renamed")], "unknown"),
    words(
        &[
            ("booted", "Booted"),
            ("migrated", "Migrated"),
            ("restored", "Restored"),
            ("from-snapshot", "Snapshot"),
            ("wakeup", "Event wakeup"),
            ("recreated", "Recreation"),
        ],
        "unknown",
    ),
    words(
        &[
            ("paused", "Paused"),
            ("migrated", "Migrated"),
            ("ioerror", "I/O Error"),
            ("watchdog", "Watchdog"),
            ("restored", "Restored"),
            ("from-snapshot", "Snapshot"),
            ("api-error", "API error"),
            ("postcopy", "Post-copy"),
            ("postcopy-failed", "Post-copy Error"),
        ],
        "unknown",
    ),
    words(
        &[
            ("unpaused", "Unpaused"),
            ("migrated", "Migrated"),
            ("from-snapshot", "Snapshot"),
            ("postcopy", "Post-copy"),
            ("postcopy-failed", "Post-copy Error"),
        ],
        "unknown",
    ),
    words(
        &[
            ("shutdown", "Shutdown"),
            ("destroyed", "Destroyed"),
            ("crashed", "Crashed"),
            ("migrated", "Migrated"),
            ("saved", "Saved"),
            ("failed", "Failed"),
            ("from-snapshot", "Snapshot"),
            ("recreated", "Recreation"),
        ],
        "unknown",
    ),
    words(
        &[("finished", "Finished"), ("guest", "Finished after guest request"), ("host", "Finished after host request")],
        "unknown",
    ),
    words(&[("memory", "Memory"), ("disk", "Disk")], "unknown"),
    words(&[("panicked", "Panicked"), ("crashloaded", "Crashloaded")], "unknown"),
];

/// `virDomainEventWatchdogAction`.
pub const WATCHDOG_ACTION: Words = words(
    &[
        ("none", "none"),
        ("pause", "pause"),
        ("reset", "reset"),
        ("poweroff", "poweroff"),
        ("shutdown", "shutdown"),
        ("debug", "debug"),
        ("inject-nmi", "inject-nmi"),
    ],
    "unknown",
);

/// `virDomainEventIOErrorAction`.
pub const IO_ERROR_ACTION: Words = words(&[("none", "none"), ("pause", "pause"), ("report", "report")], "unknown");

/// `virDomainEventGraphicsPhase`.
pub const GRAPHICS_PHASE: Words =
    words(&[("connect", "connect"), ("initialize", "initialize"), ("disconnect", "disconnect")], "unknown");

/// `virDomainEventGraphicsAddressType`.
pub const GRAPHICS_FAMILY: Words = words(&[("ipv4", "IPv4"), ("ipv6", "IPv6"), ("unix", "unix")], "unknown");

/// `virConnectDomainEventBlockJobType`.
pub const BLOCK_JOB_TYPE: Words = words(
    &[
        ("unknown", "Unknown job"),
        ("pull", "Block Pull"),
        ("copy", "Block Copy"),
        ("commit", "Block Commit"),
        ("active-commit", "Active Block Commit"),
        ("backup", "Backup"),
    ],
    "Unknown job",
);

/// `virConnectDomainEventBlockJobStatus`.
pub const BLOCK_JOB_STATUS: Words =
    words(&[("completed", "completed"), ("failed", "failed"), ("canceled", "canceled"), ("ready", "ready")], "unknown");

/// `virConnectDomainEventDiskChangeReason`.
pub const DISK_CHANGE_REASON: Words =
    words(&[("missing-on-start", "changed"), ("drop-missing-on-start", "dropped")], "unknown");

/// `virDomainEventTrayChangeReason`.
pub const TRAY_CHANGE_REASON: Words = words(&[("open", "opened"), ("close", "closed")], "unknown");

/// `virConnectDomainEventAgentLifecycleState` (0 is not libvirt's; virsh names it).
pub const AGENT_STATE: Words =
    words(&[("unknown", "unknown"), ("connected", "connected"), ("disconnected", "disconnected")], "unsupported value");

/// `virConnectDomainEventAgentLifecycleReason`.
pub const AGENT_REASON: Words = words(
    &[("unknown", "unknown"), ("domain-started", "domain started"), ("channel", "channel event")],
    "unsupported value",
);

/// `virDomainMetadataType` (also `virNetworkMetadataType`).
pub const METADATA_TYPE: Words =
    words(&[("description", "description"), ("title", "title"), ("element", "element")], "unsupported value");

/// `virDomainMemoryFailureRecipientType`.
pub const MEMORY_FAILURE_RECIPIENT: Words = words(&[("hypervisor", "hypervisor"), ("guest", "guest")], "unsupported value");

/// `virDomainMemoryFailureActionType`.
pub const MEMORY_FAILURE_ACTION: Words =
    words(&[("ignore", "ignore"), ("inject", "inject"), ("fatal", "fatal"), ("reset", "reset")], "unsupported value");

/// `virNetworkEventLifecycleType`.
pub const NETWORK_LIFECYCLE: Words =
    words(&[("defined", "Defined"), ("undefined", "Undefined"), ("started", "Started"), ("stopped", "Stopped")], "unknown");

/// `virStoragePoolEventLifecycleType`.
pub const POOL_LIFECYCLE: Words = words(
    &[
        ("defined", "Defined"),
        ("undefined", "Undefined"),
        ("started", "Started"),
        ("stopped", "Stopped"),
        ("created", "Created"),
        ("deleted", "Deleted"),
    ],
    "unknown",
);

/// `virNodeDeviceEventLifecycleType`.
pub const NODE_DEVICE_LIFECYCLE: Words =
    words(&[("created", "Created"), ("deleted", "Deleted"), ("defined", "Defined"), ("undefined", "Undefined")], "unknown");

/// `virSecretEventLifecycleType`.
pub const SECRET_LIFECYCLE: Words = words(&[("defined", "Defined"), ("undefined", "Undefined")], "unknown");

/// `virSecretUsageType`.
pub const SECRET_USAGE: Words = words(
    &[("none", "none"), ("volume", "volume"), ("ceph", "ceph"), ("iscsi", "iscsi"), ("tls", "tls"), ("vtpm", "vtpm")],
    "unknown",
);

/// `virConnectCloseReason`.
pub const CLOSE_REASON: Words =
    words(&[("error", "error"), ("eof", "eof"), ("keepalive", "keepalive"), ("client", "client")], "unknown");

/// `virTypedParameterType`, from 1: the `type` attribute of a `<param>`.
pub const TYPED_PARAM: [&str; 7] = ["int", "uint", "llong", "ullong", "double", "boolean", "string"];
