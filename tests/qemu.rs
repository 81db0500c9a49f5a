//! `virevent-watch --format virsh` against `virsh event --all --loop
//! --timestamp` on a real QEMU domain under TCG, line for line after the
//! timestamp, both watching at once while the test drives the domain through
//! every action that makes libvirt send a domain event it can make here.
//!
//! The daemon is a private libvirtd with the QEMU driver, run by `unshare` in
//! mount and PID namespaces of its own: tmpfs over /run, /var/lib, /var/cache
//! and /var/log, its own /etc/libvirt (qemu.conf: root, no security driver,
//! QEMU's output to files) and /etc/passwd and /etc/group that add the
//! libvirt-qemu user the QEMU driver looks up. Its only listener is a Unix
//! socket in the test's folder. The namespace's first process reaps QEMU once
//! it ends; stopping it (SIGTERM, by PID) ends libvirtd, and with it every
//! process in the namespace and every mount. Where the host has a cgroup v1
//! `cpu` hierarchy, the namespace sees that one alone and libvirt puts the
//! domain there (for schedinfo); the `machine` folder libvirt makes in it is
//! removed at the end if this test made it.
//!
//! The guest is a boot sector made here ([`BOOT_SECTOR`]): it says it is ready
//! on the serial port, then does one thing per key sent with `virsh send-key`.
//! Its disk is a 1 MiB sparse file on a tmpfs of one page, so that a write
//! past the first page fails with ENOSPC: a real I/O error.
//!
//! Needs root, qemu-system-x86 (on Debian 12 from bookworm-backports, see
//! .ci/run), libvirt-daemon-driver-qemu, libvirt-daemon, libvirt-clients and
//! util-linux; without them the test says SKIPPED and passes (see
//! tests/common/tools.rs).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::tools;

const BIN: &str = env!("CARGO_BIN_EXE_virevent-watch");

const NAME: &str = "virevent-tcg";
const UUID: &str = "5f0c61a4-3c1e-4b9e-9a52-7e1d2b6c0d13";

/// A user's filter for "the domain was started from shut off": libvirt sends
/// `Resumed Unpaused` before `Started Booted`, and the library still reports
/// the start as from `shutoff` (see docs/events.md).
const STARTED_FROM_SHUTOFF: &str = "/event[old-state='shutoff' and reason='started-booted']";

/// How long one action's events, the guest's boot, or the daemon's start may
/// take under TCG on a busy machine.
const PATIENCE: Duration = Duration::from_secs(60);
/// How long both watchers must print nothing more before an action is done.
const QUIET: Duration = Duration::from_millis(500);

