-- Concord pgstore, schema version 2: the engine's values and the audit log.
-- {schema} is replaced by the store's schema name, quoted.

-- The engine's own named values (Commit.Values), each stored with a
-- CRC-32C of its bytes bound to its name. Names are text in the "C"
-- collation, as record keys are.
CREATE TABLE {schema}.engine_values (
	name text COLLATE "C" PRIMARY KEY CHECK (name <> '' AND octet_length(name) <= 200),
	data bytea NOT NULL
);

-- The audit log (Commit.Audit): entries numbered 1, 2, 3, ... by the engine,
-- each stored with a CRC-32C of its bytes bound to its seq. The primary key
-- makes AuditEntries an index range scan, and refuses a second entry with
-- the same seq should two commits ever get past the check in Commit.
CREATE TABLE {schema}.audit_log (
	seq  bigint PRIMARY KEY CHECK (seq > 0),
	data bytea  NOT NULL
);
