-- PostgreSQL tunes autovacuum of the identity tables in this migration; SQLite plans without
-- collected statistics (its index heuristics suit the matching queries), so nothing to do here.
SELECT 1;
