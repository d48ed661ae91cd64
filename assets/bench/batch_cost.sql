-- Where a full-speed batch's time goes, on the demo `users` table with a
-- `full_name` column: batches of 50k rows, committed one by one, with the
-- variants named in `exp.order` (comma-separated) taking turns.
--   A  range lookup + UPDATE … RETURNING + count(*) (one statement)
--   B  range lookup + UPDATE, no count
--   C  UPDATE given both bounds (no lookup)
-- Run by batch_cost.sh; prints the time per batch of each variant.
DO $$
DECLARE
  lo bigint := 0; hi bigint; n bigint; u bigint; t0 timestamptz; i int := 0; v text;
  variants text[] := string_to_array(current_setting('exp.order'), ',');
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS res (variant text, ms float8);
  LOOP
    v := variants[1 + (i % array_length(variants, 1))];
    t0 := clock_timestamp();
    IF v = 'A' THEN
      WITH b AS (SELECT max(k) hi, count(*) n FROM (SELECT id k FROM users WHERE id > lo ORDER BY id LIMIT 50000) s),
           up AS (UPDATE users SET full_name = name WHERE id > lo AND id <= (SELECT b.hi FROM b) RETURNING 1)
      SELECT (SELECT b.hi FROM b), (SELECT b.n FROM b), (SELECT count(*) FROM up) INTO hi, n, u;
    ELSIF v = 'B' THEN
      WITH b AS (SELECT max(k) hi, count(*) n FROM (SELECT id k FROM users WHERE id > lo ORDER BY id LIMIT 50000) s),
           up AS (UPDATE users SET full_name = name WHERE id > lo AND id <= (SELECT b.hi FROM b))
      SELECT (SELECT b.hi FROM b), (SELECT b.n FROM b) INTO hi, n;
    ELSE
      hi := lo + 50000;
      UPDATE users SET full_name = name WHERE id > lo AND id <= hi;
      GET DIAGNOSTICS n = ROW_COUNT;
      IF n = 0 THEN hi := NULL; END IF;
    END IF;
    EXIT WHEN hi IS NULL;
    INSERT INTO res VALUES (v, extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;
    lo := hi; i := i + 1;
  END LOOP;
END $$;
SELECT variant, count(*) AS batches, round(min(ms)::numeric, 1) AS min_ms,
       round(avg(ms)::numeric, 1) AS avg_ms, round(max(ms)::numeric, 1) AS max_ms
FROM res GROUP BY 1 ORDER BY 1;
