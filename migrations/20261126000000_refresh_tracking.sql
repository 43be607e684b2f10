-- aimharder-refresh: the tracking columns it reads and writes, and the
-- indexes its server-side selection uses. Safe to run more than once.
-- If your sessions table is not called auth_sessions, replace the name below.

ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS last_refresh_date TIMESTAMPTZ;
ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS refresh_count INTEGER DEFAULT 0;
ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS last_refresh_error TEXT;
ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS auto_refresh_enabled BOOLEAN DEFAULT true;

-- Due sessions are walked oldest first in two keyset passes: never refreshed
-- (by creation), then by last refresh.
CREATE INDEX IF NOT EXISTS auth_sessions_refresh_never_idx
    ON auth_sessions (created_at, id)
    WHERE auto_refresh_enabled AND last_refresh_date IS NULL;
CREATE INDEX IF NOT EXISTS auth_sessions_refresh_due_idx
    ON auth_sessions (last_refresh_date, id)
    WHERE auto_refresh_enabled;

-- PostgREST caches the schema; tell it the columns changed.
NOTIFY pgrst, 'reload schema';