/// The guest: a boot sector at 0x7c00 in real mode. It writes 'R' to COM1
/// (ready, once per boot), then reads keys with the BIOS (int 16h) for ever:
/// - `r`: writes the RTC's seconds register (QEMU's RTC_CHANGE),
/// - `w`: arms the ib700 watchdog for 2 seconds,
/// - `s`: S3, `o`: S5 (power-off), by writing SLP_TYP|SLP_EN to PM1a_CNT at
///   the PIIX4 PM base (PCI 00:01.3, register 0x40) + 4,
/// - `p`: writes 1 to the pvpanic port 0x505,
/// - `i`: writes sector 9 (CHS 0/0/9, past the disk's one stored page) of
///   the boot disk with int 13h, which fails with ENOSPC.
const BOOT_SECTOR: &[u8] = &[
    0x31, 0xc0, // xor %ax,%ax
    0x8e, 0xd8, // mov %ax,%ds
    0x8e, 0xc0, // mov %ax,%es
    0x8e, 0xd0, // mov %ax,%ss
    0xbc, 0x00, 0x7c, // mov $0x7c00,%sp
    0xfb, // sti
    0xba, 0xf8, 0x03, // mov $0x3f8,%dx
    0xb0, 0x52, // mov $'R',%al
    0xee, // out %al,(%dx)
    // 0x12, key:
    0x30, 0xe4, // xor %ah,%ah
    0xcd, 0x16, // int $0x16: the key's ASCII in %al
    0x3c, 0x72, // cmp $'r',%al
    0x75, 0x0a, // jne 0x24
    0xb0, 0x00, // mov $0x0,%al
    0xe6, 0x70, // out %al,$0x70: CMOS register 0, seconds
    0xb0, 0x30, // mov $0x30,%al
    0xe6, 0x71, // out %al,$0x71
    0xeb, 0xee, // jmp key
    0x3c, 0x77, // 0x24: cmp $'w',%al
    0x75, 0x08, // jne 0x30
    0xba, 0x43, 0x04, // mov $0x443,%dx: ib700's enable register
    0xb0, 0x0e, // mov $0xe,%al: 2 seconds
    0xee, // out %al,(%dx)
    0xeb, 0xe2, // jmp key
    0x3c, 0x73, // 0x30: cmp $'s',%al
    0x75, 0x05, // jne 0x39
    0xbb, 0x00, 0x24, // mov $0x2400,%bx: SLP_EN, SLP_TYP 1 (S3)
    0xeb, 0x07, // jmp 0x40
    0x3c, 0x6f, // 0x39: cmp $'o',%al
    0x75, 0x20, // jne 0x5d
    0xbb, 0x00, 0x20, // mov $0x2000,%bx: SLP_EN, SLP_TYP 0 (S5)
    0xba, 0xf8, 0x0c, // 0x40: mov $0xcf8,%dx
    0x66, 0xb8, 0x40, 0x0b, 0x00, 0x80, // mov $0x80000b40,%eax: 00:01.3, register 0x40
    0x66, 0xef, // out %eax,(%dx)
    0xba, 0xfc, 0x0c, // mov $0xcfc,%dx
    0x66, 0xed, // in (%dx),%eax
    0x83, 0xe0, 0xc0, // and $0xffc0,%ax: the PM base
    0x83, 0xc0, 0x04, // add $0x4,%ax: PM1a_CNT
    0x89, 0xc2, // mov %ax,%dx
    0x89, 0xd8, // mov %bx,%ax
    0xef, // out %ax,(%dx)
    0xeb, 0xb5, // jmp key
    0x3c, 0x70, // 0x5d: cmp $'p',%al
    0x75, 0x08, // jne 0x69
    0xba, 0x05, 0x05, // mov $0x505,%dx
    0xb0, 0x01, // mov $0x1,%al
    0xee, // out %al,(%dx)
    0xeb, 0xa9, // jmp key
    0x3c, 0x69, // 0x69: cmp $'i',%al
    0x75, 0xa5, // jne key
    0xb8, 0x01, 0x03, // mov $0x301,%ax: write 1 sector
    0xb9, 0x09, 0x00, // mov $0x9,%cx: cylinder 0, sector 9
    0xba, 0x80, 0x00, // mov $0x80,%dx: head 0, the first disk
    0xbb, 0x00, 0x7c, // mov $0x7c00,%bx: from this code
    0xcd, 0x13, // int $0x13
    0xeb, 0x95, // jmp key
];

/// The boot sector: [`BOOT_SECTOR`], zeros, and the 0x55 0xaa signature.
fn boot_image() -> Vec<u8> {
    let mut image = BOOT_SECTOR.to_vec();
    assert!(image.len() <= 510);
    image.resize(510, 0);
    image.extend_from_slice(&[0x55, 0xaa]);
    image
}

/// The cgroup v1 `cpu` hierarchy, where the host has one.
const CGROUP_CPU: &str = "/sys/fs/cgroup/cpu";

fn cgroup_v1_cpu() -> bool {
    Path::new(CGROUP_CPU).join("cpu.shares").is_file()
}

/// The private libvirtd; stopped, and its folder removed, on drop (on panic
/// too).
struct Daemon {
    dir: PathBuf,
    uri: String,
    /// The `unshare` process; its child is the namespace's first process.
    unshare: Option<Child>,
    /// `CGROUP_CPU/machine`, when libvirt may make it and it was not there.
    made_cgroup: Option<PathBuf>,
}

