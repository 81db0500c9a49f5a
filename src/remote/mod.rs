//! libvirt's remote protocol, for receiving a daemon's domain events without a
//! thread (issue 5, in progress): the XDR codec and the packet framing so far.

pub mod packet;
pub mod xdr;
