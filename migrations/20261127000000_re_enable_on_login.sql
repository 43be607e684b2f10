-- aimharder-refresh: a session disabled as expired comes back when the member
-- logs in again. Apply after 20261126000000_refresh_tracking.sql (file-name
-- order). Safe to run more than once. PostgreSQL 14 or later (Supabase: 15).
-- If your sessions table is not called auth_sessions, replace the name below.
--
-- When an UPDATE changes a row's aimharder_token or aimharder_cookies (the web
-- app stored a new login), and the row carried an error (the tool disables a
-- session it finds expired always with its error stored), the trigger sets auto_refresh_enabled = true and last_refresh_error = NULL in
-- that same UPDATE, so the web app needs no change. It touches no other column
-- and does nothing on INSERT (a new row starts enabled, with no error) or on an
-- UPDATE that leaves token and cookies as they were.
--
-- When the UPDATE that changes the credentials also writes a tracking column
-- itself, that writer's values stand:
-- * It changes last_refresh_error: an outcome is being recorded (the tool
--   storing a refresh result, say an expired answer that also carried
--   rotated cookies): the row is left exactly as written, disabled included.
--   (A successful refresh writes last_refresh_error = NULL and, on an enabled
--   row, a rotated token: the same as what the trigger would do.)
-- * It changes auto_refresh_enabled to false (or NULL): an explicit "do not
--   refresh this one" together with the new login: it stays off, and its
--   error stays. An UPDATE that writes false onto a row already false cannot
--   be told apart from one that does not mention the column; it is taken as
--   a new login and enabled. To keep such a row off, update it on its own
--   after the new login, or not together with the token and cookies.
-- * It changes auto_refresh_enabled to true: enabled, and the old error is
--   cleared with it.

CREATE OR REPLACE FUNCTION auth_sessions_re_enable_on_login()
RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
    -- Nothing recorded against the session: whatever the UPDATE writes
    -- stands. A row switched off by hand (no error) stays off.
    IF OLD.last_refresh_error IS NULL THEN
        RETURN NEW;
    END IF;
    -- The writer records an outcome itself: its values stand.
    IF NEW.last_refresh_error IS DISTINCT FROM OLD.last_refresh_error THEN
        RETURN NEW;
    END IF;
    -- The writer turns auto refresh off explicitly: it stays off.
    IF NEW.auto_refresh_enabled IS DISTINCT FROM OLD.auto_refresh_enabled
       AND NEW.auto_refresh_enabled IS NOT TRUE THEN
        RETURN NEW;
    END IF;
    NEW.auto_refresh_enabled := true;
    NEW.last_refresh_error := NULL;
    RETURN NEW;
END
$$;

-- Fires only when the UPDATE names token or cookies and really changes one of
-- them (jsonb compares by value: the same cookies in another key order are
-- not a change).
CREATE OR REPLACE TRIGGER auth_sessions_re_enable_on_login
    BEFORE UPDATE OF aimharder_token, aimharder_cookies ON auth_sessions
    FOR EACH ROW
    WHEN (OLD.aimharder_token IS DISTINCT FROM NEW.aimharder_token
          OR OLD.aimharder_cookies IS DISTINCT FROM NEW.aimharder_cookies)
    EXECUTE FUNCTION auth_sessions_re_enable_on_login();

-- A trigger function: nothing calls it but the trigger.
REVOKE EXECUTE ON FUNCTION auth_sessions_re_enable_on_login() FROM PUBLIC, anon, authenticated;

NOTIFY pgrst, 'reload schema';
