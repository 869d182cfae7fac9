//! A whole database copied into PostgreSQL (`tako admin migrate`), and
//! PostgreSQL read whole ([`Export`], which the copy's checks and tests
//! read back through).
//!
//! The copy is one transaction: refused before anything is written when
//! the versions or schemas differ or the target holds a row, then every
//! table in foreign-key order, in batches of multi-row `INSERT`s with the
//! target's column types, the tables' own triggers off (`DISABLE TRIGGER
//! USER`: the totals and latest deployments are copied, not counted twice;
//! foreign keys stay checked), identities moved past the copied ids, and
//! the counts compared on both sides before the commit. A failure keeps
//! nothing.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::{ToSql, Type};

use super::PostgresStore;
use super::migrate;
use super::ops::{self, db};

/// Like `ops::db`, with a context made at run time.
fn fail(context: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| StoreError::unavailable(context.to_owned(), ops::describe(&e))
}
use crate::error::{StoreError, StoreResult};
use crate::transfer::{
    Cell, Copied, Export, STORE_INTERNAL_TABLES, TableInfo, TransferError, compare_schemas,
    describe_key, in_dependency_order,
};

/// PostgreSQL's limit on the parameters of one statement.
const MAX_PARAMS: usize = 65_535;

/// `name` quoted as an SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn table_info<C: GenericClient>(c: &C, name: &str) -> StoreResult<TableInfo> {
    let context = format!("cannot read the columns of {name}");
    let columns = c
        .query(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&name],
        )
        .await
        .map_err(fail(&context))?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let key = c
        .query(
            "SELECT a.attname::text FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
             WHERE i.indrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass
               AND i.indisprimary
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
            &[&name],
        )
        .await
        .map_err(fail(&context))?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let references = c
        .query(
            "SELECT DISTINCT r.relname::text FROM pg_constraint k
             JOIN pg_class r ON r.oid = k.confrelid
             WHERE k.contype = 'f'
               AND k.conrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass
             ORDER BY 1",
            &[&name],
        )
        .await
        .map_err(fail(&context))?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    Ok(TableInfo {
        name: name.to_owned(),
        columns,
        key,
        references,
    })
}

