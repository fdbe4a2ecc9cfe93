-- SQLite's functions that the store's queries use, as PostgreSQL functions of the same
-- meaning (installed with the migrations, replaced when this file changes): the queries are
-- then written once for both engines (src/store/db.rs).

-- The Julian day number of a time written as text (RFC 3339 or 'YYYY-MM-DD'), or 'now';
-- NULL for text that is not a time, as in SQLite. A time without an offset is UTC, as in
-- SQLite, whatever the server's or the session's TimeZone (the function sets its own: about
-- 3 µs more a call, on the few rows per query that still call it).
CREATE OR REPLACE FUNCTION julianday(t text) RETURNS double precision
LANGUAGE plpgsql STABLE SET TimeZone = 'UTC' AS $$
BEGIN
    RETURN extract(epoch FROM t::timestamptz)::double precision / 86400.0 + 2440587.5;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- Seconds since 1970 now, as in SQLite.
CREATE OR REPLACE FUNCTION unixepoch() RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT extract(epoch FROM now())::bigint $$;

-- The text at a '$.a.b' path of a JSON document written as text (NULL when absent).
CREATE OR REPLACE FUNCTION json_extract(doc text, path text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT (doc::jsonb) #>> string_to_array(substr(path, 3), '.')
$$;
