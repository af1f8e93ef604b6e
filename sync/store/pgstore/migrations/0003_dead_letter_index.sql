-- Concord pgstore, schema version 3: the dead letters indexed by record key
-- and by class (DeadLettersOf, DeadLettersOfClass: the engine looks letters
-- up by them in every cycle, instead of reading them all).
-- {schema} is replaced by the store's schema name, quoted.
--
-- Rows written before this version get their key and class from their data
-- (migrate's backfill step, in the same transaction), after which both
-- columns are NOT NULL. Both are bytea, not text: a dead letter may be
-- about a record whose key is no valid text (a NUL byte, invalid UTF-8),
-- which the states table refuses but a dead letter must keep.
ALTER TABLE {schema}.dead_letters
	ADD COLUMN key   bytea,
	ADD COLUMN class bytea;
CREATE INDEX dead_letters_key ON {schema}.dead_letters (key, id);
CREATE INDEX dead_letters_class ON {schema}.dead_letters (class, id);
