//! The plan types of the steps that move tables to another database
//! (`replicate`, `verify_across`, `switchover`); their rules are in
//! [`super::databases`].

use serde::{Deserialize, Serialize};

/// `kind = "replicate"`: publication on the main database, the tables'
/// definitions and a subscription on `to`, initial copy; done when every
/// table is synchronised and streaming.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicateStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The database (a name from `databases`) the tables go to.
    pub to: String,
    /// The tables; `["*"]` for every table outside the system schemas.
    pub tables: Vec<String>,
}

impl ReplicateStep {
    /// Every table of the main database, rather than a list.
    pub fn all_tables(&self) -> bool {
        self.tables.iter().any(|t| t == "*")
    }

    /// The tables, for names and messages.
    pub fn describe_tables(&self) -> String {
        if self.all_tables() {
            "all tables".into()
        } else {
            self.tables.join(", ")
        }
    }
}

/// `kind = "verify_across"`: a table compared chunk by chunk with its copy
/// on another database while replication runs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyAcrossStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The other database (a name from `databases`).
    pub database: String,
    /// The table (the same name on both sides).
    pub table: String,
    /// Its unique, indexed key.
    pub key: String,
    /// Columns to compare (default: all of the main database's).
    pub columns: Option<Vec<String>>,
    /// Rows per chunk.
    pub chunk: Option<u64>,
}

/// `kind = "switchover"`: irreversible. Freezes writes to the replicated
/// tables on the main database, waits for the last write to apply, advances
/// the sequences, checks counts and detaches the replication.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The database a `replicate` step fed (a name from `databases`).
    pub database: String,
    /// Added to each sequence's value on the main database when it is set
    /// on the other (default 1000).
    pub sequence_margin: Option<i64>,
    /// How long to wait for open transactions that wrote to the tables, and
    /// for the last write to apply, before giving up (default `5m`).
    pub wait: Option<String>,
}
