//! The SASL exchange of authentication (see [`super::auth`]), through
//! libsasl2 ([`crate::rpc::sasl`]).

use super::auth::Login;
use super::protocol::proc;
use super::Session;
use crate::credentials::CredentialType;
use crate::error::{Error, ErrorCode, Result};
use crate::hub::Hub;
use crate::rpc::sasl::{Channel, Outcome, Session as Sasl};
use crate::rpc::xdr::{Decoder, Encoder};

/// REMOTE_AUTH_SASL_DATA_MAX of `remote_protocol.x`.
const SASL_DATA_MAX: usize = 65536;

/// How many AUTH_SASL_STEPs a daemon may ask for: real mechanisms take one
/// or two, and a daemon that never says `complete` must not keep the open
/// going until its deadline.
const MAX_STEPS: usize = 16;

/// The least strength of a security layer on plain TCP (DES, as libvirt says).
const MIN_PLAIN_SSF: u32 = 56;

impl Session {
    /// The SASL exchange, with `mech` if the URI wants one.
    pub(super) fn sasl(&mut self, hub: &Hub, login: &mut Login<'_>, mech: Option<&str>) -> Result<()> {
        let (channel, local, remote) = self.link.sasl_peer();
        // The name and password can come from auth.conf too; the rest only
        // from a program that takes them. Unasked, the identity to act as is
        // the authentication name, as in libvirt (whose default callback
        // takes no USERNAME).
        let mut answerable = vec![CredentialType::Authname, CredentialType::Passphrase];
        if let Some(program) = &login.program {
            for kind in program.types() {
                if !answerable.contains(kind) {
                    answerable.push(*kind);
                }
            }
        }
        let mut sasl = Sasl::new(&login.host, local.as_deref(), remote.as_deref(), &channel, &answerable)
            .map_err(|why| self.auth_failed(why))?;

        let body = self.call(proc::AUTH_SASL_INIT, &[], hub)?;
        let offered = Decoder::new(&body).string().map_err(|e| self.bad_reply("AUTH_SASL_INIT", e))?;
        let mechlist = match mech {
            Some(mech) if !offered.split([',', ' ']).any(|m| m.eq_ignore_ascii_case(mech)) => {
                let why = if matches!(channel, Channel::Plain) {
                    ", and on plain TCP it offers only mechanisms with a security layer of at least 56 bits"
                } else {
                    ""
                };
                return Err(self.auth_failed(format!("SASL mechanism '{mech}' is not offered (it offers {offered}{why})")));
            }
            Some(mech) => mech.to_string(),
            None => offered.clone(),
        };
        let mut gathered = Gathered::default();
        // libsasl2 names the mechanism on the call that picks it: a start
        // repeated after answering questions names none.
        let mut chosen = None;
        let mut out = loop {
            let (mech, outcome) = sasl.start(&mechlist).map_err(|why| self.sasl_failed(why, &offered))?;
            chosen = mech.or(chosen);
            match outcome {
                Outcome::Ask(questions) => sasl.answer(self.credentials(&questions, login, &mut gathered)?),
                Outcome::Send { data, complete } => break (data, complete),
            }
        };
        let chosen = chosen.ok_or_else(|| self.auth_failed("libsasl2 picked no SASL mechanism".into()))?;
        let mut e = Encoder::new();
        e.string(&chosen).i32(out.0.is_none() as i32).chars(out.0.as_deref().unwrap_or_default());
        let mut reply = self.sasl_call(proc::AUTH_SASL_START, e, hub, &gathered)?;
        // libvirt's loop: the client steps at least once unless both sides
        // are complete, and each step's output goes to the daemon.
        for steps in 0.. {
            if reply.complete && out.1 {
                break;
            }
            if steps == MAX_STEPS {
                return Err(self.auth_failed(format!("the SASL exchange did not complete in {MAX_STEPS} steps")));
            }
            out = loop {
                match sasl.step(reply.data.as_deref()).map_err(|why| self.sasl_failed(why, &offered))? {
                    Outcome::Ask(questions) => sasl.answer(self.credentials(&questions, login, &mut gathered)?),
                    Outcome::Send { data, complete } => break (data, complete),
                }
            };
            if reply.complete && out.1 {
                break;
            }
            let mut e = Encoder::new();
            e.i32(out.0.is_none() as i32).chars(out.0.as_deref().unwrap_or_default());
            reply = self.sasl_call(proc::AUTH_SASL_STEP, e, hub, &gathered)?;
        }
        let ssf = sasl.ssf().map_err(|why| self.auth_failed(why))?;
        if matches!(channel, Channel::Plain) {
            if ssf < MIN_PLAIN_SSF {
                return Err(self.auth_failed(format!(
                    "the SASL mechanism {chosen} negotiated a security layer of {ssf} bits, and plain TCP needs at \
                     least {MIN_PLAIN_SSF} (use a mechanism with a security layer, such as DIGEST-MD5 or GSSAPI, or TLS)"
                )));
            }
            let max = sasl.max_output().map_err(|why| self.auth_failed(why))?;
            self.link.wrap_with(sasl, max);
        }
        Ok(())
    }

