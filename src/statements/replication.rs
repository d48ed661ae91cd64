//! Moving tables to another database with logical replication: the names
//! of a run's publication, subscription and slot, the statements that make
//! and remove them, a table's definition rebuilt from the source catalog,
//! the write freeze of the switchover, and the chunk hashes the
//! cross-database compare reads on each side.

use crate::db::{quote_ident, quote_literal, quote_qualified};

/// The publication, subscription and slot of a run's move to `database`
/// (one name for all three; lower case, so it needs no quoting). Slots are
/// per cluster and run ids per database: the main database's oid keeps
/// two databases' moves apart.
pub fn move_name(source_oid: u32, run_id: i64, database: &str) -> String {
    format!("cutover_move_{source_oid}_{run_id}_{database}")
}

/// The main database's oid (for [`move_name`]).
pub const DATABASE_OID: &str = "SELECT oid FROM pg_database WHERE datname = current_database()";

/// The function the switchover's freeze triggers call (named after the
/// move's publication, in cutover's own schema).
pub fn freeze_function(publication: &str) -> String {
    format!("cutover.{publication}_freeze")
}

/// The freeze trigger's name on each moved table.
pub const FREEZE_TRIGGER: &str = "cutover_move_freeze";

/// `CREATE PUBLICATION … FOR TABLE …`.
pub fn create_publication_sql(name: &str, tables: &[String]) -> String {
    let list: Vec<String> = tables.iter().map(|t| quote_qualified(t)).collect();
    format!(
        "CREATE PUBLICATION {} FOR TABLE {}",
        quote_ident(name),
        list.join(", ")
    )
}

/// `DROP PUBLICATION IF EXISTS …`.
pub fn drop_publication_sql(name: &str) -> String {
    format!("DROP PUBLICATION IF EXISTS {}", quote_ident(name))
}

/// `CREATE SUBSCRIPTION` with the initial copy, making its slot (same
/// name) unless `slot_made` (both databases on one server, where the
/// subscription could not make its own slot without waiting for itself).
pub fn create_subscription_sql(name: &str, conninfo: &str, slot_made: bool) -> String {
    format!(
        "CREATE SUBSCRIPTION {sub} CONNECTION {conn} PUBLICATION {sub} \
         WITH (copy_data = true, create_slot = {create}, slot_name = {slot})",
        sub = quote_ident(name),
        conn = quote_literal(conninfo),
        create = !slot_made,
        slot = quote_literal(name),
    )
}

/// The server's identity (to tell whether two databases share a server).
pub const SYSTEM_ID: &str = "SELECT system_identifier::text FROM pg_control_system()";

/// Makes the subscription's slot from the main side (`$1` name).
pub const CREATE_SLOT: &str = "SELECT pg_create_logical_replication_slot($1, 'pgoutput')";

/// Removes a subscription without touching its slot (dropped on the
/// source afterwards, where it lives): works even when the source cannot
/// be reached.
pub fn drop_subscription_sql(name: &str) -> String {
    let sub = quote_ident(name);
    format!(
        "ALTER SUBSCRIPTION {sub} DISABLE; ALTER SUBSCRIPTION {sub} SET (slot_name = NONE); \
         DROP SUBSCRIPTION {sub}"
    )
}

/// Whether the subscription exists in the current database (`$1` name).
pub const SUBSCRIPTION_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM pg_subscription
     WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()))";

/// Whether the publication exists (`$1` name).
pub const PUBLICATION_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)";

/// Whether a freeze function exists (`$1` its name with `()`, from
/// [`freeze_function`]).
pub const FREEZE_FUNCTION_EXISTS: &str = "SELECT to_regprocedure($1) IS NOT NULL";

/// The slot, if it exists: (active, pid of its consumer).
pub const SLOT_STATE: &str =
    "SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1";

/// Drops the slot when no consumer holds it (`$1` name); returns a row
/// per slot dropped.
pub const DROP_SLOT: &str = "SELECT pg_drop_replication_slot(slot_name)
     FROM pg_replication_slots WHERE slot_name = $1 AND NOT active";

/// The tables a publication carries, qualified and quoted.
pub const PUBLICATION_TABLES: &str = "SELECT format('%I.%I', schemaname, tablename)
     FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1";

/// Every ordinary table outside the system schemas and cutover's journal.
pub const ALL_TABLES: &str = "SELECT format('%I.%I', n.nspname, c.relname)
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'cutover')
       AND n.nspname NOT LIKE 'pg\\_%'
     ORDER BY 1";

/// Per table of the subscription (target side): its sync state letter.
pub const SYNC_STATES: &str = "SELECT format('%I.%I', n.nspname, c.relname), sr.srsubstate::text
     FROM pg_subscription_rel sr
     JOIN pg_subscription s ON s.oid = sr.srsubid
     JOIN pg_class c ON c.oid = sr.srrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE s.subname = $1 ORDER BY 1";

/// The position the source has written up to.
pub const CURRENT_LSN: &str = "SELECT pg_current_wal_lsn()::text";

