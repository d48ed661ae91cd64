-- Reference corpus: statement forms from squawk's rule tests (its locking,
-- rewrite and data-safety rules; style rules left out), plus the forms
-- squawk misses, each with the verdict it should get. Each case starts
-- with a line `-- case NAME expect RULE|ok [pg N]`; the default version is
-- 15. tests/lint.rs lints every case as a `.sql` file.

-- case not_valid_then_validate_in_one_transaction expect validate-in-same-transaction
BEGIN;
ALTER TABLE "app_email" ADD CONSTRAINT "fk_user" FOREIGN KEY (user_id) REFERENCES "app_user" (id) NOT VALID;
ALTER TABLE "app_email" VALIDATE CONSTRAINT "fk_user";
COMMIT;

-- case foreign_key_without_not_valid expect constraint-without-not-valid
ALTER TABLE distributors ADD CONSTRAINT distfk FOREIGN KEY (address) REFERENCES addresses (address);

-- case foreign_key_not_valid_then_validate_apart expect ok
ALTER TABLE distributors ADD CONSTRAINT distfk FOREIGN KEY (address) REFERENCES addresses (address) NOT VALID;
ALTER TABLE distributors VALIDATE CONSTRAINT distfk;

-- case check_without_not_valid expect constraint-without-not-valid
ALTER TABLE "accounts" ADD CONSTRAINT "positive_balance" CHECK ("balance" >= 0);

-- case check_not_valid_then_validate_apart expect ok
ALTER TABLE "accounts" ADD CONSTRAINT "positive_balance" CHECK ("balance" >= 0) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT positive_balance;

-- case check_on_a_table_created_in_the_transaction expect ok
BEGIN;
CREATE TABLE "core_foo" ("id" serial NOT NULL PRIMARY KEY, "age" integer NOT NULL);
ALTER TABLE "core_foo" ADD CONSTRAINT "age_restriction" CHECK ("age" >= 25);
COMMIT;

-- case unique_using_index expect ok
ALTER TABLE "app_email" ADD CONSTRAINT "email_uniq" UNIQUE USING INDEX "email_idx";

-- case create_table_with_foreign_key expect ok
BEGIN;
CREATE TABLE email (
    id BIGINT GENERATED ALWAYS AS IDENTITY,
    user_id BIGINT,
    email TEXT,
    PRIMARY KEY (id),
    CONSTRAINT fk_user FOREIGN KEY ("user_id") REFERENCES "user" ("id")
);
COMMIT;

-- case create_table_with_column_references expect ok
CREATE TABLE table_name (
    id BIGSERIAL NOT NULL,
    my_fk_id INTEGER NOT NULL REFERENCES other_table (id) ON DELETE CASCADE
);

-- case foreign_key_on_a_table_created_in_the_transaction expect ok
BEGIN;
CREATE TABLE "emails" ("id" UUID NOT NULL, "user_id" UUID NOT NULL);
ALTER TABLE "emails" ADD CONSTRAINT "fk_user" FOREIGN KEY ("user_id") REFERENCES "users" ("id");
COMMIT;

-- case add_column_then_not_valid_and_validate_in_one_transaction expect validate-in-same-transaction
BEGIN;
ALTER TABLE "email" ADD COLUMN "user_id" INT;
ALTER TABLE "email" ADD CONSTRAINT "fk_user" FOREIGN KEY ("user_id") REFERENCES "user" ("id") NOT VALID;
ALTER TABLE "email" VALIDATE CONSTRAINT "fk_user";
COMMIT;

-- case add_column_then_foreign_key expect constraint-without-not-valid
BEGIN;
ALTER TABLE "email" ADD COLUMN "user_id" INT;
ALTER TABLE "email" ADD CONSTRAINT "fk_user" FOREIGN KEY ("user_id") REFERENCES "user" ("id");
COMMIT;

-- case add_column_references_without_default expect ok
BEGIN;
ALTER TABLE "emails" ADD COLUMN "user_id" INT REFERENCES "user" ("id");
COMMIT;

-- case add_column_default_references expect constraint-without-not-valid
ALTER TABLE a ADD COLUMN b_id bigint DEFAULT 1 REFERENCES b (id);

-- case add_column_inline_check expect constraint-without-not-valid
ALTER TABLE a ADD COLUMN n int CHECK (n > 0);

-- case begin_without_commit expect transaction-left-open
BEGIN;
CREATE TABLE users (id bigint);

-- case begin_commit expect ok
BEGIN;
CREATE TABLE users (id bigint);
COMMIT;

-- case begin_rollback expect ok
BEGIN;
CREATE TABLE users (id bigint);
ROLLBACK;

-- case second_transaction_left_open expect transaction-left-open
BEGIN;
CREATE TABLE users (id bigint);
COMMIT;
BEGIN;
CREATE TABLE posts (id bigint);

