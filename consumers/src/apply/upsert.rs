//! The one statement every counter view is written with: the delta's rows as column arrays,
//! `INSERT … SELECT * FROM unnest(…) ON CONFLICT (key) DO UPDATE SET c = t.c + EXCLUDED.c`.
//! One round trip per view and batch, whatever its number of rows; rows go in the delta's key
//! order, which is the lock order that keeps concurrent writers from deadlocking.
//!
//! A view is declared as a [`Table`] (its key and counter columns with their SQL types) next to
//! the code that fills it, so its SQL stays visible there.

use chrono::NaiveDate;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, Postgres, Transaction};

use crate::units::money::Micros;

/// The SQL type of a column, and so the Rust values it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Date,
    Int,
    /// `numeric` micro-units ([`Micros`]).
    Money,
}

impl Kind {
    /// The SQL array type of a column of this kind.
    pub fn array(self) -> &'static str {
        match self {
            Kind::Text => "text[]",
            Kind::Date => "date[]",
            Kind::Int => "int8[]",
            Kind::Money => "numeric[]",
        }
    }
}

/// A counter view: its key columns and the counters a conflict adds up.
pub(super) struct Table {
    pub name: &'static str,
    pub keys: &'static [(&'static str, Kind)],
    pub counters: &'static [(&'static str, Kind)],
}

impl Table {
    fn sql(&self) -> String {
        let columns: Vec<&(&str, Kind)> = self.keys.iter().chain(self.counters).collect();
        let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
        let arrays: Vec<String> =
            columns.iter().enumerate().map(|(i, c)| format!("${}::{}", i + 1, c.1.array())).collect();
        let keys: Vec<&str> = self.keys.iter().map(|c| c.0).collect();
        let sums: Vec<String> = self.counters.iter().map(|(c, _)| format!("{c} = t.{c} + EXCLUDED.{c}")).collect();
        format!(
            "INSERT INTO {} AS t ({}) SELECT * FROM unnest({}) ON CONFLICT ({}) DO UPDATE SET {}",
            self.name,
            names.join(", "),
            arrays.join(", "),
            keys.join(", "),
            sums.join(", ")
        )
    }

    /// An empty set of rows to fill, in key order.
    pub fn rows<'a>(&'static self) -> Rows<'a> {
        let columns = self.keys.iter().chain(self.counters).map(|(_, k)| Column::new(*k)).collect();
        Rows { table: self, columns, len: 0 }
    }
}

enum Column<'a> {
    Text(Vec<&'a str>),
    Date(Vec<NaiveDate>),
    Int(Vec<i64>),
    Money(Vec<Micros>),
}

impl Column<'_> {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Text => Column::Text(Vec::new()),
            Kind::Date => Column::Date(Vec::new()),
            Kind::Int => Column::Int(Vec::new()),
            Kind::Money => Column::Money(Vec::new()),
        }
    }

    fn bind(&self, args: &mut PgArguments) -> Result<(), sqlx::Error> {
        match self {
            Column::Text(v) => args.add(v),
            Column::Date(v) => args.add(v),
            Column::Int(v) => args.add(v),
            Column::Money(v) => args.add(v),
        }
        .map_err(sqlx::Error::Encode)
    }
}

/// The rows of one upsert.
pub(super) struct Rows<'a> {
    table: &'static Table,
    columns: Vec<Column<'a>>,
    len: usize,
}

impl<'a> Rows<'a> {
    /// The next row: its values in column order (keys, then counters).
    pub fn row(&mut self) -> Row<'_, 'a> {
        self.len += 1;
        Row { columns: &mut self.columns, next: 0 }
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub async fn upsert(self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        self.execute(tx, &self.table.sql(), self.columns.len()).await
    }

    /// Runs `sql` with the first `columns` columns of the rows bound as its arrays `$1` … (a
    /// statement must use every parameter it is given); nothing without rows. For the views
    /// written by more than the plain upsert (`running`).
    pub async fn execute(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        sql: &str,
        columns: usize,
    ) -> Result<(), sqlx::Error> {
        if self.len == 0 {
            return Ok(());
        }
        let mut args = PgArguments::default();
        for c in &self.columns[..columns] {
            c.bind(&mut args)?;
        }
        sqlx::query_with(sql, args).execute(&mut **tx).await?;
        Ok(())
    }
}

#[must_use = "a row ends with .end()"]
/// Writes one row's values, column by column. A value of the wrong kind, or a row with too
/// few or too many values, is a bug in the view's declaration: a panic any test reaches.
pub(super) struct Row<'r, 'a> {
    columns: &'r mut Vec<Column<'a>>,
    next: usize,
}

impl<'a> Row<'_, 'a> {
    fn column(&mut self) -> &mut Column<'a> {
        let i = self.next;
        self.next += 1;
        &mut self.columns[i]
    }

    pub fn text(mut self, v: &'a str) -> Self {
        match self.column() {
            Column::Text(c) => c.push(v),
            _ => panic!("column {} is not text", self.next - 1),
        }
        self
    }

    pub fn date(mut self, v: NaiveDate) -> Self {
        match self.column() {
            Column::Date(c) => c.push(v),
            _ => panic!("column {} is not a date", self.next - 1),
        }
        self
    }

    pub fn int(mut self, v: i64) -> Self {
        match self.column() {
            Column::Int(c) => c.push(v),
            _ => panic!("column {} is not int8", self.next - 1),
        }
        self
    }

    pub fn money(mut self, v: i128) -> Self {
        match self.column() {
            Column::Money(c) => c.push(Micros(v)),
            _ => panic!("column {} is not numeric", self.next - 1),
        }
        self
    }

    /// Ends the row (every column written).
    pub fn end(self) {
        assert_eq!(self.next, self.columns.len(), "a row of {} values for {} columns", self.next, self.columns.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static T: Table = Table {
        name: "v",
        keys: &[("tenant_id", Kind::Text), ("day", Kind::Date)],
        counters: &[("n", Kind::Int), ("revenue_micros", Kind::Money)],
    };

    #[test]
    fn one_statement_per_view() {
        assert_eq!(
            T.sql(),
            "INSERT INTO v AS t (tenant_id, day, n, revenue_micros) \
             SELECT * FROM unnest($1::text[], $2::date[], $3::int8[], $4::numeric[]) \
             ON CONFLICT (tenant_id, day) DO UPDATE SET n = t.n + EXCLUDED.n, revenue_micros = t.revenue_micros + EXCLUDED.revenue_micros"
        );
    }

    #[test]
    #[should_panic(expected = "column 1 is not int8")]
    fn a_value_of_the_wrong_kind_is_a_bug() {
        let mut rows = T.rows();
        rows.row().text("t").int(1).end();
    }
}
