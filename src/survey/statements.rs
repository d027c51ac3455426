//! The two UPDATEs every e-survey answer runs, written out so that diesel keeps them prepared.
//!
//! diesel never caches the statements its UPDATE builder makes (it marks them unsafe to cache),
//! so the single writer thread parsed and planned both again for every answer. A query type
//! with a static id and fixed SQL is prepared once per connection and only re-bound after that.

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Nullable, Text, Timestamp};
use diesel::{QueryResult, RunQueryDsl};

/// Marks a token spent if it is neither spent nor expired; executes to the number of rows
/// changed (0 or 1).
#[derive(Debug, Clone, Copy)]
pub struct SpendToken<'a> {
    pub token_hash: &'a str,
    pub now: NaiveDateTime,
}

impl QueryId for SpendToken<'_> {
    type QueryId = SpendToken<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB> QueryFragment<DB> for SpendToken<'_>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<Timestamp>,
    str: ToSql<Text, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE survey_tokens SET spent_at = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" WHERE token_hash = ");
        out.push_bind_param::<Text, _>(self.token_hash)?;
        out.push_sql(" AND spent_at IS NULL AND expires_at > ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for SpendToken<'_> {}

/// Stores the overall rating on a dossier not yet rated and returns the dossier's unit,
/// completion and due times (no row when it was already rated or does not exist).
#[derive(Debug, Clone, Copy)]
pub struct RateDossier<'a> {
    pub transaction_id: &'a str,
    pub rating: i64,
}

impl QueryId for RateDossier<'_> {
    type QueryId = RateDossier<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for RateDossier<'_> {
    type SqlType = (Text, Timestamp, Nullable<Timestamp>);
}

impl<DB> QueryFragment<DB> for RateDossier<'_>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<BigInt>,
    str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE transactions SET rating = ");
        out.push_bind_param::<BigInt, _>(&self.rating)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.transaction_id)?;
        out.push_sql(" AND rating IS NULL RETURNING unit_id, completed_at, due_at");
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for RateDossier<'_> {}
