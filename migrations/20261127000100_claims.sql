-- aimharder-refresh: superseded by 20261201000000_claims_table.sql, which
-- keeps claims in a table of the tool's own. This file once added claim
-- columns, a claim-voiding trigger and a stored refresh_due_at column to
-- auth_sessions; on an install that applied it, the later file removes
-- them. On a new install it does nothing (adding a stored generated column
-- rewrites the whole table under an exclusive lock, only for the next file
-- to drop it). Kept so that file names stay in the order they shipped in;
-- it creates nothing, so it grants nothing.
NOTIFY pgrst, 'reload schema';
