-- aimharder-refresh: claims in a table of the tool's own, and the functions
-- the tool claims and writes results through over PostgREST, with the
-- indexes its queries use (the counts and the lookup by email are in
-- 20261201000100_counts_and_lookup.sql). Replaces what
-- 20261127000100_claims.sql added to auth_sessions (the claim columns, the claim-voiding trigger, the old claim
-- function and the stored refresh_due_at column).
--
-- Apply after the earlier files in migrations/ (file-name order). Safe to
-- run more than once. PostgreSQL 14 or later (Supabase: 15); PostgREST 14.4
-- or later (hosted Supabase: 14.5). If your sessions table is not called
-- auth_sessions, replace the name below.
--
-- Why a table of its own: claiming and releasing never write auth_sessions,
-- so the web app's triggers (updated_at) never fire for a claim, and a row a
-- run does not refresh gets no new row version. A claim records a digest of
-- the credentials (token and cookies) it handed out; a result is written
-- only while the row still holds those credentials, so a member's new login
-- always wins over a call made with the old ones.
--
-- Grants: since 2026-10-30 Supabase grants new tables and functions in
-- `public` to no API role by default. This file grants service_role (the
-- secret key's role) exactly what the tool uses and keeps anon and
-- authenticated (publishable keys, signed-in members) away from all of it.

-- 1. What the claims table replaces. DROP COLUMN does not rewrite the table.
DROP TRIGGER IF EXISTS auth_sessions_void_claim_on_login ON auth_sessions;
DROP FUNCTION IF EXISTS auth_sessions_void_claim_on_login();
DROP FUNCTION IF EXISTS claim_refresh_sessions(jsonb, uuid, timestamptz, integer);
DROP INDEX IF EXISTS auth_sessions_refresh_due_at_idx;
ALTER TABLE auth_sessions DROP COLUMN IF EXISTS refresh_due_at;
ALTER TABLE auth_sessions DROP COLUMN IF EXISTS refresh_claim_run;
ALTER TABLE auth_sessions DROP COLUMN IF EXISTS refresh_claim_until;

-- 2. The claims. One row per claimed session: which run holds it, until
-- when (a lease that ends by itself if the runner dies), and the digest of
-- the credentials the run was handed. Writing the result ends the lease at
-- once and leaves credentials = 'written' (so that a write retried after
-- its answer was lost knows it landed) until the run ends or a minute
-- passes; a released claim is deleted.
CREATE TABLE IF NOT EXISTS refresh_claims (
    session_id  uuid PRIMARY KEY,
    run_id      uuid NOT NULL,
    lease_until timestamptz NOT NULL,
    credentials text NOT NULL
);
-- Only the tool reads it: no policy, so RLS hides it from every role but
-- service_role (which bypasses RLS).
CREATE INDEX IF NOT EXISTS refresh_claims_run_idx ON refresh_claims (run_id);
CREATE INDEX IF NOT EXISTS refresh_claims_lease_idx ON refresh_claims (lease_until);
ALTER TABLE refresh_claims ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON refresh_claims FROM PUBLIC, anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON refresh_claims TO service_role;

-- The tool reads and writes the sessions with the secret key's role.
GRANT SELECT, UPDATE ON auth_sessions TO service_role;

-- 3. Indexes. Every query the tool sends is served by one of these (or the
-- primary key), also at a million rows:
-- * the due walk, two keyset walks merged by the client into one order
--   (coalesce(last_refresh_date, created_at), id): refreshed sessions by
--   (last_refresh_date, id), never refreshed ones by (created_at, id). An
--   install of an earlier 20261126000000_refresh_tracking.sql has them
--   with a predicate the planner cannot match to PostgREST's `IS TRUE`
--   (that file explains): they are replaced here;
-- * refresh-one --email: lower(user_email);
-- * the counts of status and the metrics (the next file): the two above,
--   the primary key, and the small partial indexes of never refreshed rows
--   and rows with an error.
DROP INDEX IF EXISTS auth_sessions_refresh_never_idx;
DROP INDEX IF EXISTS auth_sessions_refresh_due_idx;
CREATE INDEX IF NOT EXISTS auth_sessions_due_never_idx
    ON auth_sessions (created_at, id)
    WHERE auto_refresh_enabled IS TRUE AND last_refresh_date IS NULL;
CREATE INDEX IF NOT EXISTS auth_sessions_due_refreshed_idx
    ON auth_sessions (last_refresh_date, id)
    WHERE auto_refresh_enabled IS TRUE;
CREATE INDEX IF NOT EXISTS auth_sessions_lower_email_idx
    ON auth_sessions (lower(user_email));
CREATE INDEX IF NOT EXISTS auth_sessions_never_refreshed_idx
    ON auth_sessions (id) WHERE last_refresh_date IS NULL;
CREATE INDEX IF NOT EXISTS auth_sessions_refresh_error_idx
    ON auth_sessions (id) WHERE last_refresh_error IS NOT NULL;

-- 4. The credentials digest: SHA-256 of the token, a zero byte and the
-- cookies as jsonb text.
CREATE OR REPLACE FUNCTION refresh_credentials_digest(p_token text, p_cookies jsonb)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = ''
AS $$
    SELECT encode(sha256(convert_to(coalesce(p_token, ''), 'UTF8')
                         || '\x00'::bytea
                         || convert_to(coalesce(p_cookies::text, ''), 'UTF8')), 'hex');
$$;

-- The functions below serve one sessions table, auth_sessions, and say so
-- to a tool configured for another (AIMHARDER_SESSIONS_TABLE) as PostgreSQL
-- would for a missing table.
CREATE OR REPLACE FUNCTION refresh_check_table(p_table text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = ''
AS $$
BEGIN
    IF p_table IS DISTINCT FROM 'auth_sessions' THEN
        RAISE EXCEPTION 'relation "%" does not exist (these functions serve auth_sessions)', p_table
              USING ERRCODE = '42P01';
    END IF;
END
$$;

-- 5. Claims the sessions of p_ids (a JSON array of ids) for run p_run, for
-- p_lease_seconds: those no other run holds (a lapsed claim is taken over,
-- the run's own is renewed), still present, not refreshed since the run
-- started (p_started_ms_ago before now: a duration the runner measures,
-- so that its clock being off never matters), and (with p_enabled_only)
-- with auto refresh on. Returns them as they are now; the credentials
-- returned are the ones the claim records.
CREATE OR REPLACE FUNCTION refresh_claim(
    p_table text,
    p_run uuid,
    p_ids jsonb,
    p_started_ms_ago bigint,
    p_lease_seconds integer,
    p_enabled_only boolean DEFAULT false
)
RETURNS SETOF auth_sessions
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_taken uuid[];
    v_not_since timestamptz := now() - make_interval(secs => p_started_ms_ago / 1000.0);
BEGIN
    PERFORM refresh_check_table(p_table);
    -- The run's own claims (a claim taken again right before its call):
    -- renewed, waiting for the run's own renewer if it holds one.
    WITH retaken AS (
        UPDATE refresh_claims c
           SET lease_until = now() + make_interval(secs => p_lease_seconds),
               credentials = ''
         WHERE c.run_id = p_run
           AND c.credentials <> 'written'
           AND c.session_id IN (SELECT value::uuid FROM jsonb_array_elements_text(p_ids))
        RETURNING c.session_id
    )
    SELECT array_agg(session_id) INTO v_taken FROM retaken;

    -- Lapsed claims of other runs: taken over. A claim row locked right now
    -- (its result being written, or another run taking it) is skipped,
    -- never waited for: claiming then never waits on a write, so claims and
    -- writes cannot deadlock.
    WITH wanted AS (
        SELECT DISTINCT value::uuid AS session_id
          FROM jsonb_array_elements_text(p_ids)
    ), lockable AS (
        SELECT c.session_id
          FROM refresh_claims c
          JOIN wanted w ON w.session_id = c.session_id
         WHERE c.run_id <> p_run AND c.lease_until < now()
         ORDER BY c.session_id
           FOR UPDATE OF c SKIP LOCKED
    ), taken AS (
        UPDATE refresh_claims c
           SET run_id = p_run,
               lease_until = now() + make_interval(secs => p_lease_seconds),
               credentials = ''
          FROM lockable l
         WHERE c.session_id = l.session_id
        RETURNING c.session_id
    )
    SELECT coalesce(v_taken, '{}') || coalesce(array_agg(session_id), '{}') INTO v_taken FROM taken;

    -- New claims, in id order, so that two runs claiming at once never wait
    -- on each other in a circle; one another run claims meanwhile is its.
    WITH wanted AS (
        SELECT DISTINCT value::uuid AS session_id
          FROM jsonb_array_elements_text(p_ids)
    ), fresh AS (
        INSERT INTO refresh_claims (session_id, run_id, lease_until, credentials)
        SELECT w.session_id, p_run, now() + make_interval(secs => p_lease_seconds), ''
          FROM wanted w
         WHERE NOT EXISTS (SELECT 1 FROM refresh_claims c WHERE c.session_id = w.session_id)
         ORDER BY w.session_id
        ON CONFLICT (session_id) DO NOTHING
        RETURNING session_id
    )
    SELECT coalesce(v_taken, '{}') || coalesce(array_agg(session_id), '{}') INTO v_taken FROM fresh;
    IF cardinality(v_taken) = 0 THEN
        RETURN;
    END IF;

    -- Record the credentials handed out, read in the same statement as the
    -- rows returned.
    RETURN QUERY
    WITH held AS (
        UPDATE refresh_claims c
           SET credentials = refresh_credentials_digest(s.aimharder_token, s.aimharder_cookies)
          FROM auth_sessions s
         WHERE c.session_id = ANY (v_taken)
           AND c.run_id = p_run
           AND s.id = c.session_id
           AND (s.last_refresh_date IS NULL OR s.last_refresh_date < v_not_since)
           AND (NOT p_enabled_only OR s.auto_refresh_enabled IS TRUE)
        RETURNING s.*
    )
    SELECT * FROM held;

    -- Sessions gone, refreshed since or switched off: no claim.
    DELETE FROM refresh_claims c
     WHERE c.session_id = ANY (v_taken) AND c.run_id = p_run AND c.credentials = '';
END
$$;

-- 6. Renews run p_run's claims on p_ids for p_lease_seconds from now (a call
-- that runs long); returns the ids renewed. A claim whose result was
-- written meanwhile stays ended; one being written right now is skipped
-- (it needs no renewal), never waited for.
CREATE OR REPLACE FUNCTION refresh_renew(p_run uuid, p_ids jsonb, p_lease_seconds integer)
RETURNS TABLE (session_id uuid)
LANGUAGE sql
VOLATILE
SECURITY INVOKER
SET search_path FROM CURRENT
AS $$
    WITH held AS (
        SELECT c.session_id
          FROM refresh_claims c
         WHERE c.run_id = p_run
           AND c.credentials <> 'written'
           AND c.session_id IN (SELECT value::uuid FROM jsonb_array_elements_text(p_ids))
         ORDER BY c.session_id
           FOR UPDATE SKIP LOCKED
    )
    UPDATE refresh_claims c
       SET lease_until = now() + make_interval(secs => p_lease_seconds)
      FROM held h
     WHERE c.session_id = h.session_id
    RETURNING c.session_id;
$$;

-- 7. Gives back run p_run's claims on p_ids (sessions it will not call), and
-- its marks of written results, in one request; also clears claims of dead
-- runs that lapsed an hour ago
-- (their sessions deleted since, so nobody took them over). Returns how many
-- of p_ids it gave back (a table of one row: PostgREST and postrust answer
-- a scalar in different shapes, a table the same way).
CREATE OR REPLACE FUNCTION refresh_release(p_run uuid, p_ids jsonb)
RETURNS TABLE (released integer)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path FROM CURRENT
AS $$
BEGIN
    DELETE FROM refresh_claims c
     WHERE c.run_id = p_run
       AND c.session_id IN (SELECT value::uuid FROM jsonb_array_elements_text(p_ids));
    GET DIAGNOSTICS released = ROW_COUNT;
    DELETE FROM refresh_claims c WHERE c.run_id = p_run AND c.credentials = 'written';
    -- Rows locked right now are someone's business: skipped.
    DELETE FROM refresh_claims c
     WHERE c.session_id IN (SELECT d.session_id FROM refresh_claims d
                             WHERE d.lease_until < now() - interval '1 hour'
                               FOR UPDATE SKIP LOCKED);
    RETURN NEXT;
END
$$;

-- 8. Writes one result of run p_run (see refresh_write); returns its fate:
-- 'written', 'changed' (new credentials stored meanwhile, or the claim was
-- lost), 'deleted', or 'conflict' (refresh_count is no longer p_expected).
-- Times are the database's: now(), less how long ago the answer came
-- (answered_ms_ago), or a journaled refreshed_at no later than now().
CREATE OR REPLACE FUNCTION refresh_write_one(p_run uuid, p_result jsonb, OUT fate text, OUT current_count integer)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_id uuid := (p_result->>'id')::uuid;
    v_outcome text := p_result->>'outcome';
    v_credentials text;
    v_at timestamptz;
    v_sets text[];
    v_digest text;
    v_rows integer;
BEGIN
    SELECT c.credentials INTO v_credentials
      FROM refresh_claims c
     WHERE c.session_id = v_id AND c.run_id = p_run
       FOR UPDATE;
    IF v_credentials = 'written' THEN
        -- Written already: this is a retry of a write whose answer was lost.
        SELECT s.refresh_count INTO current_count FROM auth_sessions s WHERE s.id = v_id;
        fate := 'written';
        RETURN;
    END IF;
    IF NOT FOUND THEN
        -- Released, or taken over by another run after the lease lapsed:
        -- this result must not be written.
        SELECT s.refresh_count INTO current_count FROM auth_sessions s WHERE s.id = v_id;
        fate := CASE WHEN FOUND THEN 'changed' ELSE 'deleted' END;
        RETURN;
    END IF;

    v_at := CASE
        WHEN p_result ? 'refreshed_at' THEN least((p_result->>'refreshed_at')::timestamptz, now())
        ELSE now() - make_interval(secs => coalesce((p_result->>'answered_ms_ago')::double precision, 0) / 1000)
    END;
    IF v_outcome = 'refreshed' THEN
        v_sets := ARRAY['refresh_count = coalesce(s.refresh_count, 0) + 1',
                        'last_refresh_date = $3',
                        'last_refresh_error = NULL'];
        -- Only columns that change are named, so that no trigger on a column
        -- fires for a value written back unchanged.
        IF p_result ? 'token' THEN v_sets := array_append(v_sets, 'aimharder_token = $4->>''token'''); END IF;
        IF p_result ? 'cookies' THEN v_sets := array_append(v_sets, 'aimharder_cookies = $4->''cookies'''); END IF;
        IF p_result ? 'fingerprint' THEN v_sets := array_append(v_sets, 'fingerprint = $4->>''fingerprint'''); END IF;
    ELSE
        v_sets := ARRAY['last_refresh_error = left(''['' || to_char($3 AT TIME ZONE ''UTC'', ''YYYY-MM-DD"T"HH24:MI:SS"Z"'') || ''] '' || ($4->>''error''), 500)'];
        IF v_outcome = 'expired' THEN v_sets := array_append(v_sets, 'auto_refresh_enabled = false'); END IF;
    END IF;
    -- The conditions sit in the UPDATE itself, so a concurrent writer (the
    -- web app storing a new login) is seen as it commits.
    EXECUTE format(
        'UPDATE auth_sessions s SET %s
          WHERE s.id = $1
            AND refresh_credentials_digest(s.aimharder_token, s.aimharder_cookies) = $2
            AND ($4->>''outcome'' <> ''refreshed''
                 OR s.refresh_count IS NOT DISTINCT FROM ($4->>''expected_count'')::integer)
          RETURNING s.refresh_count',
        array_to_string(v_sets, ', '))
      INTO current_count
     USING v_id, v_credentials, v_at, p_result;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    IF v_rows > 0 THEN
        fate := 'written';
        -- The lease ends now: another run may claim the session at once.
        UPDATE refresh_claims c SET credentials = 'written', lease_until = now()
         WHERE c.session_id = v_id AND c.run_id = p_run;
        RETURN;
    ELSE
        SELECT refresh_credentials_digest(s.aimharder_token, s.aimharder_cookies), s.refresh_count
          INTO v_digest, current_count
          FROM auth_sessions s WHERE s.id = v_id;
        IF NOT FOUND THEN
            fate := 'deleted';
        ELSIF v_digest IS DISTINCT FROM v_credentials THEN
            fate := 'changed';
        ELSE
            -- Same claim, same credentials, another count: read again and
            -- retry (or, for a journaled result, the row moved on).
            fate := 'conflict';
            RETURN;
        END IF;
    END IF;
    DELETE FROM refresh_claims c WHERE c.session_id = v_id AND c.run_id = p_run;
END
$$;

-- 9. Writes a batch of run p_run's results (a JSON array of objects: id,
-- outcome 'refreshed' | 'failed' | 'expired', expected_count, and token,
-- cookies, fingerprint (only when they changed), error, answered_ms_ago or
-- refreshed_at) and releases their claims, in one request. Each result is
-- written only while the run holds its claim and the row holds the
-- credentials the claim recorded; a success also only while refresh_count
-- is still expected_count. Returns each result's fate. With p_careful, a
-- result the database refuses (a value too long for its column, say) is
-- reported 'rejected' with the reason instead of failing the batch.
CREATE OR REPLACE FUNCTION refresh_write(
    p_table text,
    p_run uuid,
    p_results jsonb,
    p_careful boolean DEFAULT false
)
RETURNS TABLE (session_id uuid, fate text, current_count integer, detail text)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_result jsonb;
    v_written record;
BEGIN
    PERFORM refresh_check_table(p_table);
    -- In id order: two batches never lock the same rows in two orders.
    FOR v_result IN SELECT value FROM jsonb_array_elements(p_results) ORDER BY value->>'id' LOOP
        session_id := (v_result->>'id')::uuid;
        detail := NULL;
        IF p_careful THEN
            BEGIN
                v_written := refresh_write_one(p_run, v_result);
                fate := v_written.fate;
                current_count := v_written.current_count;
            EXCEPTION WHEN OTHERS THEN
                fate := 'rejected';
                current_count := NULL;
                detail := SQLERRM;
            END;
        ELSE
            v_written := refresh_write_one(p_run, v_result);
            fate := v_written.fate;
            current_count := v_written.current_count;
        END IF;
        RETURN NEXT;
    END LOOP;
    -- Marks of results written a while ago (by any run): no retry comes
    -- for them now.
    DELETE FROM refresh_claims c
     WHERE c.session_id IN (SELECT d.session_id FROM refresh_claims d
                             WHERE d.lease_until < now() - interval '1 minute'
                               AND d.credentials = 'written'
                               FOR UPDATE SKIP LOCKED);
END
$$;

-- 10. Who may call them: service_role only.
REVOKE EXECUTE ON FUNCTION
    refresh_credentials_digest(text, jsonb),
    refresh_check_table(text),
    refresh_claim(text, uuid, jsonb, bigint, integer, boolean),
    refresh_renew(uuid, jsonb, integer),
    refresh_release(uuid, jsonb),
    refresh_write_one(uuid, jsonb),
    refresh_write(text, uuid, jsonb, boolean)
  FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION
    refresh_credentials_digest(text, jsonb),
    refresh_check_table(text),
    refresh_claim(text, uuid, jsonb, bigint, integer, boolean),
    refresh_renew(uuid, jsonb, integer),
    refresh_release(uuid, jsonb),
    refresh_write_one(uuid, jsonb),
    refresh_write(text, uuid, jsonb, boolean)
  TO service_role;

-- PostgREST caches the schema; tell it what changed.
NOTIFY pgrst, 'reload schema';
