//! Authenticating to the daemon, the first step of opening, as libvirt's
//! client does it: AUTH_LIST (which on its own authenticates root on a
//! polkit socket), then polkit or SASL as the daemon asks (or as the URI's
//! `auth=` wants). SASL runs through libsasl2 ([`crate::rpc::sasl`]): the
//! daemon's mechanism list (AUTH_SASL_INIT), then AUTH_SASL_START and as many
//! AUTH_SASL_STEPs as the mechanism takes, with credentials from `auth.conf`
//! and the program's callback; on plain TCP the negotiated strength must be
//! at least 56 bits, and the security layer then wraps every later packet
//! (the exchange is in [`super::sasl`]).

use std::path::PathBuf;

use super::protocol::{proc, AUTH_NONE, AUTH_POLKIT_TYPE, AUTH_SASL};
use super::Session;
use crate::credentials::Authenticator;
use crate::error::{Error, ErrorCode, Result};
use crate::hub::Hub;
use crate::rpc::xdr::Decoder;

/// What the program gives for authenticating (a build without SASL reads
/// only `wanted`).
#[cfg_attr(not(virevent_sasl), allow(dead_code))]
pub struct Login<'a> {
    /// The URI's `auth=`: `sasl`, `sasl.MECH` or `polkit` (any case).
    pub wanted: Option<String>,
    /// The host credentials are for: the URI's, or `localhost`.
    pub host: String,
    /// The URI's `authfile=`.
    pub auth_file: Option<PathBuf>,
    /// The program's callback, if any.
    pub program: Option<&'a mut dyn Authenticator>,
}

impl<'a> Login<'a> {
    /// What `target`'s URI says of authentication, with the program's callback.
    pub fn of(target: &super::uri::Target, program: Option<&'a mut dyn Authenticator>) -> Login<'a> {
        Login { wanted: target.auth.clone(), host: target.host.clone(), auth_file: target.auth_file.clone(), program }
    }
}

impl Session {
    /// AUTH_LIST, then what the daemon (or `login.wanted`) asks for.
    pub(super) fn authenticate(&mut self, hub: &Hub, login: &mut Login<'_>) -> Result<()> {
        let body = self.call(proc::AUTH_LIST, &[], hub)?;
        let kinds = Decoder::new(&body).array(20, Decoder::i32).map_err(|e| self.bad_reply("AUTH_LIST", e))?;
        let wanted = login.wanted.as_deref().map(str::to_ascii_lowercase);
        let kind = match wanted.as_deref() {
            Some(w) => {
                let want = if w == "sasl" || w.starts_with("sasl.") {
                    AUTH_SASL
                } else if w == "polkit" {
                    AUTH_POLKIT_TYPE
                } else {
                    return Err(Error::new(ErrorCode::AuthFailed, format!("unknown authentication type '{w}' in the URI's auth= (sasl, sasl.MECH and polkit are)")));
                };
                if !kinds.contains(&want) {
                    return Err(self.auth_failed(format!("requested authentication type '{w}' rejected")));
                }
                want
            }
            None if kinds.is_empty() || kinds.contains(&AUTH_NONE) => return Ok(()),
            None => kinds[0],
        };
        match kind {
            AUTH_POLKIT_TYPE => match self.call(proc::AUTH_POLKIT, &[], hub) {
                Ok(_) => Ok(()),
                Err(e) => Err(self.auth_failed(format!("polkit authentication failed: {}", e.message))),
            },
            AUTH_SASL => {
                // A mechanism's steps cannot be made twice: a reconnection waits from here.
                self.wait_for_replies();
                let mech = login.wanted.as_deref().and_then(|w| w.get(5..)).filter(|m| !m.is_empty()).map(str::to_string);
                self.sasl(hub, login, mech.as_deref())
            }
            _ => Err(self.auth_failed(format!("it offers only authentication types {kinds:?}, none of which virevent does"))),
        }
    }

    pub(super) fn auth_failed(&self, why: String) -> Error {
        Error::new(ErrorCode::AuthFailed, format!("the libvirt daemon at '{}' refused the connection: {why}", self.link.path()))
    }

    #[cfg(not(virevent_sasl))]
    fn sasl(&mut self, _hub: &Hub, _login: &mut Login<'_>, _mech: Option<&str>) -> Result<()> {
        Err(Error::new(
            ErrorCode::NoSupport,
            format!(
                "the libvirt daemon at '{}' requires SASL authentication, and this build of virevent was made \
                 without SASL (it needs libsasl2 at build time)",
                self.link.path()
            ),
        ))
    }
}
