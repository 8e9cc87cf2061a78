//! A credential (AMQP password, SNS secret key, TLS key password) that must
//! never appear in logs, errors or stats.

use std::fmt;

/// A password, kept out of `Debug` output.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