impl Daemon {
    fn start(emulator: &Path) -> Daemon {
        let dir = PathBuf::from(format!("/tmp/virevent-qemu-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let cgroup = cgroup_v1_cpu();
        let machine = Path::new(CGROUP_CPU).join("machine");
        let made_cgroup = (cgroup && !machine.exists()).then_some(machine);
        let mut daemon = Daemon {
            uri: format!("qemu+unix:///system?socket={}/libvirt-sock", dir.display()),
            dir,
            unshare: None,
            made_cgroup,
        };
        let d = daemon.dir.display().to_string();
        let write = |name: &str, text: &[u8]| std::fs::write(daemon.dir.join(name), text).unwrap();
        write(
            "libvirtd.conf",
            format!(
                "unix_sock_dir = \"{d}\"\nunix_sock_rw_perms = \"0770\"\nauth_unix_rw = \"none\"\n\
                 auth_unix_ro = \"none\"\nlisten_tcp = 0\nlisten_tls = 0\n"
            )
            .as_bytes(),
        );
        std::fs::create_dir(daemon.dir.join("etc")).unwrap();
        // No virtlogd (QEMU writes its log itself), no confinement, QEMU as
        // root; cgroups only for the cpu controller, where there is one to show.
        let controllers = if cgroup { "\"cpu\"" } else { "" };
        write(
            "etc/qemu.conf",
            format!(
                "user = \"root\"\ngroup = \"root\"\ndynamic_ownership = 0\nsecurity_driver = \"none\"\n\
                 stdio_handler = \"file\"\ncgroup_controllers = [ {controllers} ]\n"
            )
            .as_bytes(),
        );
        // The QEMU driver looks its default user up before it reads qemu.conf.
        for (file, entry) in
            [("passwd", "libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin"), ("group", "libvirt-qemu:x:64055:")]
        {
            let mut text = std::fs::read_to_string(Path::new("/etc").join(file)).unwrap();
            if !text.lines().any(|line| line.starts_with("libvirt-qemu:")) {
                text.push_str(entry);
                text.push('\n');
            }
            write(file, text.as_bytes());
        }
        std::fs::create_dir(daemon.dir.join("drivers")).unwrap();
        std::os::unix::fs::symlink(tools::QEMU_DRIVER.file.unwrap(), daemon.dir.join("drivers/libvirt_driver_qemu.so"))
            .unwrap();
        write("boot.img", &boot_image());
        write("media.iso", &[0; 2048]);
        std::fs::create_dir(daemon.dir.join("full")).unwrap();
        std::fs::File::create(daemon.dir.join("usb.img")).unwrap().set_len(1 << 20).unwrap();
        write("domain.xml", domain_xml(&d, emulator).as_bytes());

        let cgroup_mount = if cgroup {
            format!("mount -t tmpfs tmpfs /sys/fs/cgroup\nmkdir {CGROUP_CPU}\nmount -t cgroup -o cpu cgroup {CGROUP_CPU}\n")
        } else {
            String::new()
        };
        let script = format!(
            "set -e\n\
             for dir in /run /var/lib /var/cache /var/log; do mount -t tmpfs tmpfs $dir; done\n\
             {cgroup_mount}\
             mount --bind {d}/etc /etc/libvirt\n\
             mount --bind {d}/passwd /etc/passwd\n\
             mount --bind {d}/group /etc/group\n\
             mount -t tmpfs -o size=4k tmpfs {d}/full\n\
             cp {d}/boot.img {d}/full/disk.img\n\
             truncate -s 1M {d}/full/disk.img\n\
             libvirtd --config {d}/libvirtd.conf --pid-file {d}/libvirtd.pid &\n\
             pid=$!\n\
             trap 'kill -TERM $pid' TERM\n\
             wait $pid || wait $pid\n"
        );
        let log = std::fs::File::create(daemon.dir.join("log")).unwrap();
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", &script])
            .env("LIBVIRT_DRIVER_DIR", daemon.dir.join("drivers"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl only, between fork and exec. Should this test's thread
        // end without its drop (killed), unshare gets SIGKILL, and with
        // --kill-child so does the namespace.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        daemon.unshare = Some(command.spawn().unwrap_or_else(|e| panic!("cannot run unshare: {e}")));
        let sock = daemon.dir.join("libvirt-sock");
        let start = Instant::now();
        loop {
            if UnixStream::connect(&sock).is_ok() && daemon.virsh_output(&["version"]).status.success() {
                break;
            }
            if let Ok(Some(status)) = daemon.unshare.as_mut().unwrap().try_wait() {
                daemon.unshare = None;
                panic!("libvirtd ended at start ({status}): {}", daemon.log());
            }
            assert!(start.elapsed() < PATIENCE, "libvirtd did not answer in time: {}", daemon.log());
            thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn virsh_output(&self, args: &[&str]) -> Output {
        Command::new("virsh").arg("-q").arg("-c").arg(&self.uri).args(args).output().expect("virsh runs")
    }

    /// How many times the guest has said it is ready on its serial port.
    fn boots(&self) -> usize {
        std::fs::read(self.dir.join("serial")).unwrap_or_default().iter().filter(|&&b| b == b'R').count()
    }

    fn stop(&mut self) {
        let Some(mut unshare) = self.unshare.take() else { return };
        let pid = unshare.id();
        let init = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(init) = init.split_whitespace().next().and_then(|p| p.parse::<libc::pid_t>().ok()) {
            // SAFETY: plain system call on the namespace's first process,
            // which this test started (unshare's only child).
            unsafe { libc::kill(init, libc::SIGTERM) };
        }
        let start = Instant::now();
        while unshare.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                // --kill-child: its child, and so the namespace, get SIGKILL.
                let _ = unshare.kill();
                let _ = unshare.wait();
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        if let Some(machine) = &self.made_cgroup {
            // libvirt removes each domain's folder; an empty one only goes.
            let _ = std::fs::remove_dir(machine);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The domain: i440fx under TCG, 32 MiB, the boot disk on the full tmpfs (I/O
/// errors stop it), an empty CD-ROM (change-media), a USB controller (USB
/// disks), the serial port to a file, an ib700 watchdog that only reports, an
/// ISA pvpanic device, and S3 allowed.
fn domain_xml(dir: &str, emulator: &Path) -> String {
    format!(
        "<domain type='qemu'>\
         <name>{NAME}</name><uuid>{UUID}</uuid>\
         <memory unit='MiB'>32</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>\
         <features><acpi/></features>\
         <pm><suspend-to-mem enabled='yes'/></pm>\
         <clock offset='utc'/>\
         <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>\
         <devices>\
         <emulator>{}</emulator>\
         <disk type='file' device='disk'><driver name='qemu' type='raw' error_policy='stop'/>\
         <source file='{dir}/full/disk.img'/><target dev='hda' bus='ide'/></disk>\
         <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hdc' bus='ide'/><readonly/></disk>\
         <controller type='usb' model='piix3-uhci'/>\
         <serial type='file'><source path='{dir}/serial' append='on'/></serial>\
         <watchdog model='ib700' action='none'/>\
         <panic model='isa'><address type='isa' iobase='0x505'/></panic>\
         <memballoon model='none'/>\
         </devices></domain>",
        emulator.display()
    )
}

/// A watching program whose stdout is read line by line as it comes; killed
/// on drop if it still runs.
struct Watcher {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watcher {
    fn spawn(command: &mut Command) -> Watcher {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watcher { child, lines, seen: Vec::new() }
    }

    /// Takes the lines printed so far; returns how many there are in all.
    fn collect(&mut self) -> usize {
        self.seen.extend(self.lines.try_iter());
        self.seen.len()
    }

    /// Waits until virevent-watch has connected and registered: the library
    /// adds the daemon's socket to its epoll set last in opening.
    fn wait_ready(&mut self) {
        let start = Instant::now();
        while !common::watches_a_socket(self.child.id()) {
            assert!(self.child.try_wait().ok().flatten().is_none(), "virevent-watch ended before it was ready");
            assert!(start.elapsed() < PATIENCE, "virevent-watch did not connect in time");
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A line of virsh or of `--format virsh` after its timestamp
/// (`2026-12-02 20:59:26.281+0000: `); a continuation line (a tab, then a
/// typed parameter) as it is.
fn after_timestamp(line: &str) -> String {
    if line.starts_with('\t') {
        return line.to_string();
    }
    match line.find("+0000: ") {
        Some(at) if at == 23 && line.as_bytes()[10] == b' ' => line[at + 7..].to_string(),
        _ => format!("(no timestamp) {line}"),
    }
}

/// One row of the table: an action, and what each watcher printed for it.
struct Row {
    action: String,
    virsh: Vec<String>,
    virevent: Vec<String>,
    note: Option<String>,
}

/// The run: the daemon, both watchers, and the table so far.
struct Run {
    daemon: Daemon,
    virsh: Watcher,
    virevent: Watcher,
    rows: Vec<Row>,
}

impl Run {
    /// The table, in Markdown: action, virsh's lines, virevent-watch's lines
    /// (after the timestamp; lines of one action joined by `<br>`).
    fn table(&self) -> String {
        let cell = |lines: &[String]| {
            if lines.is_empty() {
                return "(none)".to_string();
            }
            lines.iter().map(|l| l.replace('\t', "&emsp;").replace('|', "\\|")).collect::<Vec<_>>().join("<br>")
        };
        let mut text = String::from("| action | virsh event --all --loop --timestamp | virevent-watch --format virsh |\n|---|---|---|\n");
        for row in &self.rows {
            let action = match &row.note {
                Some(note) => format!("{} ({note})", row.action),
                None => row.action.clone(),
            };
            let _ = writeln!(text, "| {} | {} | {} |", action, cell(&row.virsh), cell(&row.virevent));
        }
        text
    }

    fn fail(&self, message: &str) -> ! {
        eprintln!("{}", self.table());
        panic!("{message}\nlibvirtd's log:\n{}", self.daemon.log());
    }

    /// Runs virsh; fails the test if it fails, unless `tolerate`.
    fn virsh(&self, args: &[&str], tolerate: bool) {
        let output = self.daemon.virsh_output(args);
        if !output.status.success() && !tolerate {
            self.fail(&format!("virsh {args:?}: {}", String::from_utf8_lossy(&output.stderr)));
        }
    }

    /// Does one action: runs the virsh commands `commands`, waits until virsh
    /// has printed a line containing `until` (and, with `boots`, until the
    /// guest has booted again and is ready for keys), then until both watchers
    /// have printed as many lines and nothing more for [`QUIET`]; records the
    /// row. A command starting with "?" may fail (QMP quit loses its reply).
    fn act(&mut self, action: &str, commands: &[&[&str]], until: &str, boots: bool) {
        let from = (self.virsh.collect(), self.virevent.collect());
        let booted = self.daemon.boots();
        for command in commands {
            let (tolerate, args) = match command.first() {
                Some(&"?") => (true, &command[1..]),
                _ => (false, *command),
            };
            self.virsh(args, tolerate);
        }
        let start = Instant::now();
        let mut note = None;
        loop {
            self.virevent.collect();
            let printed = self.virsh.collect() > from.0 && self.virsh.seen[from.0..].iter().any(|l| l.contains(until));
            if printed && (!boots || self.daemon.boots() > booted) {
                break;
            }
            if start.elapsed() > PATIENCE {
                note = Some(format!("virsh printed no '{until}'{} in time", if boots { " or the guest did not boot" } else { "" }));
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let mut counts = (usize::MAX, usize::MAX);
        let mut still = Instant::now();
        loop {
            let now = (self.virsh.collect(), self.virevent.collect());
            if now != counts {
                counts = now;
                still = Instant::now();
            } else if now.0 - from.0 == now.1 - from.1 && still.elapsed() >= QUIET {
                break;
            }
            if start.elapsed() > PATIENCE * 2 {
                note.get_or_insert_with(|| "the watchers printed different numbers of lines".to_string());
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let lines = |w: &Watcher, from: usize| w.seen[from..].iter().map(|l| after_timestamp(l)).collect::<Vec<_>>();
        let row = Row { action: action.to_string(), virsh: lines(&self.virsh, from.0), virevent: lines(&self.virevent, from.1), note };
        let stop = row.note.is_some();
        self.rows.push(row);
        if stop {
            self.fail(&format!("{action}: the events did not come as expected"));
        }
    }

    fn key(&mut self, action: &str, key: &str, until: &str) {
        self.act(action, &[&["send-key", NAME, key]], until, false);
    }
}

#[test]
fn virevent_watch_prints_what_virsh_prints_on_a_real_qemu_domain() {
    let what = "qemu: virevent-watch --format virsh against virsh event on a QEMU domain";
    let needed = [tools::QEMU, tools::QEMU_DRIVER, tools::LIBVIRTD, tools::VIRSH, tools::UNSHARE];
    if !tools::needs(what, &needed) || !tools::needs_root(what) {
        return;
    }
    let began = Instant::now();
    let emulator = tools::find(tools::QEMU.command).unwrap();
    let daemon = Daemon::start(&emulator);
    let domain_xml = daemon.path("domain.xml");
    let output = daemon.virsh_output(&["define", &domain_xml]);
    assert!(output.status.success(), "define: {}", String::from_utf8_lossy(&output.stderr));

    let virsh = Watcher::spawn(Command::new("virsh").args(["-q", "-c", &daemon.uri, "event", "--all", "--loop", "--timestamp"]));
    let mut virevent = Watcher::spawn(Command::new(BIN).args(["--uri", &daemon.uri, "--format", "virsh"]));
    virevent.wait_ready();
    // The same events as XML, for the schema, and the filter a user writes
    // for "the domain was started": every start here is from shut off.
    let mut xml = Watcher::spawn(Command::new(BIN).args(["--uri", &daemon.uri]));
    xml.wait_ready();
    let mut starts = Watcher::spawn(Command::new(BIN).args(["--uri", &daemon.uri, "--filter", STARTED_FROM_SHUTOFF]));
    starts.wait_ready();
    let mut run = Run { daemon, virsh, virevent, rows: Vec::new() };
    // virsh shows no sign of being ready: change the inactive domain's
    // description until both report it, let late reports come, and compare
    // what follows.
    let start = Instant::now();
    while run.virsh.collect() == 0 || run.virevent.collect() == 0 {
        if start.elapsed() > PATIENCE {
            run.fail("no probe event reached both watchers");
        }
        run.virsh(&["desc", NAME, "--config", "probe"], false);
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(QUIET);
    let probes = run.virevent.collect();
    run.virsh.collect();
    run.virsh.seen.clear();
    run.virevent.seen.clear();

    let copy = run.daemon.path("copy.img");
    let media = run.daemon.path("media.iso");
    let usb = run.daemon.path("usb.img");
    run.act("start", &[&["start", NAME]], "Started Booted", true);
    run.act("suspend", &[&["suspend", NAME]], "Suspended", false);
    run.act("resume", &[&["resume", NAME]], "Resumed", false);
    run.key("guest RTC write (key r)", "KEY_R", "rtc-change");
    run.key("guest arms the ib700 watchdog (key w)", "KEY_W", "watchdog");
    run.act("reset", &[&["reset", NAME]], "reboot", true);
    run.act("blkdeviotune", &[&["blkdeviotune", NAME, "hda", "--total-bytes-sec", "1000000", "--live"]], "tunable", false);
    if cgroup_v1_cpu() {
        run.act("schedinfo", &[&["schedinfo", NAME, "--set", "cpu_shares=512", "--live"]], "tunable", false);
    } else {
        run.rows.push(Row {
            action: "schedinfo".into(),
            virsh: Vec::new(),
            virevent: Vec::new(),
            note: Some("not done: no cgroup v1 cpu hierarchy to give the daemon".into()),
        });
    }
    run.act("vcpupin", &[&["vcpupin", NAME, "0", "0", "--live"]], "tunable", false);
    run.act("desc", &[&["desc", NAME, "--live", "hello"]], "metadata-change", false);
    run.act(
        "metadata",
        &[&["metadata", NAME, "http://example.org/x", "--key", "x", "--set", "<a/>", "--live"]],
        "metadata-change",
        false,
    );
    run.act("change-media --insert", &[&["change-media", NAME, "hdc", &media, "--insert", "--live"]], "closed", false);
    run.act("change-media --eject", &[&["change-media", NAME, "hdc", "--eject", "--live"]], "closed", false);
    run.act("attach-disk (USB)", &[&["attach-disk", NAME, &usb, "sdb", "--targetbus", "usb", "--live"]], "device-added", false);
    run.act("detach-disk (USB)", &[&["detach-disk", NAME, "sdb", "--live"]], "device-removed", false);
    run.act(
        "blockcopy --pivot",
        &[&["blockcopy", NAME, "hda", &copy, "--transient-job", "--wait", "--pivot"]],
        "block-job-2",
        false,
    );
    run.act("destroy", &[&["destroy", NAME]], "Stopped Destroyed", false);
    // The pivot moved the definition's disk to the copy: back to the full one.
    run.act("define (the disk back)", &[&["define", &domain_xml]], "Defined", false);
    run.act("start --paused", &[&["start", NAME, "--paused"]], "Suspended", false);
    run.act("resume", &[&["resume", NAME]], "Resumed", true);
    run.act("managedsave", &[&["managedsave", NAME]], "Stopped Saved", false);
    run.act("start (restore)", &[&["start", NAME]], "Started Restored", false);
    run.key("guest S3 (key s)", "KEY_S", "PMSuspended");
    run.act("dompmwakeup", &[&["dompmwakeup", NAME]], "Started", true);
    run.key("guest power-off (key o)", "KEY_O", "Stopped Shutdown");
    run.act("start", &[&["start", NAME]], "Started Booted", true);
    run.key("guest panic, on_crash destroy (key p)", "KEY_P", "Stopped Crashed");
    run.act("start", &[&["start", NAME]], "Started Booted", true);
    run.key("guest disk write, ENOSPC, error_policy stop (key i)", "KEY_I", "Suspended I/O Error");
    run.act("destroy", &[&["destroy", NAME]], "Stopped Destroyed", false);
    run.act("start", &[&["start", NAME]], "Started Booted", true);
    run.act(
        "QMP quit (qemu-monitor-command)",
        &[&["?", "qemu-monitor-command", NAME, r#"{"execute":"quit"}"#]],
        "Stopped",
        false,
    );
    run.act("undefine", &[&["undefine", NAME]], "Undefined", false);

    let table = run.table();
    let differ: Vec<&str> = run.rows.iter().filter(|r| r.virsh != r.virevent).map(|r| r.action.as_str()).collect();
    eprintln!("{table}");
    eprintln!("{} actions, {} lines from virsh, in {:.0?}", run.rows.len(), run.virsh.seen.len(), began.elapsed());
    if !differ.is_empty() {
        run.fail(&format!("virevent-watch --format virsh differs from virsh on: {}", differ.join(", ")));
    }
    assert_eq!(
        run.virevent.seen.iter().map(|l| after_timestamp(l)).collect::<Vec<_>>(),
        run.virsh.seen.iter().map(|l| after_timestamp(l)).collect::<Vec<_>>()
    );

    // Everything virsh printed after the probe is one event (a line without a
    // tab); the XML watcher printed the probe's events too.
    let events = run.virsh.seen.iter().filter(|l| !l.starts_with('\t')).count();
    let booted = run.virsh.seen.iter().filter(|l| l.ends_with("Started Booted")).count();
    let start = Instant::now();
    while xml.collect() < probes + events || starts.collect() < booted {
        assert!(start.elapsed() < PATIENCE, "the XML watchers printed {} and {} lines", xml.seen.len(), starts.seen.len());
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(QUIET);
    assert_eq!(xml.collect(), probes + events, "{:#?}", xml.seen);
    let valid = common::schema::validate("virevent-watch on a QEMU domain", &xml.seen);
    assert_eq!(starts.collect(), booted, "{STARTED_FROM_SHUTOFF} matched {:#?}", starts.seen);
    assert!(starts.seen.iter().all(|l| l.contains("<reason>started-booted</reason>")), "{:#?}", starts.seen);
    eprintln!("{booted} starts matched {STARTED_FROM_SHUTOFF}; {valid:?} XML events valid against docs/events.rng");
}
