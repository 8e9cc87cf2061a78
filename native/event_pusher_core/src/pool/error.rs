//! The errors every pool shares.

/// Why a pool could not start. Messages are for people and never hold secrets.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot start the reporter thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Spool(#[from] super::spool::OpenError),
}

/// Why the pool's queue refused a job; each backend's `SubmitError` has
/// these variants too (see [`submit_error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("overloaded")]
    Overloaded,
    #[error("closed")]
    Closed,
    /// The pool's disk spool is at its byte limit.
    #[error("spool_full")]
    SpoolFull,
}

/// Defines a backend's `SubmitError`: the queue's refusals plus the one
/// variant for input that backend cannot send. One enum per backend rather
/// than a shared one, so a caller's `match` lists only what its backend can
/// return.
macro_rules! submit_error {
    ($(#[$doc:meta])* $invalid:ident => $message:literal) => {
        /// Why `submit` (or `publish`) refused a job.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
        pub enum SubmitError {
            #[error("overloaded")]
            Overloaded,
            #[error("closed")]
            Closed,
            /// The pool's disk spool is at its byte limit.
            #[error("spool_full")]
            SpoolFull,
            $(#[$doc])*
            #[error($message)]
            $invalid,
        }

        impl From<$crate::pool::Refused> for SubmitError {
            fn from(refused: $crate::pool::Refused) -> Self {
                match refused {
                    $crate::pool::Refused::Overloaded => SubmitError::Overloaded,
                    $crate::pool::Refused::Closed => SubmitError::Closed,
                    $crate::pool::Refused::SpoolFull => SubmitError::SpoolFull,
                }
            }
        }
    };
}
pub(crate) use submit_error;
