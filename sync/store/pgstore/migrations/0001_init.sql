-- Concord pgstore, schema version 1.
-- {schema} is replaced by the store's schema name, quoted.

-- The store's single row of metadata: the engine's epoch (a uint64 kept
-- as its two's complement bit pattern).
CREATE TABLE {schema}.meta (
	id    boolean PRIMARY KEY DEFAULT true CHECK (id),
	epoch bigint  NOT NULL
);

-- Actor numbers, assigned max+1 and never reused.
CREATE TABLE {schema}.actors (
	name   text   PRIMARY KEY,
	number bigint NOT NULL UNIQUE CHECK (number > 0)
);

-- The cursor of each system.
CREATE TABLE {schema}.cursors (
	system text PRIMARY KEY,
	cursor text NOT NULL
);

-- Record states, encoded by internal/statecodec. Keys use the "C" collation
-- so that key order is byte order, as in Go. pending and held mirror
-- RecordState.Pending() and Held(): the partial indexes make Pending and
-- Held index scans.
CREATE TABLE {schema}.states (
	key     text COLLATE "C" PRIMARY KEY,
	rev     bigint  NOT NULL CHECK (rev > 0),
	pending boolean NOT NULL,
	held    boolean NOT NULL,
	data    bytea   NOT NULL
);
CREATE INDEX states_pending ON {schema}.states (key) WHERE pending;
CREATE INDEX states_held ON {schema}.states (key) WHERE held;

-- Dead letters, encoded by internal/statecodec, oldest first by id.
CREATE TABLE {schema}.dead_letters (
	id   bigserial PRIMARY KEY,
	data bytea     NOT NULL
);

-- Leases with fencing tokens. A released lease keeps its row (holder '')
-- so that tokens never go backwards.
CREATE TABLE {schema}.leases (
	name    text        PRIMARY KEY,
	holder  text        NOT NULL,
	token   bigint      NOT NULL,
	expires timestamptz NOT NULL
);