async fn table_names<C: GenericClient>(c: &C) -> StoreResult<Vec<String>> {
    Ok(c.query(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
           AND NOT (table_name::text = ANY($1))
         ORDER BY 1",
        &[&STORE_INTERNAL_TABLES.as_slice()],
    )
    .await
    .map_err(db("cannot list the tables"))?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

async fn count<C: GenericClient>(c: &C, table: &str) -> StoreResult<u64> {
    let n: i64 = c
        .query_one(&format!("SELECT COUNT(*) FROM {}", quote(table)), &[])
        .await
        .map_err(fail(&format!("cannot count the rows of {table}")))?
        .get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The type of each column of `table`, in `columns`' order.
async fn column_types<C: GenericClient>(
    c: &C,
    table: &str,
    columns: &[String],
) -> StoreResult<Vec<Type>> {
    let names: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let statement = c
        .prepare(&format!(
            "SELECT {} FROM {} LIMIT 0",
            names.join(", "),
            quote(table)
        ))
        .await
        .map_err(fail(&format!("cannot read the column types of {table}")))?;
    Ok(statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect())
}

/// A value read from PostgreSQL.
fn read_cell(
    row: &tokio_postgres::Row,
    at: usize,
    ty: &Type,
) -> Result<Cell, tokio_postgres::Error> {
    Ok(match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(at)?.map(Cell::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(at)?
            .map(|v| Cell::Int(i64::from(v))),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(at)?
            .map(|v| Cell::Int(i64::from(v))),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(at)?
            .map(|v| Cell::Int(i64::from(v))),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(at)?.map(Cell::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(at)?
            .map(|v| Cell::Real(f64::from(v))),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(at)?.map(Cell::Bytes),
        _ => row.try_get::<_, Option<String>>(at)?.map(Cell::Text),
    }
    .unwrap_or(Cell::Null))
}

/// A parameter for a column of type `ty`, or what is wrong with `cell`.
fn param(cell: &Cell, ty: &Type) -> Result<Box<dyn ToSql + Sync + Send>, &'static str> {
    let wrong = Err(cell.kind());
    Ok(match (cell, ty) {
        (Cell::Null, _) => match *ty {
            Type::INT8 => Box::new(None::<i64>),
            Type::INT4 => Box::new(None::<i32>),
            Type::INT2 => Box::new(None::<i16>),
            Type::BOOL => Box::new(None::<bool>),
            Type::FLOAT8 => Box::new(None::<f64>),
            Type::FLOAT4 => Box::new(None::<f32>),
            Type::BYTEA => Box::new(None::<Vec<u8>>),
            _ => Box::new(None::<String>),
        },
        (Cell::Int(i), &Type::INT8) => Box::new(*i),
        (Cell::Int(i), &Type::INT4) => Box::new(i32::try_from(*i).map_err(|_| "a larger integer")?),
        (Cell::Int(i), &Type::INT2) => Box::new(i16::try_from(*i).map_err(|_| "a larger integer")?),
        (Cell::Int(0), &Type::BOOL) => Box::new(false),
        (Cell::Int(1), &Type::BOOL) => Box::new(true),
        (Cell::Int(_), &Type::BOOL) => return Err("an integer other than 0 and 1"),
        #[allow(clippy::cast_precision_loss)]
        (Cell::Int(i), &Type::FLOAT8) => Box::new(*i as f64),
        (Cell::Real(r), &Type::FLOAT8) => Box::new(*r),
        (Cell::Text(t), &Type::BYTEA) => Box::new(t.clone().into_bytes()),
        (Cell::Bytes(b), &Type::BYTEA) => Box::new(b.clone()),
        (Cell::Text(t), &Type::TEXT | &Type::VARCHAR) => Box::new(t.clone()),
        (Cell::Bytes(b), &Type::TEXT | &Type::VARCHAR) => {
            Box::new(String::from_utf8(b.clone()).map_err(|_| "bytes that are not UTF-8")?)
        }
        _ => return wrong,
    })
}

#[async_trait]
impl Export for PostgresStore {
    fn location(&self) -> String {
        self.target.clone()
    }

    async fn schema_version(&self) -> StoreResult<u32> {
        let c = self.client().await?;
        let version: Option<i64> = c
            .query_one("SELECT MAX(version) FROM schema_migrations", &[])
            .await
            .map_err(db("cannot read the schema version"))?
            .get(0);
        Ok(u32::try_from(version.unwrap_or(0)).unwrap_or(u32::MAX))
    }

    async fn tables(&self) -> StoreResult<Vec<TableInfo>> {
        let c = self.client().await?;
        let mut tables = Vec::new();
        for name in table_names(&c).await? {
            tables.push(table_info(&c, &name).await?);
        }
        Ok(tables)
    }

    async fn count(&self, table: &str) -> StoreResult<u64> {
        let c = self.client().await?;
        count(&c, table).await
    }

    async fn rows(
        &self,
        table: &TableInfo,
        after: Option<&[Cell]>,
        limit: usize,
    ) -> StoreResult<Vec<Vec<Cell>>> {
        let c = self.client().await?;
        let context = format!("cannot read the rows of {}", table.name);
        let types = column_types(&c, &table.name, &table.columns).await?;
        let key_types: Vec<Type> = table
            .key
            .iter()
            .filter_map(|k| table.columns.iter().position(|c| c == k))
            .map(|at| types[at].clone())
            .collect();
        let columns: Vec<String> = table.columns.iter().map(|c| quote(c)).collect();
        let key: Vec<String> = table.key.iter().map(|c| quote(c)).collect();
        let mut sql = format!("SELECT {} FROM {}", columns.join(", "), quote(&table.name));
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(after) = after {
            for (cell, ty) in after.iter().zip(&key_types) {
                params.push(param(cell, ty).map_err(|found| {
                    StoreError::unavailable(context.clone(), format!("a key of {found}"))
                })?);
            }
            let marks: Vec<String> = (1..=params.len()).map(|i| format!("${i}")).collect();
            sql.push_str(&format!(
                " WHERE ({}) > ({})",
                key.join(", "),
                marks.join(", ")
            ));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", key.join(", ")));
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = c.query(&sql, &refs).await.map_err(fail(&context))?;
        rows.iter()
            .map(|row| {
                types
                    .iter()
                    .enumerate()
                    .map(|(at, ty)| read_cell(row, at, ty))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(fail(&context))
            })
            .collect()
    }
}

impl PostgresStore {
    /// Copies everything `source` holds into this (empty) database, in
    /// batches of up to `batch` rows, calling `progress` after each batch
    /// with the table and the rows copied into it so far; returns each
    /// table with its verified count.
    pub async fn import_from(
        &self,
        source: &dyn Export,
        batch: usize,
        progress: &mut (dyn FnMut(&str, u64) + Send),
    ) -> Result<Vec<Copied>, TransferError> {
        let expected = migrate::latest_version();
        let found = source.schema_version().await?;
        if found != expected {
            return Err(TransferError::source_version(
                source.location(),
                found,
                expected,
            ));
        }
        let ours = Export::schema_version(self).await?;
        if ours != expected {
            return Err(TransferError::SchemaMismatch(format!(
                "the target {} is at schema version {ours}, this binary at {expected}",
                self.target
            )));
        }
        let source_tables = source.tables().await?;
        let target_tables = Export::tables(self).await?;
        compare_schemas(&source_tables, &target_tables)?;
        if let Some(t) = source_tables.iter().find(|t| t.key.is_empty()) {
            return Err(TransferError::SchemaMismatch(format!(
                "table {} has no primary key to copy it by",
                t.name
            )));
        }
        let mut full = Vec::new();
        for t in &target_tables {
            let n = Export::count(self, &t.name).await?;
            if n > 0 {
                full.push(format!("{}: {n} row(s)", t.name));
            }
        }
        if !full.is_empty() {
            return Err(TransferError::TargetNotEmpty {
                location: self.target.clone(),
                tables: full.join(", "),
            });
        }

        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(db("cannot begin the copy"))?;
        let mut copied = Vec::new();
        for table in in_dependency_order(source_tables) {
            let rows = copy_table(&tx, source, &table, batch.max(1), progress).await?;
            let source_rows = source.count(&table.name).await?;
            let target_rows = count(&tx, &table.name).await?;
            if source_rows != target_rows || rows != target_rows {
                return Err(TransferError::CountMismatch {
                    table: table.name,
                    source_rows,
                    target_rows,
                });
            }
            copied.push(Copied {
                table: table.name,
                rows: target_rows,
            });
        }
        tx.commit().await.map_err(db("cannot commit the copy"))?;
        copied.sort_by(|a, b| a.table.cmp(&b.table));
        Ok(copied)
    }
}

/// Copies one table in batches; returns the rows copied.
async fn copy_table(
    tx: &ops::Tx<'_>,
    source: &dyn Export,
    table: &TableInfo,
    batch: usize,
    progress: &mut (dyn FnMut(&str, u64) + Send),
) -> Result<u64, TransferError> {
    let name = quote(&table.name);
    let context = format!("cannot copy {}", table.name);
    tx.batch_execute(&format!("ALTER TABLE {name} DISABLE TRIGGER USER"))
        .await
        .map_err(|e| {
            StoreError::unavailable(
                format!(
                    "{context}: cannot turn its triggers off for the copy (connect as the user \
                     that owns Tako's tables, the one `tako serve` uses)"
                ),
                ops::describe(&e),
            )
        })?;
    let types = column_types(tx, &table.name, &table.columns).await?;
    let per_statement = batch.min(MAX_PARAMS / table.columns.len().max(1)).max(1);
    let columns: Vec<String> = table.columns.iter().map(|c| quote(c)).collect();
    let mut after: Option<Vec<Cell>> = None;
    let mut total = 0u64;
    loop {
        let rows = source.rows(table, after.as_deref(), batch).await?;
        let Some(last) = rows.last() else { break };
        after = Some(table.key_of(last));
        for chunk in rows.chunks(per_statement) {
            let mut params: Vec<Box<dyn ToSql + Sync + Send>> =
                Vec::with_capacity(chunk.len() * types.len());
            let mut values = Vec::with_capacity(chunk.len());
            for row in chunk {
                let mut marks = Vec::with_capacity(types.len());
                for ((cell, ty), column) in row.iter().zip(&types).zip(&table.columns) {
                    params.push(param(cell, ty).map_err(|found| TransferError::Value {
                        table: table.name.clone(),
                        column: column.clone(),
                        key: describe_key(&table.key_of(row)),
                        found,
                        expected: ty.name().to_owned(),
                    })?);
                    marks.push(format!("${}", params.len()));
                }
                values.push(format!("({})", marks.join(", ")));
            }
            let sql = format!(
                "INSERT INTO {name} ({}) VALUES {}",
                columns.join(", "),
                values.join(", ")
            );
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            tx.execute(&sql, &refs).await.map_err(fail(&context))?;
        }
        total += rows.len() as u64;
        progress(&table.name, total);
        if rows.len() < batch {
            break;
        }
    }
    tx.batch_execute(&format!("ALTER TABLE {name} ENABLE TRIGGER USER"))
        .await
        .map_err(fail(&context))?;
    // New rows get ids after the copied ones.
    let identities = tx
        .query(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1
               AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')",
            &[&table.name],
        )
        .await
        .map_err(fail(&context))?;
    for row in identities {
        let column: String = row.get(0);
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence($1, $2),
                               (SELECT COALESCE(MAX({}), 0) + 1 FROM {name}), false)",
                quote(&column)
            ),
            &[&name, &column],
        )
        .await
        .map_err(fail(&context))?;
    }
    Ok(total)
}
