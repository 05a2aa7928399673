-- Parts the embedded engine set aside as broken (system.detached_parts,
-- reason broken-on-start: written while the disk was full, see
-- internal/store/recover.go) whose events the sink has replayed from the
-- stream. A part set aside by a start of the process — the sink restarting
-- the engine after inserts failed, or the process restarted by hand while
-- its disk was full — is replayed once; repeats collapse on the part.
CREATE TABLE IF NOT EXISTS {{table "recovered_parts"}} {{onCluster}}
(
    table_name   String,
    part         String,
    written_at   DateTime('UTC'),
    replayed_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "recovered_parts" "ReplacingMergeTree(replayed_at)"}}
ORDER BY (table_name, part);

{{distributed "recovered_parts" "rand()"}}
