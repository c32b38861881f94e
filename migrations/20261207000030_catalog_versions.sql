-- A version per tenant's catalog, so that the API can keep the catalog's names in memory and
-- know, without a round trip of its own, whether what it holds is current (issue 14).
--
-- A dashboard answer names its offers, channels, segments or categories: until now one more
-- statement per read (`entity_id = ANY($3)`), whose cost grows with the ids the answer lists
-- (without it such reads took 0.1-0.6 ms less at 100k and 1M traces: BENCHMARKS.md "Reads,
-- ninth pass"). The API reads
-- a tenant's version in the statement it already runs first for every computed answer (the
-- freshness header's), and serves names from a copy loaded at that same version.
--
-- Every change to catalog_entities, whoever writes it (ingest's catalog events, the tenant
-- settings the API writes, a rebuild's swap, a hand edit), moves the tenant's version in the
-- same transaction: a trigger, not each writer. Versions come from one sequence, so a value is
-- never given twice, whatever happens to the rows: the API compares them for equality only.
-- Readers see a new version exactly when they see the change (it commits with it).
--
-- The trigger function and what it writes are named in `public`: a rebuild runs these
-- migrations again in its shadow schema, and its catalog then moves to `public` with its
-- triggers, which must keep writing the live versions (the swap moves every version on too).
-- Hence IF NOT EXISTS: in the shadow's run they are there already.
CREATE SEQUENCE IF NOT EXISTS public.catalog_version_seq;

CREATE TABLE IF NOT EXISTS public.catalog_versions (
    tenant_id text COLLATE "C" PRIMARY KEY,
    version   bigint NOT NULL
);

INSERT INTO public.catalog_versions (tenant_id, version)
SELECT tenant_id, nextval('public.catalog_version_seq') FROM (SELECT DISTINCT tenant_id FROM catalog_entities) t
ON CONFLICT (tenant_id) DO NOTHING;

CREATE OR REPLACE FUNCTION public.catalog_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A row trigger: ingest writes one entity a statement, so a statement trigger would fire
    -- as often, and a row's tenant is at hand without a transition table.
    INSERT INTO public.catalog_versions (tenant_id, version)
    VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.tenant_id ELSE NEW.tenant_id END,
            nextval('public.catalog_version_seq'))
    ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version;
    IF TG_OP = 'UPDATE' AND OLD.tenant_id IS DISTINCT FROM NEW.tenant_id THEN
        INSERT INTO public.catalog_versions (tenant_id, version)
        VALUES (OLD.tenant_id, nextval('public.catalog_version_seq'))
        ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER catalog_version_bump
    AFTER INSERT OR UPDATE OR DELETE ON catalog_entities
    FOR EACH ROW EXECUTE FUNCTION public.catalog_version_bump();

-- TRUNCATE has no rows: every tenant moves on.
CREATE OR REPLACE FUNCTION public.catalog_versions_bump_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE public.catalog_versions SET version = nextval('public.catalog_version_seq');
    RETURN NULL;
END
$$;

CREATE TRIGGER catalog_versions_bump_all
    AFTER TRUNCATE ON catalog_entities
    FOR EACH STATEMENT EXECUTE FUNCTION public.catalog_versions_bump_all();
