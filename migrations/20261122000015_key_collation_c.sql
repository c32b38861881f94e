-- Key columns compare bytewise (COLLATE "C").
--
-- Every batch upserts tens of thousands of rows whose primary keys are text (tenant, offer,
-- channel, flow, segment, winner, event ids). Under the database's default collation every
-- btree comparison goes through strcoll (the profile showed varstr_cmp and collation lookups
-- among PostgreSQL's top symbols); under "C" it is a memcmp. Ids are opaque, so byte order is
-- the only order they need, and the API sorts its answers itself.
--
-- The block converts every text column that is part of an index, in every table of this
-- schema that exists when it runs (partitions follow their parent). Comparisons between a
-- "C" column and a default-collation column or a parameter still resolve (an explicit
-- non-default column collation wins over the default). New tables should declare their
-- text key columns COLLATE "C" themselves.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.oid::regclass AS tbl,
               string_agg(DISTINCT format('ALTER COLUMN %I TYPE text COLLATE "C"', a.attname), ', ') AS alters
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_index i ON i.indrelid = c.oid
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
         WHERE n.nspname = current_schema()
           AND c.relkind IN ('r', 'p')
           AND NOT c.relispartition
           AND a.atttypid = 'text'::regtype
           AND a.attcollation <> 'pg_catalog."C"'::regcollation
           AND c.relname <> '_sqlx_migrations'
         GROUP BY c.oid
    LOOP
        EXECUTE format('ALTER TABLE %s %s', t.tbl, t.alters);
    END LOOP;
END
$$;
