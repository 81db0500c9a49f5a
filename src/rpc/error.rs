//! The body of an error reply (`remote_error`): what the daemon said went
//! wrong.

use super::xdr::{DecodeError, Decoder};

/// A `remote_error` body: what the daemon said went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteError {
    /// libvirt's `virErrorNumber`.
    pub code: i32,
    /// The text to show.
    pub message: String,
}

impl RemoteError {
    /// Decodes a `remote_error` body.
    pub fn decode(body: &[u8]) -> Result<RemoteError, DecodeError> {
        let mut d = Decoder::new(body);
        let code = d.i32()?;
        let _domain = d.i32()?;
        let message = d.optional(Decoder::string)?;
        Ok(RemoteError { code, message: message.unwrap_or_else(|| format!("error {code} with no message")) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::packet::tests::hex;

    #[test]
    fn decodes_the_error_of_the_reference() {
        // CONNECT_GET_LIB_VERSION before CONNECT_OPEN (section 3), body only.
        let body = hex(concat!(
            "00000001 00000007 00000001 0000002e",
            "696e7465726e616c206572726f723a2068797065727669736f7220636f6e6e656374696f6e206e6f74206f70656e 0000",
            "00000002 00000000 00000001 00000012 696e7465726e616c206572726f723a202573 0000",
            "00000001 0000001e 68797065727669736f7220636f6e6e656374696f6e206e6f74206f70656e 0000",
            "00000000 ffffffff ffffffff 00000000"
        ));
        let error = RemoteError::decode(&body).unwrap();
        assert_eq!(error, RemoteError { code: 1, message: "internal error: hypervisor connection not open".into() });
    }
}