-- case start_transaction_left_open expect transaction-left-open
START TRANSACTION;
CREATE TABLE users (id bigint);

-- case begin_work_left_open expect transaction-left-open
BEGIN WORK;
CREATE TABLE users (id bigint);

-- case begin_twice_then_commit expect ok
BEGIN;
BEGIN;
COMMIT;

-- case detach_partition expect detach-partition-not-concurrently
ALTER TABLE t DETACH PARTITION p;

-- case detach_partition_concurrently expect ok
ALTER TABLE t DETACH PARTITION p CONCURRENTLY;

-- case detach_partition_finalize expect ok
ALTER TABLE t DETACH PARTITION p FINALIZE;

-- case detach_partition_before_14 expect detach-partition-not-concurrently pg 13
ALTER TABLE t DETACH PARTITION p;

-- case alter_domain_add_constraint expect domain-constraint-without-not-valid
ALTER DOMAIN domain_name ADD CONSTRAINT constraint_name CHECK (value > 0);

-- case alter_domain_add_constraint_not_valid expect ok
ALTER DOMAIN domain_name ADD CONSTRAINT constraint_name CHECK (value > 0) NOT VALID;

-- case alter_domain_catalog_actions expect ok
ALTER DOMAIN domain_name_3 DROP CONSTRAINT other_domain_name;
ALTER DOMAIN domain_name_4 RENAME CONSTRAINT constraint_name TO other_constraint_name;
ALTER DOMAIN domain_name_5 RENAME TO other_domain_name;
ALTER DOMAIN domain_name_6 VALIDATE CONSTRAINT constraint_name;
ALTER DOMAIN domain_name_7 OWNER TO you;
ALTER DOMAIN domain_name_8 SET SCHEMA foo;

-- case alter_domain_set_not_null expect domain-constraint-without-not-valid
ALTER DOMAIN domain_name_2 SET NOT NULL;

-- case create_domain_with_check expect create-domain-with-check
CREATE DOMAIN domain_name_3 AS NUMERIC(15,5) CHECK (value > 0);

-- case create_domain_with_check_and_not_null expect create-domain-with-check
create domain d as t check (value > 0) not null;

-- case create_domain_plain expect ok
CREATE DOMAIN domain_name_1 AS TEXT;
CREATE DOMAIN domain_name_2 AS CHARACTER VARYING;

-- case truncate_cascade expect truncate
truncate a, b, c cascade;

-- case truncate expect truncate
truncate a;

-- case drop_schema_cascade expect drop-schema-cascade
DROP SCHEMA IF EXISTS s CASCADE;

-- case create_schema expect ok
CREATE SCHEMA s;

-- case drop_database expect drop-database
DROP DATABASE big_database;

-- case drop_database_if_exists expect drop-database
DROP DATABASE IF EXISTS big_database;

-- case drop_not_null expect drop-not-null-before-contract
ALTER TABLE "bar_tbl" ALTER COLUMN "foo_col" DROP NOT NULL;

-- case drop_default expect drop-default-not-null
ALTER TABLE tbl ALTER COLUMN c DROP DEFAULT;

-- case drop_default_of_a_not_null_column expect drop-default-not-null
ALTER TABLE tbl ADD COLUMN c int NOT NULL DEFAULT 0;
ALTER TABLE tbl ALTER COLUMN c DROP DEFAULT;

-- case drop_default_of_a_nullable_column expect ok
ALTER TABLE tbl ADD COLUMN c int DEFAULT 0;
ALTER TABLE tbl ALTER COLUMN c DROP DEFAULT;

-- case set_default expect ok
ALTER TABLE tbl ALTER COLUMN c SET DEFAULT 1;

-- case vacuum_full expect vacuum-full
VACUUM FULL t;

-- case vacuum_full_option expect vacuum-full
VACUUM (FULL, ANALYZE) t;

-- case vacuum_full_false expect ok
VACUUM (FULL FALSE) t;

-- case vacuum_full_off expect ok
VACUUM (FULL off) t;

-- case vacuum_analyze expect ok
VACUUM (ANALYZE) t;

-- case cluster expect cluster
CLUSTER t USING t_pkey;

-- case create_index expect create-index-not-concurrently
CREATE INDEX "field_name_idx" ON "table_name" ("field_name");

-- case create_index_concurrently expect ok
CREATE INDEX CONCURRENTLY "field_name_idx" ON "table_name" ("field_name");

-- case create_index_concurrently_in_a_transaction expect concurrently-in-transaction
BEGIN;
CREATE INDEX CONCURRENTLY "field_name_idx" ON "table_name" ("field_name");
COMMIT;

-- case create_index_on_a_new_table expect ok
BEGIN;
CREATE TABLE "core_foo" ("id" serial NOT NULL PRIMARY KEY, "tenant_id" integer NULL);
CREATE INDEX "core_foo_tenant_id_4d397ef9" ON "core_foo" ("tenant_id");
COMMIT;

