//! The one place where SQL text is assembled at run time: only placeholder lists are generated
//! (`$2, $3, …` or `($2, $3), ($4, $5)`), never values. Every other statement in `store` is a
//! string literal.

use sqlx::any::AnyArguments;
use sqlx::query::{Query, QueryAs};
use sqlx::{Any, FromRow};
use sqlx::any::AnyRow;

/// Rows per multi-row statement. SQLite allows 32,766 parameters and PostgreSQL 65,535; 200
/// rows of up to 10 columns stay far below both (and below sqlx's per-statement cost growth).
pub const CHUNK: usize = 200;

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

/// A statement over a list of `n` values: `template` holds `{list}`.
pub fn with_list(template: &'static str, first: usize, n: usize) -> Query<'static, Any, AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(expand(template, "", first, n)))
}

/// A typed query over a list of `n` values: `template` holds `{list}`.
pub fn as_with_list<T>(template: &'static str, first: usize, n: usize) -> QueryAs<'static, Any, T, AnyArguments>
where
    T: for<'r> FromRow<'r, AnyRow>,
{
    sqlx::query_as(sqlx::AssertSqlSafe(expand(template, "", first, n)))
}

/// A multi-row statement: `template` holds `{rows}`, repeated `n` times as `row` (`?` marks).
pub fn with_rows(template: &'static str, row: &'static str, first: usize, n: usize) -> Query<'static, Any, AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(expand(template, row, first, n)))
}

/// A typed multi-row statement (`RETURNING …`).
pub fn as_with_rows<T>(template: &'static str, row: &'static str, first: usize, n: usize) -> QueryAs<'static, Any, T, AnyArguments>
where
    T: for<'r> FromRow<'r, AnyRow>,
{
    sqlx::query_as(sqlx::AssertSqlSafe(expand(template, row, first, n)))
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
