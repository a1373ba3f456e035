//! The one place where SQL text is assembled at run time: only placeholder lists are generated
//! (`$2, $3, …` or `($2, $3), ($4, $5)`), never values. Every other statement in `store` is a
//! string literal.

use super::{Db, Tx};
use anyhow::Result;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::{Query, QueryAs};
use sqlx::{Any, Encode, FromRow, Type};

/// Parameters per multi-row statement. SQLite allows 32,766 and PostgreSQL 65,535, but binding
/// costs grow faster than linearly with the count on SQLite (parameter names are looked up one
/// by one), while each statement is a round trip on PostgreSQL: about 2,000 keeps both near
/// their best (measured with `rappel bench`, 100,000 appointments).
const PARAMS_PER_STATEMENT: usize = 2_000;
/// At most this many rows (or list values) per statement.
pub const MAX_ROWS: usize = 500;

/// Rows per statement for rows of `params` parameters each.
pub fn rows_per_statement(params: usize) -> usize {
    (PARAMS_PER_STATEMENT / params.max(1)).clamp(1, MAX_ROWS)
}

/// Rows per statement for a row shape (`?` marks).
fn chunk_of(row: &str) -> usize {
    rows_per_statement(row.matches('?').count())
}

/// Expands `template`: `{list}` becomes `$first, …` (`n` placeholders) and `{rows}` becomes `n`
/// copies of `row`, each `?` in it numbered on from `first`.
fn expand(template: &'static str, row: &'static str, first: usize, n: usize) -> String {
    let mut next = first;
    let mut number = |shape: &str| {
        let mut out = String::with_capacity(shape.len() + 8);
        for ch in shape.chars() {
            if ch == '?' {
                out.push('$');
                out.push_str(&next.to_string());
                next += 1;
            } else {
                out.push(ch);
            }
        }
        out
    };
    if template.contains("{list}") {
        let list = (0..n).map(|_| number("?")).collect::<Vec<_>>().join(", ");
        template.replace("{list}", &list)
    } else {
        let rows = (0..n).map(|_| number(row)).collect::<Vec<_>>().join(", ");
        template.replace("{rows}", &rows)
    }
}

/// A multi-row statement: `template` holds `{rows}`, repeated `n` times as `row` (`?` marks),
/// or `{list}`, `n` placeholders (`row` unused).
pub fn with_rows(
    template: &'static str,
    row: &'static str,
    first: usize,
    n: usize,
) -> Query<'static, Any, AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(expand(template, row, first, n)))
}

/// A typed statement over `{rows}` or `{list}` (see [`with_rows`]).
pub fn as_with_rows<T>(
    template: &'static str,
    row: &'static str,
    first: usize,
    n: usize,
) -> QueryAs<'static, Any, T, AnyArguments>
where
    T: for<'r> FromRow<'r, AnyRow>,
{
    sqlx::query_as(sqlx::AssertSqlSafe(expand(template, row, first, n)))
}

/// A statement over a list of `n` values: `template` holds `{list}`.
pub fn with_list(
    template: &'static str,
    first: usize,
    n: usize,
) -> Query<'static, Any, AnyArguments> {
    with_rows(template, "", first, n)
}

/// A typed statement over a list of `n` values: `template` holds `{list}`.
pub fn as_with_list<T: for<'r> FromRow<'r, AnyRow>>(
    template: &'static str,
    first: usize,
    n: usize,
) -> QueryAs<'static, Any, T, AnyArguments> {
    as_with_rows(template, "", first, n)
}

/// Typed rows of a query over a list of values, at most 500 values per statement: `template`
/// holds `{list}`, numbered after the optional leading parameter `$1`.
pub async fn fetch_for_list<T, V, C>(
    db: &Db,
    template: &'static str,
    leading: Option<i64>,
    values: &[V],
) -> Result<C>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
    V: Clone + for<'q> Encode<'q, Any> + Type<Any> + Send + 'static,
    C: FromIterator<T>,
{
    let first = if leading.is_some() { 2 } else { 1 };
    let mut out = Vec::new();
    for chunk in values.chunks(MAX_ROWS) {
        let mut q = as_with_rows::<T>(template, "", first, chunk.len());
        if let Some(v) = leading {
            q = q.bind(v);
        }
        for v in chunk {
            q = q.bind(v.clone());
        }
        out.extend(q.fetch_all(&db.pool).await?);
    }
    Ok(out.into_iter().collect())
}

/// Runs a multi-row statement over `items`, about 2,000 parameters per statement: `template` holds
/// `{rows}`, each row shaped `row` (`?` marks) and numbered after `$1`, bound to `leading`;
/// `bind` binds one item's values in the order of its marks.
pub async fn execute_rows<I>(
    tx: &mut Tx,
    template: &'static str,
    row: &'static str,
    leading: i64,
    items: &[I],
    bind: impl Fn(Query<'static, Any, AnyArguments>, &I) -> Query<'static, Any, AnyArguments>,
) -> Result<()> {
    for chunk in items.chunks(chunk_of(row)) {
        let q = with_rows(template, row, 2, chunk.len()).bind(leading);
        chunk.iter().fold(q, &bind).execute(&mut **tx).await?;
    }
    Ok(())
}

/// The same as [`execute_rows`] for a statement that returns typed rows (`RETURNING …`).
pub async fn fetch_rows<T, I>(
    tx: &mut Tx,
    template: &'static str,
    row: &'static str,
    leading: i64,
    items: &[I],
    bind: impl Fn(QueryAs<'static, Any, T, AnyArguments>, &I) -> QueryAs<'static, Any, T, AnyArguments>,
) -> Result<Vec<T>>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    let mut out = Vec::new();
    for chunk in items.chunks(chunk_of(row)) {
        let q = as_with_rows::<T>(template, row, 2, chunk.len()).bind(leading);
        out.extend(chunk.iter().fold(q, &bind).fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn a_list_is_numbered_from_its_first_placeholder() {
        assert_eq!(expand("x IN ({list})", "", 2, 3), "x IN ($2, $3, $4)");
    }

    #[test]
    fn rows_number_every_mark_in_order() {
        assert_eq!(
            expand("VALUES {rows}", "(?, 'a', ?, $1)", 2, 2),
            "VALUES ($2, 'a', $3, $1), ($4, 'a', $5, $1)"
        );
    }
}