-- case drop_index expect drop-index-not-concurrently
DROP INDEX IF EXISTS "field_name_idx";

-- case drop_index_concurrently expect ok
DROP INDEX CONCURRENTLY IF EXISTS "field_name_idx";

-- case reindex expect reindex-not-concurrently
REINDEX INDEX my_index;

-- case reindex_concurrently expect ok
REINDEX INDEX CONCURRENTLY my_index;

-- case add_column_constant_default expect ok
ALTER TABLE "core_recipe" ADD COLUMN "foo" integer DEFAULT 10;

-- case add_column_constant_default_before_11 expect add-column-rewrites pg 10
ALTER TABLE "core_recipe" ADD COLUMN "foo" integer DEFAULT 10;

-- case add_column_volatile_default expect add-column-rewrites
ALTER TABLE "core_recipe" ADD COLUMN "foo" uuid DEFAULT gen_random_uuid();

-- case add_column_stable_default expect ok
ALTER TABLE "core_recipe" ADD COLUMN "created" timestamptz DEFAULT now();

-- case add_column_generated_stored expect add-column-rewrites
ALTER TABLE foo ADD COLUMN bar numeric GENERATED ALWAYS AS (bar + baz) STORED;

-- case add_column_not_null_without_default expect add-column-not-null
ALTER TABLE "core_recipe" ADD COLUMN "foo" integer NOT NULL;

-- case add_column_not_null_with_default expect ok
ALTER TABLE "core_recipe" ADD COLUMN "foo" integer NOT NULL DEFAULT 10;

-- case add_column_serial_primary_key expect add-column-rewrites
ALTER TABLE a ADD COLUMN id serial PRIMARY KEY;

-- case change_column_type expect alter-type-rewrites
ALTER TABLE "core_recipe" ALTER COLUMN "edits" TYPE bigint USING "edits"::bigint;

-- case rename_column expect rename-before-contract
ALTER TABLE "table_name" RENAME COLUMN "column_name" TO "new_column_name";

-- case rename_table expect rename-before-contract
ALTER TABLE "table_name" RENAME TO "new_table_name";

-- case add_unique_constraint expect unique-without-index
ALTER TABLE table_name ADD CONSTRAINT field_name_constraint UNIQUE (field_name);

-- case add_primary_key expect unique-without-index
ALTER TABLE items ADD PRIMARY KEY (id);

-- case add_exclusion_constraint expect exclude-constraint
ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&);

-- case set_not_null expect set-not-null-scans
ALTER TABLE "core_recipe" ALTER COLUMN "foo" SET NOT NULL;

-- case set_not_null_after_a_validated_check expect ok
ALTER TABLE "core_recipe" ADD CONSTRAINT foo_not_null CHECK ("foo" IS NOT NULL) NOT VALID;
ALTER TABLE "core_recipe" VALIDATE CONSTRAINT foo_not_null;
ALTER TABLE "core_recipe" ALTER COLUMN "foo" SET NOT NULL;

-- case set_not_null_after_a_validated_check_before_12 expect set-not-null-scans pg 11
ALTER TABLE "core_recipe" ADD CONSTRAINT foo_not_null CHECK ("foo" IS NOT NULL) NOT VALID;
ALTER TABLE "core_recipe" VALIDATE CONSTRAINT foo_not_null;
ALTER TABLE "core_recipe" ALTER COLUMN "foo" SET NOT NULL;

-- case drop_column expect drop-before-contract
ALTER TABLE "bar_tbl" DROP COLUMN "foo_col" CASCADE;

-- case drop_table expect drop-before-contract
DROP TABLE "table_name";

-- case update_without_where expect update-without-where
UPDATE accounts SET balance = 0;

-- case delete_without_where expect delete-without-where
DELETE FROM accounts;

-- case set_unlogged expect set-logged-rewrites
ALTER TABLE events SET UNLOGGED;

-- case set_logged expect set-logged-rewrites
ALTER TABLE events SET LOGGED;

-- case set_tablespace expect set-tablespace-rewrites
ALTER TABLE events SET TABLESPACE fast_ssd;

-- case refresh_materialized_view expect refresh-matview-not-concurrently
REFRESH MATERIALIZED VIEW daily_totals;

-- case refresh_materialized_view_concurrently expect ok
REFRESH MATERIALIZED VIEW CONCURRENTLY daily_totals;

-- case attach_partition expect attach-partition-scans
ALTER TABLE m ATTACH PARTITION m_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');

-- case attach_partition_after_a_validated_check expect ok
ALTER TABLE m_2024 ADD CONSTRAINT m_2024_bound CHECK (at >= '2024-01-01' AND at < '2025-01-01') NOT VALID;
ALTER TABLE m_2024 VALIDATE CONSTRAINT m_2024_bound;
ALTER TABLE m ATTACH PARTITION m_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
