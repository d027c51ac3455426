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

/// One column of a set-based statement on PostgreSQL: a whole batch's values as one array
/// parameter (read back row by row with `unnest`), so the statement's text and types never
/// change with the batch's size and it stays prepared.
pub enum Column<'a> {
    Text(Vec<&'a str>),
    NullText(Vec<Option<&'a str>>),
    Int(Vec<i64>),
    Time(Vec<NaiveDateTime>),
    NullTime(Vec<Option<NaiveDateTime>>),
    Date(Vec<chrono::NaiveDate>),
    Bytes(Vec<Vec<u8>>),
    Bool(Vec<bool>),
    NullInt(Vec<Option<i64>>),
    /// One value for the whole batch.
    OneTime(NaiveDateTime),
    /// One value for the whole batch.
    OneBytes(&'a [u8]),
}

/// The fixed text of a set-based statement: `?` marks each parameter, in the order of the
/// columns given; `Row` is the SQL type of a returned row (unused by statements without
/// `RETURNING`).
pub trait SetSql: 'static {
    const SQL: &'static str;
    type Row;
}

/// A set-based statement with its columns; prepared once per connection (its query id is the
/// statement's type).
pub struct SetStatement<'a, S> {
    columns: Vec<Column<'a>>,
    statement: std::marker::PhantomData<S>,
}

impl<'a, S: SetSql> SetStatement<'a, S> {
    pub fn new(columns: Vec<Column<'a>>) -> Self {
        Self {
            columns,
            statement: std::marker::PhantomData,
        }
    }
}

impl<S: SetSql> QueryId for SetStatement<'_, S> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: SetSql> Query for SetStatement<'_, S> {
    type SqlType = S::Row;
}

impl<S: SetSql> QueryFragment<diesel::pg::Pg> for SetStatement<'_, S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Array, Binary, Bool, Date};
        let mut pieces = S::SQL.split('?');
        if S::SQL.matches('?').count() != self.columns.len() {
            return Err(diesel::result::Error::QueryBuilderError(
                "a set-based statement got the wrong number of columns".into(),
            ));
        }
        for column in &self.columns {
            out.push_sql(pieces.next().unwrap_or_default());
            match column {
                Column::Text(v) => out.push_bind_param::<Array<Text>, _>(v)?,
                Column::NullText(v) => out.push_bind_param::<Array<Nullable<Text>>, _>(v)?,
                Column::Int(v) => out.push_bind_param::<Array<BigInt>, _>(v)?,
                Column::Time(v) => out.push_bind_param::<Array<Timestamp>, _>(v)?,
                Column::NullTime(v) => out.push_bind_param::<Array<Nullable<Timestamp>>, _>(v)?,
                Column::Date(v) => out.push_bind_param::<Array<Date>, _>(v)?,
                Column::Bytes(v) => out.push_bind_param::<Array<Binary>, _>(v)?,
                Column::Bool(v) => out.push_bind_param::<Array<Bool>, _>(v)?,
                Column::NullInt(v) => out.push_bind_param::<Array<Nullable<BigInt>>, _>(v)?,
                Column::OneTime(t) => out.push_bind_param::<Timestamp, _>(t)?,
                Column::OneBytes(b) => out.push_bind_param::<Binary, _>(*b)?,
            }
        }
        out.push_sql(pieces.next().unwrap_or_default());
        Ok(())
    }
}

impl<S, Conn> RunQueryDsl<Conn> for SetStatement<'_, S> {}

/// Declares a [`SetSql`] statement.
#[macro_export]
macro_rules! set_sql {
    ($(#[$meta:meta])* $name:ident, $row:ty, $sql:expr) => {
        $(#[$meta])*
        pub struct $name;
        impl $crate::db::statements::SetSql for $name {
            const SQL: &'static str = $sql;
            type Row = $row;
        }
    };
}
