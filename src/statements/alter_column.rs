//! The statements of a column the new version sees changed (`alter_column`,
//! `drop_constraint`, `drop_not_null`): a hidden copy of the column with
//! the new type and constraints, write rules keeping the two in step (`up`
//! for the old version's writes, `down` for the new one's), a backfill of
//! the copy, constraints built without a blocking scan, and at contract the
//! swap: the old column dropped, the copy renamed into place, its
//! constraints given their final names.

use crate::db::{quote_ident, quote_literal};
use crate::plan::model::Versions;
use crate::statements::batch::{BatchJob, Work};
use crate::statements::versions::{Writer, drop_write_rule_sql, old_columns, write_rule_sql};

/// A foreign key of the new column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Its name after contract.
    pub name: String,
    /// The referenced table (quoted, qualified).
    pub table: String,
    /// The referenced column, or `None` for the table's primary key.
    pub column: Option<String>,
    /// `ON DELETE` action (plan SQL), if any.
    pub on_delete: Option<String>,
}

/// The new version's copy of one column, resolved against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The table as the step names it (names the write rules).
    pub label: String,
    /// The physical table (in the old schema).
    pub table: String,
    /// The old physical column.
    pub column: String,
    /// The column's name in the new version.
    pub visible: String,
    /// The hidden copy.
    pub hidden: String,
    /// The copy's type (SQL).
    pub type_: String,
    /// The copy is NOT NULL.
    pub not_null: bool,
    /// The copy's default (SQL).
    pub default: Option<String>,
    /// A CHECK on the copy: final name, expression over the hidden column.
    pub check: Option<(String, String)>,
    /// Unique, with this final constraint name.
    pub unique: Option<String>,
    /// A foreign key.
    pub references: Option<Reference>,
    /// The copy's comment.
    pub comment: Option<String>,
    /// The copy's value from the old row (plan SQL over the old columns).
    pub up: String,
    /// The old column's value from the new row (plan SQL over the new
    /// version's columns).
    pub down: String,
}

/// An identifier cut at PostgreSQL's 63 bytes, on a char boundary.
fn short(name: String) -> String {
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// A constraint or index cutover builds on the copy, until contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// Its name until contract.
    pub name: String,
    /// Adds it without a scan under a blocking lock (NOT VALID, or
    /// CONCURRENTLY for an index).
    pub create: String,
    /// Validates it (none for an index, valid once built).
    pub validate: Option<String>,
    /// An index (built outside a transaction).
    pub index: bool,
}

impl Duplicate {
    /// The physical table, quoted and qualified.
    pub fn qtable(&self, v: &Versions) -> String {
        format!("{}.{}", quote_ident(&v.old), quote_ident(&self.table))
    }

    /// The copy's NOT NULL check until contract.
    pub fn not_null_check(&self) -> String {
        self.hidden_name("nn")
    }

    fn hidden_name(&self, what: &str) -> String {
        short(format!("_cutover_{what}_{}_{}", self.table, self.column))
    }

    /// The copy, its default and comment, and a rule giving it `up` on
    /// every write (while the new version cannot see it yet, both versions
    /// write the old column).
    pub fn add_sql(&self, v: &Versions, columns: &[String]) -> String {
        let q = self.qtable(v);
        let hidden = quote_ident(&self.hidden);
        let mut sql = format!(
            "ALTER TABLE {q} ADD COLUMN IF NOT EXISTS {hidden} {};\n",
            self.type_
        );
        if let Some(d) = &self.default {
            sql.push_str(&format!(
                "ALTER TABLE {q} ALTER COLUMN {hidden} SET DEFAULT {d};\n"
            ));
        }
        if let Some(c) = &self.comment {
            sql.push_str(&format!(
                "COMMENT ON COLUMN {q}.{hidden} IS {};\n",
                quote_literal(c)
            ));
        }
        sql.push_str(&self.up_rule(v, columns, Writer::Any));
        sql
    }

    fn up_rule(&self, v: &Versions, columns: &[String], writer: Writer) -> String {
        write_rule_sql(
            v,
            &self.table,
            &self.label,
            &old_columns(columns),
            "up",
            &self.hidden,
            &self.up,
            writer,
        )
    }

    /// The backfill of the copy: rows no write has given a value yet.
    pub fn backfill(&self, v: &Versions, key: &str) -> BatchJob {
        let hidden = quote_ident(&self.hidden);
        BatchJob {
            table: self.qtable(v),
            key: key.to_string(),
            filter: Some(format!("{hidden} IS NULL")),
            work: Work::Update {
                set: format!("{hidden} = ({})", self.up),
            },
            batch_size: None,
            vacuum_behind: true,
            workers: 1,
        }
    }

