//! The secret types every kind uses: passwords, tokens and private keys are held in `secrecy`'s boxes
//! from the moment they are read, so `Debug` output, log lines and errors cannot show them, and the
//! memory is zeroed when they are dropped. One definition here, so no kind reaches into another for it.

pub use secrecy::{ExposeSecret, SecretString};

/// Secret bytes (a private key's PEM); `Debug` prints `[REDACTED]`.
pub type SecretBytes = secrecy::SecretSlice<u8>;