/// Whether the slot's consumer has confirmed everything up to `$2` (text
/// LSN): the target has applied (and flushed) every change before it.
pub const APPLIED_PAST: &str = "SELECT confirmed_flush_lsn >= $2::text::pg_lsn,
       pg_wal_lsn_diff($2::text::pg_lsn, confirmed_flush_lsn)::bigint
     FROM pg_replication_slots WHERE slot_name = $1";

/// Sessions other than ours holding a write lock on one of the tables
/// (`$1` regclass names as text, `$2` our pids) in a transaction begun
/// before `$3` (text timestamp; NULL: more than a second ago): writers
/// that have not ended. (A write refused by the freeze also holds the lock
/// until its transaction ends; only transactions older than the freeze
/// can have written.)
pub const OPEN_WRITERS: &str = "SELECT DISTINCT l.pid, l.relation::regclass::text,
       coalesce(a.application_name, ''), coalesce(a.state, ''),
       coalesce(extract(epoch FROM now() - a.xact_start), 0)::float8
     FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'relation' AND l.granted
       AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
       AND l.relation = ANY (SELECT to_regclass(t) FROM unnest($1::text[]) t)
       AND l.pid <> ALL ($2::int[])
       AND a.xact_start < coalesce($3::text::timestamptz, now() - interval '1 second')
     ORDER BY 1";

/// The freeze function: refuses every write, for every role (a trigger
/// fires for superusers and owners alike), naming where the table went.
pub fn freeze_function_sql(publication: &str, database: &str) -> String {
    let message = format!(
        "cutover: writes to % are frozen: the table moved to database \"{database}\" \
         ({publication}); point the application's writes there"
    );
    format!(
        "CREATE OR REPLACE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql
         SET search_path = pg_catalog, pg_temp AS $cutover$
         BEGIN
           RAISE EXCEPTION {msg}, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME
             USING ERRCODE = 'read_only_sql_transaction';
         END $cutover$",
        f = freeze_function(publication),
        msg = quote_literal(&message),
    )
}

/// The statement-level trigger that freezes writes to one table (made
/// again if a resumed switchover finds it). Enabled ALWAYS: an ordinary
/// trigger is skipped by a session with `session_replication_role =
/// replica`, which any superuser may set.
pub fn freeze_trigger_sql(publication: &str, table: &str) -> String {
    let table_sql = quote_qualified(table);
    format!(
        "{};\nCREATE TRIGGER {FREEZE_TRIGGER} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON \
         {table_sql} FOR EACH STATEMENT EXECUTE FUNCTION {}();\n\
         ALTER TABLE {table_sql} ENABLE ALWAYS TRIGGER {FREEZE_TRIGGER}",
        unfreeze_sql(table),
        freeze_function(publication)
    )
}

/// Removes a table's freeze trigger.
pub fn unfreeze_sql(table: &str) -> String {
    format!(
        "DROP TRIGGER IF EXISTS {FREEZE_TRIGGER} ON {}",
        quote_qualified(table)
    )
}

/// Removes the freeze function (once its triggers are gone).
pub fn drop_freeze_function_sql(publication: &str) -> String {
    format!("DROP FUNCTION IF EXISTS {}()", freeze_function(publication))
}

/// A table's columns on the source: name, type, NOT NULL, default, the
/// sequence behind it (serial or identity), identity kind, generated.
pub const TABLE_COLUMNS: &str = "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod),
       a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
       pg_get_serial_sequence($1, a.attname::text), a.attidentity::text, a.attgenerated::text
     FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY a.attnum";

/// A table's primary key clause (`PRIMARY KEY (id)`), if it has one.
pub const PRIMARY_KEY: &str = "SELECT pg_get_constraintdef(oid) FROM pg_constraint
     WHERE conrelid = to_regclass($1) AND contype = 'p'";

/// One column as the source defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// `format_type` of it.
    pub sql_type: String,
    /// NOT NULL.
    pub not_null: bool,
    /// Its default expression, if any.
    pub default: Option<String>,
    /// The sequence feeding it (serial or identity), qualified.
    pub sequence: Option<String>,
    /// Identity: `a` (always) or `d` (by default); empty otherwise.
    pub identity: String,
}

impl Column {
    /// A serial column: its default is `nextval` of its own sequence.
    pub fn is_serial(&self) -> bool {
        self.identity.is_empty()
            && self.sequence.is_some()
            && self
                .default
                .as_deref()
                .is_some_and(|d| d.starts_with("nextval("))
    }
}

/// `CREATE SEQUENCE` for a serial column's sequence on the target.
pub fn create_sequence_sql(sequence: &str) -> String {
    format!("CREATE SEQUENCE {sequence}")
}

