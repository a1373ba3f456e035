//! `opt_outs`: numbers that asked not to be messaged, per site.

use super::{Db, Tx, sql};
use anyhow::Result;
use std::collections::HashSet;

/// Records an opt-out (a second one for the same number and site keeps the first).
#[tracing::instrument(level = "debug", skip(tx, phone))]
pub async fn record(tx: &mut Tx, phone: &str, site_id: &str, source: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO opt_outs (phone, site_id, source, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (phone, site_id) DO NOTHING",
    )
    .bind(phone.to_string())
    .bind(site_id.to_string())
    .bind(source.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// (phone, site) pairs among these numbers that opted out.
#[tracing::instrument(level = "debug", skip_all, fields(n = phones.len()))]
pub async fn of_phones(db: &Db, phones: &[String]) -> Result<HashSet<(String, String)>> {
    let sql = "SELECT phone, site_id FROM opt_outs WHERE phone IN ({list})";
    sql::fetch_for_list(db, sql, None, phones).await
}
