//! libvirt's remote protocol, for receiving a daemon's domain events without a
//! thread: the XDR codec, the packet framing, the socket, the procedures and
//! event bodies, the events' XML, and which socket and name a URI means.

pub mod events;
pub mod link;
pub mod packet;
pub mod protocol;
pub mod uri;
pub mod xdr;
