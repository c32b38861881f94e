-- The audit log (docs/api.md 5.3, issue 12): SHAP computations, regulator narratives and
-- settings changes, each with the API key that asked. Append-only: the service only inserts,
-- and a trigger refuses UPDATE and DELETE, so no bug of ours (or a stray statement) can rewrite
-- what a regulator reads. An operator who must prune it disables the trigger on purpose.
CREATE TABLE audit_log (
    tenant_id   text        NOT NULL,
    id          bigserial   NOT NULL,
    action      text        NOT NULL,
    entity_type text        NOT NULL,
    entity_id   text        NOT NULL,
    entity_name text,
    changes     jsonb       NOT NULL DEFAULT '{}',
    -- The key that asked: its name and an id (a prefix of its SHA-256, never the key).
    key_name    text        NOT NULL,
    key_id      text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_log_action ON audit_log (tenant_id, action, id);
CREATE INDEX audit_log_entity ON audit_log (tenant_id, entity_id, id);
CREATE INDEX audit_log_at ON audit_log (tenant_id, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
