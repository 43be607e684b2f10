-- aimharder-refresh: claims (one caller per session), the member's login
-- winning over a call made with old credentials, and one due key. Apply after
-- the earlier files in migrations/ (file-name order). Safe to run more than
-- once. PostgreSQL 14 or later (Supabase: 15). If your sessions table is not
-- called auth_sessions, replace the name below.
--
-- * refresh_claim_run / refresh_claim_until: right before calling AimHarder
--   for a session, a run claims it (its run id, and a lease that ends by
--   itself if the runner dies) through claim_refresh_sessions(), which also
--   hands back the session's current credentials. A claimed session is
--   claimed by no other run until the lease ends or the claim is released.
--   The run's write of the result is conditional on its claim and releases
--   it.
-- * A trigger voids the claim when another writer (the web app, the member
--   logging in again) changes the token or cookies: the result of a call
--   made with the old credentials is then dropped, never written over the
--   new login.
-- * refresh_due_at = coalesce(last_refresh_date, created_at), stored and
--   indexed: the one key sessions are due by and walked in, oldest first.

ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS refresh_claim_run UUID;
ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS refresh_claim_until TIMESTAMPTZ;
ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS refresh_due_at TIMESTAMPTZ
    GENERATED ALWAYS AS (COALESCE(last_refresh_date, created_at)) STORED;
CREATE INDEX IF NOT EXISTS auth_sessions_refresh_due_at_idx
    ON auth_sessions (refresh_due_at, id);

-- Claims the sessions of p_ids that no other run holds and that were not
-- refreshed since p_not_since (the start of the run: a session is refreshed
-- at most once a run), for p_lease_seconds; returns them as they are now.
-- The row locks of the UPDATE make two runs claiming at once disjoint.
CREATE OR REPLACE FUNCTION claim_refresh_sessions(
    p_ids JSONB,
    p_run UUID,
    p_not_since TIMESTAMPTZ,
    p_lease_seconds INTEGER
)
RETURNS SETOF auth_sessions
LANGUAGE sql
VOLATILE
SECURITY INVOKER
SET search_path FROM CURRENT
AS $$
    UPDATE auth_sessions
       SET refresh_claim_run = p_run,
           refresh_claim_until = now() + make_interval(secs => p_lease_seconds)
     WHERE id IN (SELECT value::uuid FROM jsonb_array_elements_text(p_ids))
       AND (refresh_claim_run IS NULL
            OR refresh_claim_run = p_run
            OR refresh_claim_until IS NULL
            OR refresh_claim_until < now())
       AND (last_refresh_date IS NULL OR last_refresh_date < p_not_since)
    RETURNING *;
$$;

-- A new login voids any claim: the tool's own write names its claim (it
-- releases it in the same UPDATE) and is left alone.
CREATE OR REPLACE FUNCTION auth_sessions_void_claim_on_login()
RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
    IF NEW.refresh_claim_run IS NOT DISTINCT FROM OLD.refresh_claim_run THEN
        NEW.refresh_claim_run := NULL;
        NEW.refresh_claim_until := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER auth_sessions_void_claim_on_login
    BEFORE UPDATE OF aimharder_token, aimharder_cookies ON auth_sessions
    FOR EACH ROW
    WHEN (OLD.aimharder_token IS DISTINCT FROM NEW.aimharder_token
          OR OLD.aimharder_cookies IS DISTINCT FROM NEW.aimharder_cookies)
    EXECUTE FUNCTION auth_sessions_void_claim_on_login();
