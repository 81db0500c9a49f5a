//! A private nats-server with JetStream, on a free port of 127.0.0.1 with its
//! storage in a folder of its own: started by a test, stopped by its PID and
//! its folder removed on drop. It can be killed and started again on the same
//! port and storage, as an outage of the bus.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub struct Nats {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Nats {
    /// Starts one, or `None` (the SKIPPED line) without nats-server.
    pub fn start(what: &str) -> Option<Nats> {
        if !super::tools::needs(what, &[super::tools::NATS_SERVER]) {
            return None;
        }
        let dir = super::test_dir("nats");
        std::fs::create_dir_all(&dir).unwrap();
        let mut nats = Nats { dir, port: super::free_port(), child: None };
        nats.spawn();
        Some(nats)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::File::options().create(true).append(true).open(self.dir.join("log")).unwrap();
        let child = Command::new("nats-server")
            .args(["--jetstream", "--store_dir"])
            .arg(self.dir.join("js"))
            .args(["--addr", "127.0.0.1", "--port", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run nats-server: {e}"));
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.as_mut().unwrap().try_wait() {
                self.child = None;
                panic!("nats-server ended at start ({status}): {}", self.log());
            }
            assert!(start.elapsed() < Duration::from_secs(10), "nats-server did not listen in time");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts it again on the same port and storage, once it has ended.
    pub fn restart(&mut self) {
        if self.child.is_none() {
            self.spawn();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Sends `signal` and reaps it.
    pub fn kill(&mut self, signal: libc::c_int) {
        if let Some(mut child) = self.child.take() {
            super::end_child(&mut child, signal, Duration::from_secs(5));
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill(libc::SIGTERM);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
