//! `events`: the ledger of every campaign transition (what happened, the state after it).

use super::{Tx, sql};
use crate::domain::types::CampaignState;
use anyhow::Result;

/// One ledger row.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub campaign_id: i64,
    pub kind: &'static str,
    pub state: CampaignState,
    /// A small JSON object (reply id, step, provider code…); never a body or a number.
    pub detail: String,
}

/// Appends ledger rows stamped `at`: one statement per chunk.
#[tracing::instrument(level = "debug", skip_all, fields(n = rows.len()))]
pub async fn append(tx: &mut Tx, at: i64, rows: &[NewEvent]) -> Result<()> {
    sql::execute_rows(
        tx,
        "INSERT INTO events (campaign_id, at, kind, state, detail) VALUES {rows}",
        "(?, $1, ?, ?, ?)",
        at,
        rows,
        |q, e| {
            q.bind(e.campaign_id)
                .bind(e.kind)
                .bind(e.state.as_str())
                .bind(e.detail.clone())
        },
    )
    .await
}
