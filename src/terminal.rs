//! Asking for credentials on the controlling terminal (`/dev/tty`), as
//! libvirt's default callback does: a prompt, and an answer read with echo,
//! or without it for passphrases (the terminal's echo restored after).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

use crate::credentials::{wipe, Authenticator, Credential, CredentialType, Secret};

/// The controlling terminal, open for reading and writing.
pub struct Terminal {
    tty: File,
}

impl Terminal {
    /// Opens `/dev/tty`; fails when the process has no controlling terminal.
    pub fn open() -> io::Result<Terminal> {
        let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
        Ok(Terminal { tty })
    }

    /// Shows `prompt` and reads one line (without its newline), with or
    /// without echo.
    pub fn ask(&mut self, prompt: &str, echo: bool) -> io::Result<Vec<u8>> {
        let fd = self.tty.as_raw_fd();
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        let quiet = !echo && unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
        // Echo goes off before the prompt shows, so that nothing typed in
        // answer to it is shown (or flushed by the change).
        if quiet {
            let mut silent = saved;
            silent.c_lflag &= !(libc::ECHO | libc::ECHONL);
            // SAFETY: a valid terminal and settings.
            unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &silent) };
        }
        let shown = self.tty.write_all(prompt.as_bytes()).and_then(|()| {
            if prompt.ends_with(' ') {
                Ok(())
            } else {
                self.tty.write_all(b" ")
            }
        });
        let line = shown.and_then(|()| self.read_line());
        if quiet {
            // SAFETY: as above: the saved settings back.
            unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &saved) };
            self.tty.write_all(b"\n")?;
        }
        line
    }

    /// Asks for a credential of type `kind` as libvirt's default callback
    /// does: without echo for passphrases and hidden prompts, with echo
    /// otherwise; an empty answer takes `default`, when there is one.
    pub fn answer(&mut self, kind: Option<CredentialType>, prompt: &str, default: Option<&[u8]>) -> io::Result<Vec<u8>> {
        let echo = !matches!(kind, Some(CredentialType::Passphrase | CredentialType::NoEchoPrompt));
        let answer = self.ask(prompt, echo)?;
        Ok(match default {
            Some(default) if answer.is_empty() => default.to_vec(),
            _ => answer,
        })
    }

    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.tty.read(&mut byte) {
                Ok(0) if line.is_empty() => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(0) => return Ok(line),
                Ok(_) if byte[0] == b'\n' => return Ok(line),
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    wipe(&mut line);
                    return Err(e);
                }
            }
        }
    }
}

/// An [`Authenticator`] that asks on the terminal, as libvirt's default
/// callback does: names, realms and prompts with echo, passphrases and hidden
/// prompts without (an empty answer takes the mechanism's default).
pub struct TerminalAuth;

/// libvirt's default callback's types (virConnectAuthPtrDefault's too): no
/// USERNAME, which is then the authentication name; EXTERNAL is never asked.
pub const ASKED: [CredentialType; 6] = [
    CredentialType::Authname,
    CredentialType::EchoPrompt,
    CredentialType::Realm,
    CredentialType::Passphrase,
    CredentialType::NoEchoPrompt,
    CredentialType::External,
];

impl Authenticator for TerminalAuth {
    fn types(&self) -> &[CredentialType] {
        &ASKED
    }

    fn ask(&mut self, credentials: &mut [Credential]) -> bool {
        let Ok(mut tty) = Terminal::open() else { return false };
        for c in credentials.iter_mut() {
            match tty.answer(Some(c.kind), &c.prompt, c.default.as_deref().map(str::as_bytes)) {
                Ok(answer) => c.result = Some(Secret::new(answer)),
                Err(_) => return false,
            }
        }
        true
    }
}
