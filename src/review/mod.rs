//! Human review: stratified sampling of results, self-contained HTML review sheets, the
//! grades files they export, agreement statistics, and a loopback server for sheets.
//!
//! - [`sample`]: strata and the seeded reservoir sampler.
//! - [`sheet`]: the items of a sheet, the HMAC over them, and the page.
//! - [`grades`]: reading and checking a grades file.
//! - [`stats`]: human against automatic verdicts; human quality over time.
//! - [`serve`]: `review serve`, an axum server on 127.0.0.1 with an access token.
//! - [`traffic`]: the strata of production traffic; reviewers against users' votes.
//!
//! Nothing here touches the store: `app::review` reads and writes it.

pub mod grades;
pub mod sample;
pub mod serve;
pub mod sheet;
pub mod stats;
pub mod traffic;

/// Failures of the review stage. Messages read after "failed to ...".
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// A grades file that cannot be read as one.
    #[error("read the grades in {file}: {message}")]
    Grades { file: String, message: String },
    /// A grades file that does not belong to its sheet.
    #[error("import the grades of sheet {sheet_id}: {message}")]
    Tampered { sheet_id: String, message: String },
    #[error("write the review sheet {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("serve review sheets: {0}")]
    Serve(String),
}