/// `CREATE TABLE` on the target as the source defines it: columns, types,
/// NOT NULL, defaults (a serial column's `nextval` of the target's own
/// sequence), identity and the primary key; then the serial sequences
/// owned by their columns. `sequence` is already qualified and quoted
/// (`pg_get_serial_sequence` returns it so).
pub fn create_table_sql(table: &str, columns: &[Column], primary_key: &str) -> String {
    let mut defs: Vec<String> = columns
        .iter()
        .map(|c| {
            let mut d = format!("{} {}", quote_ident(&c.name), c.sql_type);
            match (c.identity.as_str(), &c.sequence) {
                ("a", _) => d.push_str(" GENERATED ALWAYS AS IDENTITY"),
                ("d", _) => d.push_str(" GENERATED BY DEFAULT AS IDENTITY"),
                _ if c.is_serial() => {
                    if let Some(seq) = &c.sequence {
                        d.push_str(&format!(
                            " DEFAULT nextval({}::regclass)",
                            quote_literal(seq)
                        ));
                    }
                }
                _ => {
                    if let Some(default) = &c.default {
                        d.push_str(&format!(" DEFAULT {default}"));
                    }
                }
            }
            if c.not_null {
                d.push_str(" NOT NULL");
            }
            d
        })
        .collect();
    defs.push(primary_key.to_string());
    let mut sql = format!(
        "CREATE TABLE {} (\n  {}\n)",
        quote_qualified(table),
        defs.join(",\n  ")
    );
    for c in columns.iter().filter(|c| c.is_serial()) {
        if let Some(seq) = &c.sequence {
            sql.push_str(&format!(
                ";\nALTER SEQUENCE {seq} OWNED BY {}.{}",
                quote_qualified(table),
                quote_ident(&c.name)
            ));
        }
    }
    sql
}

/// Sequences a table's column defaults call without that column owning
/// them (`DEFAULT nextval('shared_seq')`), qualified and quoted as
/// `pg_get_serial_sequence` quotes (`$1` the table).
pub const DEFAULT_SEQUENCES: &str = "SELECT DISTINCT format('%I.%I', n.nspname, s.relname)
     FROM pg_attrdef ad
     JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
     JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
       AND d.refclassid = 'pg_class'::regclass
     JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
     JOIN pg_namespace n ON n.oid = s.relnamespace
     WHERE ad.adrelid = to_regclass($1)
       AND pg_get_serial_sequence($1, a.attname::text) IS DISTINCT FROM format('%I.%I', n.nspname, s.relname)
     ORDER BY 1";

/// The sequence's value on the source: `last_value`, or one less than
/// its start when it was never used.
pub fn sequence_value_sql(sequence: &str) -> String {
    format!("SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {sequence}")
}

/// Sets the target's sequence (`$1` value), marked used.
pub fn setval_sql(sequence: &str) -> String {
    format!(
        "SELECT setval({}::regclass, $1::bigint, true)",
        quote_literal(sequence)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, default: Option<&str>, seq: Option<&str>) -> Column {
        Column {
            name: name.into(),
            sql_type: ty.into(),
            not_null: true,
            default: default.map(str::to_string),
            sequence: seq.map(str::to_string),
            identity: String::new(),
        }
    }

    #[test]
    fn a_serial_column_gets_its_own_sequence_on_the_target() {
        let cols = vec![
            col(
                "id",
                "bigint",
                Some("nextval('users_id_seq'::regclass)"),
                Some("public.users_id_seq"),
            ),
            col(
                "created_at",
                "timestamp with time zone",
                Some("now()"),
                None,
            ),
        ];
        let sql = create_table_sql("users", &cols, "PRIMARY KEY (id)");
        assert!(
            sql.contains(
                r#""id" bigint DEFAULT nextval('public.users_id_seq'::regclass) NOT NULL"#
            ),
            "{sql}"
        );
        assert!(sql.contains(r#""created_at" timestamp with time zone DEFAULT now() NOT NULL"#));
        assert!(sql.contains("PRIMARY KEY (id)"), "{sql}");
        assert!(
            sql.ends_with(r#"ALTER SEQUENCE public.users_id_seq OWNED BY "users"."id""#),
            "{sql}"
        );
    }

    #[test]
    fn the_subscription_keeps_its_connection_string_quoted() {
        let sql =
            create_subscription_sql("cutover_move_7_target", "host='h' password='it''s'", false);
        assert!(
            sql.starts_with(
                r#"CREATE SUBSCRIPTION "cutover_move_7_target" CONNECTION 'host=''h'' password=''it''''s'''"#
            ),
            "{sql}"
        );
        assert!(sql.contains("slot_name = 'cutover_move_7_target'"), "{sql}");
        assert!(sql.contains("create_slot = true"), "{sql}");
        let drop = drop_subscription_sql("cutover_move_7_target");
        assert!(drop.contains("SET (slot_name = NONE)"), "{drop}");
    }

    #[test]
    fn the_freeze_refuses_every_kind_of_write() {
        let sql = freeze_trigger_sql("cutover_move_3_target", "app.users");
        assert!(
            sql.contains(r#"BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON "app"."users""#),
            "{sql}"
        );
        assert!(sql.contains("FOR EACH STATEMENT"), "{sql}");
        assert!(
            sql.contains(r#"ALTER TABLE "app"."users" ENABLE ALWAYS TRIGGER cutover_move_freeze"#),
            "{sql}"
        );
        let f = freeze_function_sql("cutover_move_3_target", "target");
        assert!(f.contains("SET search_path = pg_catalog, pg_temp"), "{f}");
        assert!(f.contains("read_only_sql_transaction"), "{f}");
    }
}
