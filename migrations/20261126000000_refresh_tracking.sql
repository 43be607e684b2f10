-- aimharder-refresh: the tracking columns it reads and writes, and the
-- indexes its server-side selection uses. Safe to run more than once.
-- If your sessions table is not called auth_sessions, replace the name below.

ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS last_refresh_date TIMESTAMPTZ;
ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS refresh_count INTEGER DEFAULT 0;
ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS last_refresh_error TEXT;
ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS auto_refresh_enabled BOOLEAN DEFAULT true;

-- Due sessions are walked oldest first by two keyset walks: never
-- refreshed (by creation), and refreshed (by last refresh). The predicate
-- is written `IS TRUE`, as PostgREST writes the filter
-- (auto_refresh_enabled=is.true): the planner matches a partial index only
-- to a condition it can prove from, and `IS TRUE` proves nothing about a
-- predicate written as a bare boolean.
CREATE INDEX IF NOT EXISTS auth_sessions_due_never_idx
    ON auth_sessions (created_at, id)
    WHERE auto_refresh_enabled IS TRUE AND last_refresh_date IS NULL;
CREATE INDEX IF NOT EXISTS auth_sessions_due_refreshed_idx
    ON auth_sessions (last_refresh_date, id)
    WHERE auto_refresh_enabled IS TRUE;

-- The tool reads and writes the sessions with the secret key's role.
GRANT SELECT, UPDATE ON auth_sessions TO service_role;

-- PostgREST caches the schema; tell it the columns changed.
NOTIFY pgrst, 'reload schema';