    /// A START or STEP call with `body` (wiped after), and its reply.
    /// A refusal names the authentication name given, never the password:
    /// the daemon says the same for a wrong password and an unknown user.
    fn sasl_call(&mut self, procedure: i32, body: Encoder, hub: &Hub, gathered: &Gathered) -> Result<SaslReply> {
        let body = body.into_secret();
        let reply = self.call(procedure, body.as_bytes(), hub);
        self.link.wipe_output();
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) if e.code == ErrorCode::AuthFailed => {
                let who = gathered.authname.as_ref().map_or(String::new(), |name| format!(" (the credentials given for '{name}')"));
                return Err(self.auth_failed(format!("{}{who}", e.message)));
            }
            Err(e) => return Err(e),
        };
        let mut d = Decoder::new(&reply);
        let decoded = (|| Ok::<_, crate::rpc::xdr::DecodeError>((d.i32()?, d.i32()?, d.chars(SASL_DATA_MAX)?)))();
        let (complete, nil, data) = decoded.map_err(|e| self.bad_reply("SASL", e))?;
        Ok(SaslReply { complete: complete != 0, data: (nil == 0).then_some(data) })
    }

    /// Answers to `questions`, reading auth.conf the first time it is needed.
    fn credentials(
        &self,
        questions: &[crate::credentials::Question],
        login: &mut Login<'_>,
        gathered: &mut Gathered,
    ) -> Result<Vec<crate::credentials::Secret>> {
        use crate::auth_conf::AuthConf;
        if gathered.conf.is_none() {
            let path = AuthConf::locate(login.auth_file.as_deref());
            gathered.conf = Some(path.map(|p| AuthConf::read(&p)).transpose()?);
        }
        let conf = gathered.conf.as_ref().and_then(Option::as_ref);
        let answers = crate::credentials::answer(questions, &login.host, conf, login.program.as_deref_mut())?;
        if let Some(at) = questions.iter().position(|q| q.kind == CredentialType::Authname) {
            gathered.authname = Some(String::from_utf8_lossy(answers[at].as_bytes()).into_owned());
        }
        Ok(answers)
    }

    /// What a failing libsasl2 call reports: the daemon's offer with its words.
    fn sasl_failed(&self, why: String, offered: &str) -> Error {
        self.auth_failed(format!("SASL authentication failed ({why}; the daemon offers {offered})"))
    }
}

/// What the exchange has gathered: auth.conf, once read (`Some(None)`: there
/// is none), and the authentication name given, for messages.
#[derive(Default)]
struct Gathered {
    conf: Option<Option<crate::auth_conf::AuthConf>>,
    authname: Option<String>,
}

/// The daemon's answer to AUTH_SASL_START or AUTH_SASL_STEP.
struct SaslReply {
    complete: bool,
    /// Its data (`None`: no data, which SASL tells from empty).
    data: Option<Vec<u8>>,
}
