//! What can go wrong in a scan session, apart from the session's code so
//! that the daemon's error mapping (`crate::error`) and the session can
//! both use it without depending on each other.

use std::time::Duration;

use proto::ErrorCode;

/// Findings answered for one file at most: a file made of copies of a
/// short value would otherwise make an answer larger than a frame.
pub const MAX_FINDINGS: usize = 100_000;

/// Why a scan session, or one file of it, failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("file exceeds vaultd's max_body ({max} bytes); not scanned")]
    TooLarge { max: usize },
    #[error("more than {MAX_FINDINGS} copies of stored values in one file; not reported")]
    TooManyFindings,
    #[error("file not sent within {}", humantime::format_duration(*limit))]
    Timeout { limit: Duration },
    #[error("the vault was locked during the scan, which was cut short: run `vaultctl unlock`")]
    LockedMeanwhile,
    #[error("expected a piece of the file or its end")]
    ExpectedChunk,
}

impl ScanError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ScanError::TooLarge { .. } | ScanError::TooManyFindings => ErrorCode::TooLarge,
            ScanError::LockedMeanwhile => ErrorCode::Locked,
            ScanError::Timeout { .. } | ScanError::ExpectedChunk => ErrorCode::BadRequest,
        }
    }
}