    /// The constraints and index of the copy, in the order they are built.
    pub fn builds(&self, v: &Versions) -> Vec<Build> {
        let q = self.qtable(v);
        let hidden = quote_ident(&self.hidden);
        let mut out = Vec::new();
        let mut constraint = |name: String, def: String| {
            let qn = quote_ident(&name);
            out.push(Build {
                create: format!("ALTER TABLE {q} ADD CONSTRAINT {qn} {def} NOT VALID"),
                validate: Some(format!("ALTER TABLE {q} VALIDATE CONSTRAINT {qn}")),
                name,
                index: false,
            });
        };
        if self.not_null {
            constraint(
                self.hidden_name("nn"),
                format!("CHECK ({hidden} IS NOT NULL)"),
            );
        }
        if let Some((_, expr)) = &self.check {
            constraint(self.hidden_name("ck"), format!("CHECK ({expr})"));
        }
        if let Some(r) = &self.references {
            let target = match &r.column {
                Some(c) => format!("{} ({})", r.table, quote_ident(c)),
                None => r.table.clone(),
            };
            let on_delete = r
                .on_delete
                .as_deref()
                .map_or(String::new(), |a| format!(" ON DELETE {a}"));
            constraint(
                self.hidden_name("fk"),
                format!("FOREIGN KEY ({hidden}) REFERENCES {target}{on_delete}"),
            );
        }
        if self.unique.is_some() {
            let name = self.hidden_name("uq");
            out.push(Build {
                create: format!(
                    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {} ON {q} ({hidden})",
                    quote_ident(&name)
                ),
                validate: None,
                name,
                index: true,
            });
        }
        out
    }

    /// The write rules once the new version sees the copy: `up` for the
    /// old version's writes, `down` for the new one's (`columns`: the old
    /// version's; `new_columns`: the new version's, name and physical).
    pub fn rules_sql(
        &self,
        v: &Versions,
        columns: &[String],
        new_columns: &[(String, String)],
    ) -> String {
        let mut sql = self.up_rule(v, columns, Writer::Old);
        sql.push_str(&write_rule_sql(
            v,
            &self.table,
            &self.label,
            new_columns,
            "down",
            &self.column,
            &self.down,
            Writer::New,
        ));
        sql
    }

    /// Drops both write rules (their functions and triggers).
    pub fn drop_rules_sql(&self, v: &Versions) -> String {
        let mut sql = drop_write_rule_sql(v, &self.label, "up", &self.hidden);
        sql.push_str(&drop_write_rule_sql(v, &self.label, "down", &self.column));
        sql
    }

    /// Removes the copy: its rules, and the column with its constraints
    /// and index. The old column was never touched.
    pub fn undo_sql(&self, v: &Versions) -> String {
        let mut sql = self.drop_rules_sql(v);
        sql.push_str(&format!(
            "ALTER TABLE {} DROP COLUMN IF EXISTS {};\n",
            self.qtable(v),
            quote_ident(&self.hidden)
        ));
        sql
    }

    /// At contract, once the copy is renamed to `visible`: NOT NULL from
    /// its validated check (no scan), the unique index as a constraint,
    /// the constraints under their final names.
    pub fn contract_sql(&self, v: &Versions) -> String {
        let q = self.qtable(v);
        let col = quote_ident(&self.visible);
        let mut sql = String::new();
        if self.not_null {
            sql.push_str(&format!(
                "ALTER TABLE {q} ALTER COLUMN {col} SET NOT NULL;\n\
                 ALTER TABLE {q} DROP CONSTRAINT {};\n",
                quote_ident(&self.hidden_name("nn"))
            ));
        }
        if let Some(name) = &self.unique {
            sql.push_str(&format!(
                "ALTER TABLE {q} ADD CONSTRAINT {} UNIQUE USING INDEX {};\n",
                quote_ident(name),
                quote_ident(&self.hidden_name("uq"))
            ));
        }
        let mut rename = |hidden: String, name: &str| {
            sql.push_str(&format!(
                "ALTER TABLE {q} RENAME CONSTRAINT {} TO {};\n",
                quote_ident(&hidden),
                quote_ident(name)
            ));
        };
        if let Some((name, _)) = &self.check {
            rename(self.hidden_name("ck"), name);
        }
        if let Some(r) = &self.references {
            rename(self.hidden_name("fk"), &r.name);
        }
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup() -> Duplicate {
        Duplicate {
            label: "users".into(),
            table: "users".into(),
            column: "age".into(),
            visible: "age".into(),
            hidden: "_cutover_new_age".into(),
            type_: "bigint".into(),
            not_null: true,
            default: None,
            check: Some(("users_age_check".into(), "\"_cutover_new_age\" >= 0".into())),
            unique: Some("users_age_key".into()),
            references: None,
            comment: None,
            up: "age".into(),
            down: "age".into(),
        }
    }

    #[test]
    fn constraints_are_built_without_a_blocking_scan() {
        let v = Versions {
            old: "public".into(),
            new: "app_v2".into(),
        };
        let builds = dup().builds(&v);
        assert_eq!(builds.len(), 3);
        assert!(
            builds[0].create.ends_with("IS NOT NULL) NOT VALID"),
            "{builds:?}"
        );
        assert!(builds[0].validate.is_some());
        assert!(
            builds[1]
                .create
                .contains("CHECK (\"_cutover_new_age\" >= 0) NOT VALID")
        );
        assert!(
            builds[2]
                .create
                .starts_with("CREATE UNIQUE INDEX CONCURRENTLY")
        );
        let contract = dup().contract_sql(&v);
        assert!(contract.contains("SET NOT NULL"), "{contract}");
        assert!(contract.contains("UNIQUE USING INDEX \"_cutover_uq_users_age\""));
        assert!(
            contract.contains("RENAME CONSTRAINT \"_cutover_ck_users_age\" TO \"users_age_check\"")
        );
    }
}
