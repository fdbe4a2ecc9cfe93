-- PostgreSQL only: `results` without its three foreign keys (to runs, cases and prompts).
--
-- On SQLite the run's writer writes results on a connection with `foreign_keys` off: it
-- inserts references it has just resolved itself, in the same transaction. PostgreSQL has
-- no such switch for an ordinary user (`session_replication_role` needs a superuser), and
-- there each result row's three checks are queries run by triggers at the end of the
-- writer's COPY: measured at ~80% of the server's time for a batch (100,000 rows: 1.8-1.9 s
-- with the keys, 0.33-0.35 s without, docs/store.md). The references are the writer's own
-- (the run it writes, the case and prompt rows it looked up or added in the same
-- transaction) and `store migrate` verifies copies by counts and a checksum; nothing in
-- evalwatch deletes runs, cases or prompts. The indexes are unchanged.
ALTER TABLE results
    DROP CONSTRAINT IF EXISTS results_run_ref_fkey,
    DROP CONSTRAINT IF EXISTS results_case_ref_fkey,
    DROP CONSTRAINT IF EXISTS results_prompt_ref_fkey;
