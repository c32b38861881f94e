-- Platform operator keys (issue 10): `decision-views create-api-key --platform`.
--
-- A platform key belongs to the operators of the deployment, not to a tenant: it reads the
-- partition-level ingest status of every tenant's topics, and no tenant data. It is a role of
-- its own, 'platform', with no tenant; tenant keys keep their tenant and one of the three
-- tenant roles. The CHECK ties the two together, so no key is half of each. Existing rows are
-- tenant keys and satisfy both constraints unchanged.
ALTER TABLE api_keys ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('viewer', 'editor', 'admin', 'platform'));
ALTER TABLE api_keys ADD CONSTRAINT api_keys_platform_has_no_tenant
    CHECK ((role = 'platform') = (tenant_id IS NULL));
