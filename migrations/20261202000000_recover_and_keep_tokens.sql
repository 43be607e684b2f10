-- A success re-enables what the tool disabled; a refused write keeps the
-- rotated token.
--
-- A session the tool turned off as expired (auto_refresh_enabled false,
-- last_refresh_error set) that then succeeds (through refresh-one, or a
-- journal replay) used to have its error cleared but stay off; the
-- re-enable-on-login trigger then took it for one switched off by hand
-- and it was never refreshed again. A success result may now carry
-- `re_enable`: the write turns auto refresh back on when the row still
-- has an error. A row switched off by hand (no error) stays off.
--
-- A failure may now carry a token: the rotated token of a refresh whose
-- write was refused (a fingerprint too long for its column, say) is
-- stored alone, with the error, instead of being dropped.
--
-- Only refresh_write_one changes (same signature, so its grants stand;
-- they are repeated below for a reader of this file alone).

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
        -- A session the tool disabled (an error on it) that answers again
        -- is the tool's to turn back on; one switched off by hand (no
        -- error) stays off. Named only when asked, as above.
        IF (p_result->>'re_enable')::boolean IS TRUE THEN
            v_sets := array_append(v_sets,
                'auto_refresh_enabled = (s.auto_refresh_enabled IS TRUE OR s.last_refresh_error IS NOT NULL)');
        END IF;
    ELSE
        v_sets := ARRAY['last_refresh_error = left(''['' || to_char($3 AT TIME ZONE ''UTC'', ''YYYY-MM-DD"T"HH24:MI:SS"Z"'') || ''] '' || ($4->>''error''), 500)'];
        IF v_outcome = 'expired' THEN v_sets := array_append(v_sets, 'auto_refresh_enabled = false'); END IF;
        -- A failure may carry the rotated token of a refresh whose other
        -- values were refused: the token alone is stored, with the error.
        IF p_result ? 'token' THEN v_sets := array_append(v_sets, 'aimharder_token = $4->>''token'''); END IF;
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

REVOKE EXECUTE ON FUNCTION refresh_write_one(uuid, jsonb) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION refresh_write_one(uuid, jsonb) TO service_role;

-- PostgREST caches the schema; tell it what changed.
NOTIFY pgrst, 'reload schema';
