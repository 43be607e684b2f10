-- aimharder-refresh: the functions `status`, the metrics and `refresh-one
-- --email` call over PostgREST: every count in one request, and a member's
-- sessions by email. Apply after 20261201000000_claims_table.sql (which
-- creates the indexes they read and refresh_check_table). Safe to run more
-- than once. If your sessions table is not called auth_sessions, replace the
-- name below.

-- 1. Every count status and the metrics report, in one request. Each
-- count is read from an index (see 3.), never by scanning the table:
-- p_stale_cutoff splits fresh from stale, p_due_cutoff and p_error_bound are
-- the due walk's (due: auto refresh on, coalesce(last_refresh_date,
-- created_at) before p_due_cutoff or unknown, and no error stamped by the
-- tool at or after p_error_bound).
CREATE OR REPLACE FUNCTION refresh_counts(
    p_table text,
    p_stale_cutoff timestamptz,
    p_due_cutoff timestamptz,
    p_error_bound text
)
RETURNS TABLE (
    total bigint,
    auto_refresh_enabled bigint,
    fresh bigint,
    stale bigint,
    never_refreshed bigint,
    with_errors bigint,
    due bigint,
    enabled_with_errors bigint
)
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM refresh_check_table(p_table);
    RETURN QUERY
    WITH enabled AS MATERIALIZED (
        SELECT
            (SELECT count(*) FROM auth_sessions s WHERE s.auto_refresh_enabled IS TRUE) AS n,
            (SELECT count(*) FROM auth_sessions s
              WHERE s.auto_refresh_enabled IS TRUE AND s.last_refresh_date >= p_stale_cutoff) AS fresh,
            (SELECT count(*) FROM auth_sessions s
              WHERE s.auto_refresh_enabled IS TRUE AND s.last_refresh_date IS NULL
                AND s.created_at >= p_stale_cutoff) AS young,
            (SELECT count(*) FROM auth_sessions s
              WHERE s.auto_refresh_enabled IS TRUE AND s.last_refresh_date < p_due_cutoff)
          + (SELECT count(*) FROM auth_sessions s
              WHERE s.auto_refresh_enabled IS TRUE AND s.last_refresh_date IS NULL
                AND (s.created_at < p_due_cutoff OR s.created_at IS NULL)) AS due_by_age
    ), errors AS MATERIALIZED (
        -- Few rows carry an error: read them through their own index.
        SELECT count(*) AS n,
               count(*) FILTER (WHERE s.auto_refresh_enabled IS TRUE) AS enabled,
               count(*) FILTER (
                   WHERE s.auto_refresh_enabled IS TRUE
                     AND s.last_refresh_error LIKE '[%' AND s.last_refresh_error >= p_error_bound
                     AND (coalesce(s.last_refresh_date, s.created_at) < p_due_cutoff
                          OR coalesce(s.last_refresh_date, s.created_at) IS NULL)) AS held_back
          FROM auth_sessions s
         WHERE s.last_refresh_error IS NOT NULL
    )
    SELECT
        (SELECT count(*) FROM auth_sessions),
        e.n,
        e.fresh,
        e.n - e.fresh - e.young,
        (SELECT count(*) FROM auth_sessions s WHERE s.last_refresh_date IS NULL),
        r.n,
        e.due_by_age - r.held_back,
        r.enabled
      FROM enabled e, errors r;
END
$$;

-- 2. The sessions of one member, by email compared without regard to case
-- (an exact address, never a pattern), oldest first; at most 100.
CREATE OR REPLACE FUNCTION refresh_sessions_by_email(p_table text, p_email text)
RETURNS SETOF auth_sessions
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM refresh_check_table(p_table);
    RETURN QUERY
    SELECT * FROM auth_sessions s
     WHERE lower(s.user_email) = lower(p_email)
     ORDER BY s.created_at, s.id
     LIMIT 100;
END
$$;

-- 3. Who may call them: service_role only.
REVOKE EXECUTE ON FUNCTION
    refresh_counts(text, timestamptz, timestamptz, text),
    refresh_sessions_by_email(text, text)
  FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION
    refresh_counts(text, timestamptz, timestamptz, text),
    refresh_sessions_by_email(text, text)
  TO service_role;

-- PostgREST caches the schema; tell it what changed.
NOTIFY pgrst, 'reload schema';
