//! libvirt's remote protocol as bytes, whatever carries them: the XDR codec,
//! the packet framing, the error body, and the link to a daemon (the socket,
//! its outbox, synchronous calls for opening and closing; TCP, TLS and ssh to
//! other hosts). What the packets
//! mean to an events client is the remote driver's (crate::driver::remote).

pub(crate) mod error;
pub(crate) mod keepalive;
pub(crate) mod link;
pub(crate) mod packet;
#[cfg(virevent_sasl)]
pub(crate) mod sasl;
pub(crate) mod socket;
pub(crate) mod ssh;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod xdr;
