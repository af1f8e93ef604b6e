package pgstore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/checksum"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/sync/store"
)

// ErrClosed is returned by every method of a closed [Store].
var ErrClosed = errors.New("pgstore: store is closed")

// DefaultSchema is the schema a Store uses unless [WithSchema] names another.
const DefaultSchema = "concord"

// Option configures a Store in [Open] and [New].
type Option interface{ apply(*config) }

type config struct {
	schema   string
	now      func() time.Time // nil: the database server's clock
	clockSet bool
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithSchema sets the PostgreSQL schema that holds the store's tables
// (default [DefaultSchema]). Stores of independent pipelines, or tests, use
// schemas of their own; instances of one pipeline share one.
func WithSchema(name string) Option { return optionFunc(func(c *config) { c.schema = name }) }

// WithClock sets the clock by which leases are taken and expire. By default
// it is the database server's (clock_timestamp(), read in the statement
// that reads the lease): one clock for every instance, whatever their
// hosts' clocks say. Tests pass their own to expire leases without
// sleeping.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.now, c.clockSet = now, true })
}

// Store is a [store.Store] in PostgreSQL. Create it with [Open] or [New].
// Its methods are safe for concurrent use, and several Stores (in several
// processes) may share one schema.
type Store struct {
	pool    *pgxpool.Pool
	ownPool bool
	schema  string
	now     func() time.Time
	q       queries
	closed  atomic.Bool
	// auditLock is the key of the advisory lock that serialises the
	// commits appending to this schema's audit log.
	auditLock int64
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at dsn (a URL or key=value string, see
// pgxpool.ParseConfig), creates or migrates the store's schema and returns
// the Store. [Store.Close] closes the connections.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connecting: %w", err)
	}
	s, err := newStore(ctx, pool, cfg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.ownPool = true
	return s, nil
}

// New returns a Store that uses pool, after creating or migrating its
// schema (the only I/O it does; it starts no goroutine). The caller keeps
// ownership of pool: [Store.Close] does not close it.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: New needs a pool, got nil")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newStore(ctx, pool, cfg)
}

func newConfig(opts []Option) (config, error) {
	cfg := config{schema: DefaultSchema}
	for _, o := range opts {
		o.apply(&cfg)
	}
	switch {
	case cfg.schema == "" || len(cfg.schema) > 63 || strings.ContainsRune(cfg.schema, 0):
		return cfg, fmt.Errorf("pgstore: invalid schema name %q (1 to 63 bytes, no NUL)", cfg.schema)
	case cfg.clockSet && cfg.now == nil:
		return cfg, errors.New("pgstore: WithClock(nil)")
	}
	return cfg, nil
}

func newStore(ctx context.Context, pool *pgxpool.Pool, cfg config) (*Store, error) {
	h := fnv.New64a()
	h.Write([]byte("concord/pgstore/audit/" + cfg.schema))
	s := &Store{pool: pool, schema: cfg.schema, now: cfg.now, q: newQueries(cfg.schema), auditLock: int64(h.Sum64())}
	if err := migrate(ctx, pool, cfg.schema); err != nil {
		return nil, err
	}
	return s, nil
}

// Schema returns the name of the store's schema.
func (s *Store) Schema() string { return s.schema }

// Close marks the store closed, so that every later call fails with
// [ErrClosed], and closes the pool if [Open] created it (waiting for the
// connections in use to be released). Closing twice is harmless.
func (s *Store) Close() {
	if s.closed.Swap(true) {
		return
	}
	if s.ownPool {
		s.pool.Close()
	}
}

// queries holds the statements with the schema's quoted name filled in.
type queries struct {
	epoch, epochLock, epochSet                                      string
	actorGet, actorAdd                                              string
	leaseInit, leaseLock, leaseSet, leaseFree, leaseRead            string
	cursor, cursorSet                                               string
	load, pending, held, stateRev                                   string
	stateInsert, stateUpdate, dead, deadOne, deadInsert, deadDelete string
	deadOf, deadOfClass                                             string
	keys, value, valueSet, valueDelete                              string
	auditHead, auditRange, auditInsert                              string
}

func newQueries(schema string) queries {
	qs := pgx.Identifier{schema}.Sanitize()
	f := func(q string) string { return strings.ReplaceAll(q, "{schema}", qs) }
	return queries{
		epoch:     f(`SELECT epoch FROM {schema}.meta`),
		epochLock: f(`SELECT epoch FROM {schema}.meta FOR UPDATE`),
		epochSet:  f(`UPDATE {schema}.meta SET epoch = $1`),
		actorGet:  f(`SELECT number FROM {schema}.actors WHERE name = $1`),
		actorAdd: f(`INSERT INTO {schema}.actors (name, number)
			SELECT $1, COALESCE(max(number), 0) + 1 FROM {schema}.actors
			ON CONFLICT (name) DO NOTHING`),
		leaseInit: f(`INSERT INTO {schema}.leases (name, holder, token, expires) VALUES ($1, '', 0, $2)
			ON CONFLICT (name) DO NOTHING`),
		leaseLock: f(`SELECT holder, token, expires, clock_timestamp() FROM {schema}.leases WHERE name = $1 FOR UPDATE`),
		leaseRead: f(`SELECT holder, token, expires, clock_timestamp() FROM {schema}.leases WHERE name = $1`),
		leaseSet:  f(`UPDATE {schema}.leases SET holder = $2, token = $3, expires = $4 WHERE name = $1`),
		leaseFree: f(`UPDATE {schema}.leases SET holder = '', expires = $4 WHERE name = $1 AND holder = $2 AND token = $3`),
		cursor:    f(`SELECT cursor FROM {schema}.cursors WHERE system = $1`),
		cursorSet: f(`INSERT INTO {schema}.cursors (system, cursor) VALUES ($1, $2)
			ON CONFLICT (system) DO UPDATE SET cursor = excluded.cursor`),
		load:     f(`SELECT key, rev, pending, held, data FROM {schema}.states WHERE key = ANY($1)`),
		pending:  f(`SELECT key FROM {schema}.states WHERE pending ORDER BY key LIMIT $1`),
		held:     f(`SELECT key FROM {schema}.states WHERE held ORDER BY key`),
		stateRev: f(`SELECT rev FROM {schema}.states WHERE key = $1`),
		stateInsert: f(`INSERT INTO {schema}.states (key, rev, pending, held, data) VALUES ($1, 1, $2, $3, $4)
			ON CONFLICT (key) DO NOTHING`),
		stateUpdate: f(`UPDATE {schema}.states SET rev = $5 + 1, pending = $2, held = $3, data = $4
			WHERE key = $1 AND rev = $5`),
		dead:       f(`SELECT id, data FROM {schema}.dead_letters ORDER BY id`),
		deadOne:    f(`SELECT data FROM {schema}.dead_letters WHERE id = $1`),
		deadInsert: f(`INSERT INTO {schema}.dead_letters (data, key, class) VALUES ($1, $2, $3)`),
		// Index scans of dead_letters_key and dead_letters_class.
		deadOf:      f(`SELECT id, data FROM {schema}.dead_letters WHERE key = ANY($1::bytea[]) ORDER BY id`),
		deadOfClass: f(`SELECT id, data FROM {schema}.dead_letters WHERE class = $1::bytea ORDER BY id`),
		deadDelete:  f(`DELETE FROM {schema}.dead_letters WHERE id = ANY($1)`),
		// key is in the "C" collation: > and ORDER BY are byte order, as
		// for pending, and an index range scan.
		keys:  f(`SELECT key FROM {schema}.states WHERE key > $1 ORDER BY key LIMIT $2`),
		value: f(`SELECT data FROM {schema}.engine_values WHERE name = $1`),
		valueSet: f(`INSERT INTO {schema}.engine_values (name, data) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET data = excluded.data`),
		valueDelete: f(`DELETE FROM {schema}.engine_values WHERE name = $1`),
		auditHead:   f(`SELECT seq, data FROM {schema}.audit_log ORDER BY seq DESC LIMIT 1`),
		auditRange:  f(`SELECT seq, data FROM {schema}.audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`),
		auditInsert: f(`INSERT INTO {schema}.audit_log (seq, data) VALUES ($1, $2)`),
	}
}

// ErrBadText is wrapped by the error for a key or system that PostgreSQL's
// text cannot hold: invalid UTF-8 or a NUL byte. (Cursors are stored
// whatever their bytes.)
var ErrBadText = errors.New("pgstore: not storable as PostgreSQL text (invalid UTF-8 or NUL)")

func checkText(what, s string) error {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %s %q", ErrBadText, what, s)
	}
	return nil
}

// begin checks that the store is open and ctx alive.
func (s *Store) begin(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// inTx runs fn in a transaction, committed if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Actor implements [store.Store]. A new name gets max+1; concurrent
// callers (in any process) for one name get the same number.
func (s *Store) Actor(ctx context.Context, name string) (concord.Actor, error) {
	if err := s.begin(ctx); err != nil {
		return 0, fmt.Errorf("pgstore: actor %q: %w", name, err)
	}
	for attempt := 0; ; attempt++ {
		var n int64
		err := s.pool.QueryRow(ctx, s.q.actorGet, name).Scan(&n)
		if err == nil {
			return concord.Actor(n), nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("pgstore: actor %q: %w", name, err)
		}
		// Two new names may pick the same max+1: the loser hits the
		// unique number and tries again. The same name racing is
		// absorbed by ON CONFLICT.
		if _, err := s.pool.Exec(ctx, s.q.actorAdd, name); err != nil && !(isUniqueViolation(err) && attempt < 20) {
			return 0, fmt.Errorf("pgstore: assigning actor %q: %w", name, err)
		}
	}
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// Epoch implements [store.Store].
func (s *Store) Epoch(ctx context.Context) (uint64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, fmt.Errorf("pgstore: epoch: %w", err)
	}
	var e int64
	if err := s.pool.QueryRow(ctx, s.q.epoch).Scan(&e); err != nil {
		return 0, fmt.Errorf("pgstore: reading the epoch: %w", err)
	}
	return uint64(e), nil
}

// NewEpoch implements [store.Store].
func (s *Store) NewEpoch(ctx context.Context) (uint64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, fmt.Errorf("pgstore: new epoch: %w", err)
	}
	var next uint64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var old int64
		if err := tx.QueryRow(ctx, s.q.epochLock).Scan(&old); err != nil {
			return err
		}
		next = store.NextEpoch(uint64(old))
		_, err := tx.Exec(ctx, s.q.epochSet, int64(next))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: new epoch: %w", err)
	}
	return next, nil
}

// AcquireLease implements [store.Store] with [store.NextLease], as a
// compare-and-set on the lease's row.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if err := s.begin(ctx); err != nil {
		return store.Lease{}, fmt.Errorf("pgstore: lease %q: %w", name, err)
	}
	// A lease the holder has and need not renew yet is returned from a
	// plain read: no transaction, no row lock, no write (an idle cycle's
	// case). Anything else (taking, renewing, refusing) goes through the
	// locked read below.
	if l, ok := s.heldLease(ctx, name, holder, ttl); ok {
		return l, nil
	}
	var l store.Lease
	var refused error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, s.q.leaseInit, name, time.Time{}); err != nil {
			return err
		}
		cur := store.Lease{Name: name}
		var token int64
		var dbNow time.Time
		if err := tx.QueryRow(ctx, s.q.leaseLock, name).Scan(&cur.Holder, &token, &cur.Expires, &dbNow); err != nil {
			return err
		}
		cur.Token = uint64(token)
		l, refused = store.NextLease(cur, name, holder, ttl, s.clock(dbNow))
		if refused != nil {
			return refused
		}
		if l.Same(cur) {
			return nil // held, and not due for renewal: nothing to write
		}
		_, err := tx.Exec(ctx, s.q.leaseSet, name, holder, int64(l.Token), l.Expires)
		return err
	})
	switch {
	case refused != nil:
		return store.Lease{}, refused
	case err != nil:
		return store.Lease{}, fmt.Errorf("pgstore: acquiring lease %q for %q: %w", name, holder, err)
	}
	return l, nil
}

// clock returns the time leases are decided by: WithClock's, or the
// database's, read with the lease.
func (s *Store) clock(db time.Time) time.Time {
	if s.now != nil {
		return s.now()
	}
	return db
}

// heldLease returns the lease name as holder has it, if a plain read
// shows it current and not due for renewal. A failed read is not an
// error here: the locked path reads again and reports it.
func (s *Store) heldLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, bool) {
	cur := store.Lease{Name: name}
	var token int64
	var dbNow time.Time
	if err := s.pool.QueryRow(ctx, s.q.leaseRead, name).Scan(&cur.Holder, &token, &cur.Expires, &dbNow); err != nil || cur.Holder != holder {
		return store.Lease{}, false
	}
	cur.Token = uint64(token)
	l, err := store.NextLease(cur, name, holder, ttl, s.clock(dbNow))
	if err != nil || !l.Same(cur) {
		return store.Lease{}, false
	}
	return l, true
}

// ReleaseLease implements [store.Store].
func (s *Store) ReleaseLease(ctx context.Context, l store.Lease) error {
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("pgstore: releasing lease %q: %w", l.Name, err)
	}
	if _, err := s.pool.Exec(ctx, s.q.leaseFree, l.Name, l.Holder, int64(l.Token), time.Time{}); err != nil {
		return fmt.Errorf("pgstore: releasing lease %q of %q: %w", l.Name, l.Holder, err)
	}
	return nil
}

// Cursor implements [store.Store].
func (s *Store) Cursor(ctx context.Context, system concord.SystemID) (connector.Cursor, error) {
	if err := s.begin(ctx); err != nil {
		return "", fmt.Errorf("pgstore: cursor of %q: %w", system, err)
	}
	var c string
	err := s.pool.QueryRow(ctx, s.q.cursor, string(system)).Scan(&c)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("pgstore: cursor of %q: %w", system, err)
	}
	return decodeCursor(c)
}

// cursorEscape starts the stored form of a cursor that PostgreSQL's text
// cannot hold (invalid UTF-8, a NUL byte), followed by its bytes in
// base64; a cursor that starts with it is stored so too. Every other
// cursor is stored as it is: a connector's cursors are any bytes.
const cursorEscape = "\x01b64:"

func encodeCursor(c connector.Cursor) string {
	if checkText("", string(c)) == nil && !strings.HasPrefix(string(c), cursorEscape) {
		return string(c)
	}
	return cursorEscape + base64.StdEncoding.EncodeToString([]byte(c))
}

func decodeCursor(s string) (connector.Cursor, error) {
	rest, ok := strings.CutPrefix(s, cursorEscape)
	if !ok {
		return connector.Cursor(s), nil
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("pgstore: %w: a stored cursor starts with %q and is no base64: %v", store.ErrDamaged, cursorEscape, err)
	}
	return connector.Cursor(b), nil
}

// Load implements [store.Records] with one query for all keys.
func (s *Store) Load(ctx context.Context, keys []string) (map[string]store.State, error) {
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: loading %d states: %w", len(keys), err)
	}
	out := make(map[string]store.State, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	for _, k := range keys {
		if err := checkText("record key", k); err != nil {
			return nil, err
		}
	}
	rows, err := s.pool.Query(ctx, s.q.load, keys)
	if err != nil {
		return nil, fmt.Errorf("pgstore: loading %d states: %w", len(keys), err)
	}
	defer rows.Close()
	for rows.Next() {
		var st store.State
		var rev int64
		if err := rows.Scan(&st.Key, &rev, &st.Pending, &st.Held, &st.Data); err != nil {
			return nil, fmt.Errorf("pgstore: loading states: %w", err)
		}
		if st.Data, err = openRow(domainState, []byte(st.Key), st.Data, legacyState); err != nil {
			return nil, fmt.Errorf("pgstore: the state of record %q: %w", st.Key, err)
		}
		st.Rev = uint64(rev)
		out[st.Key] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: loading %d states: %w", len(keys), err)
	}
	return out, nil
}

// Pending implements [store.Store] (an index scan).
func (s *Store) Pending(ctx context.Context, limit int) ([]string, error) {
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: listing pending records: %w", err)
	}
	if limit <= 0 {
		return []string{}, nil
	}
	return s.keys(ctx, "pending", s.q.pending, limit)
}

// Held implements [store.Store] (an index scan).
func (s *Store) Held(ctx context.Context) ([]string, error) {
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: listing held records: %w", err)
	}
	return s.keys(ctx, "held", s.q.held)
}

func (s *Store) keys(ctx context.Context, what, query string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err == nil {
		var keys []string
		keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err == nil {
			return keys, nil
		}
	}
	return nil, fmt.Errorf("pgstore: listing %s records: %w", what, err)
}

// Value implements [store.Meta] by its primary key.
func (s *Store) Value(ctx context.Context, name string) ([]byte, error) {
	if err := store.CheckValueName(name); err != nil {
		return nil, fmt.Errorf("pgstore: value: %w", err)
	}
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: value %q: %w", name, err)
	}
	var data []byte
	err := s.pool.QueryRow(ctx, s.q.value, name).Scan(&data)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("pgstore: value %q: %w", name, err)
	}
	v, err := unsealRow(domainValue, []byte(name), data)
	if err != nil {
		return nil, fmt.Errorf("pgstore: value %q: %w", name, err)
	}
	return v, nil
}

// Keys implements [store.Records] by an index range scan of the states'
// primary key. after must be storable as text (or empty), as every key is;
// one that is not is refused with [ErrBadText].
func (s *Store) Keys(ctx context.Context, after string, limit int) ([]string, error) {
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: listing keys after %q: %w", after, err)
	}
	if err := checkText("key to list after", after); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []string{}, nil
	}
	return s.keys(ctx, "all", s.q.keys, after, int64(limit))
}

// AuditHead implements [store.AuditLog] by a backward scan of the audit
// log's primary key.
func (s *Store) AuditHead(ctx context.Context) (store.AuditEntry, error) {
	if err := s.begin(ctx); err != nil {
		return store.AuditEntry{}, fmt.Errorf("pgstore: reading the audit head: %w", err)
	}
	var seq int64
	var data []byte
	err := s.pool.QueryRow(ctx, s.q.auditHead).Scan(&seq, &data)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.AuditEntry{}, nil
	case err != nil:
		return store.AuditEntry{}, fmt.Errorf("pgstore: reading the audit head: %w", err)
	}
	return openEntry(seq, data)
}

// AuditEntries implements [store.AuditLog] by an index range scan of the
// audit log's primary key. An entry missing inside the range read is
// damage.
func (s *Store) AuditEntries(ctx context.Context, after uint64, limit int) ([]store.AuditEntry, error) {
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: reading audit entries after %d: %w", after, err)
	}
	out := []store.AuditEntry{}
	if limit <= 0 || after >= math.MaxInt64 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, s.q.auditRange, int64(after), int64(limit))
	if err != nil {
		return nil, fmt.Errorf("pgstore: reading audit entries after %d: %w", after, err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var data []byte
		if err := rows.Scan(&seq, &data); err != nil {
			return nil, fmt.Errorf("pgstore: reading audit entries after %d: %w", after, err)
		}
		if want := after + uint64(len(out)) + 1; uint64(seq) != want {
			return nil, fmt.Errorf("pgstore: %w: audit entry %d where entry %d should be: the log has a gap", ErrDamaged, seq, want)
		}
		e, err := openEntry(seq, data)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: reading audit entries after %d: %w", after, err)
	}
	return out, nil
}

// openEntry checks a stored audit entry and returns it.
func openEntry(seq int64, data []byte) (store.AuditEntry, error) {
	d, err := unsealRow(domainAudit, auditKey(uint64(seq)), data)
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("pgstore: audit entry %d: %w", seq, err)
	}
	return store.AuditEntry{Seq: uint64(seq), Data: d}, nil
}

// auditKey is what an audit entry's checksum is bound to: its Seq.
func auditKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// DeadLetters implements [store.DeadLetters]. System, Key and Class are
// returned empty (Data holds them).
func (s *Store) DeadLetters(ctx context.Context) ([]store.DeadLetter, error) {
	return s.deadLetters(ctx, s.q.dead)
}

// DeadLettersOf implements [store.DeadLetters] by the index on the key
// column. System, Key and Class are returned empty.
func (s *Store) DeadLettersOf(ctx context.Context, keys []string) ([]store.DeadLetter, error) {
	if len(keys) == 0 {
		if err := s.begin(ctx); err != nil {
			return nil, fmt.Errorf("pgstore: reading dead letters: %w", err)
		}
		return []store.DeadLetter{}, nil
	}
	bs := make([][]byte, len(keys))
	for i, k := range keys {
		bs[i] = []byte(k)
	}
	return s.deadLetters(ctx, s.q.deadOf, bs)
}

// DeadLettersOfClass implements [store.DeadLetters] by the index on the
// class column. System, Key and Class are returned empty.
func (s *Store) DeadLettersOfClass(ctx context.Context, class string) ([]store.DeadLetter, error) {
	return s.deadLetters(ctx, s.q.deadOfClass, []byte(class))
}

// deadLetters returns the dead letters that query (selecting id and data,
// in id order) returns with args.
func (s *Store) deadLetters(ctx context.Context, query string, args ...any) ([]store.DeadLetter, error) {
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: reading dead letters: %w", err)
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: reading dead letters: %w", err)
	}
	defer rows.Close()
	out := []store.DeadLetter{}
	for rows.Next() {
		var id int64
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			return nil, fmt.Errorf("pgstore: reading dead letters: %w", err)
		}
		if data, err = openRow(domainDeadLetter, nil, data, legacyDeadLetter); err != nil {
			return nil, fmt.Errorf("pgstore: dead letter %d: %w", id, err)
		}
		out = append(out, store.DeadLetter{ID: uint64(id), Data: data})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: reading dead letters: %w", err)
	}
	return out, nil
}

// DeadLetter implements [store.DeadLetters] by its primary key.
func (s *Store) DeadLetter(ctx context.Context, id uint64) (store.DeadLetter, error) {
	if err := s.begin(ctx); err != nil {
		return store.DeadLetter{}, fmt.Errorf("pgstore: reading dead letter %d: %w", id, err)
	}
	var data []byte
	err := s.pool.QueryRow(ctx, s.q.deadOne, int64(id)).Scan(&data)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || id > math.MaxInt64:
		return store.DeadLetter{}, fmt.Errorf("pgstore: %w: %d", store.ErrNotFound, id)
	case err != nil:
		return store.DeadLetter{}, fmt.Errorf("pgstore: reading dead letter %d: %w", id, err)
	}
	if data, err = openRow(domainDeadLetter, nil, data, legacyDeadLetter); err != nil {
		return store.DeadLetter{}, fmt.Errorf("pgstore: dead letter %d: %w", id, err)
	}
	return store.DeadLetter{ID: id, Data: data}, nil
}

// Commit implements [store.Store] in one transaction: the lease check
// (its row locked), then one batch of statements for the cursors, the
// dead letters and the states, each state written only if its revision is
// unchanged. Every state is checked; one stale state fails the commit with
// [store.ErrStale] naming its key and nothing is applied. On success the
// given states' Rev are incremented.
func (s *Store) Commit(ctx context.Context, c *store.Commit) error {
	if c == nil {
		return errors.New("pgstore: Commit(nil)")
	}
	if err := store.CheckValueNames(c.Values); err != nil {
		return fmt.Errorf("pgstore: commit: %w", err)
	}
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("pgstore: commit: %w", err)
	}
	for _, st := range c.States {
		if err := checkText("record key", st.Key); err != nil {
			return err
		}
	}
	for sys := range c.Cursors {
		if err := checkText("system", string(sys)); err != nil {
			return err
		}
	}
	// Seal before the transaction opens, into one buffer.
	var buf []byte
	ends := make([]int, len(c.States)+len(c.DeadLetters))
	for i, st := range c.States {
		buf = checksum.Seal(buf, domainState, []byte(st.Key), st.Data)
		ends[i] = len(buf)
	}
	for i, dl := range c.DeadLetters {
		buf = checksum.Seal(buf, domainDeadLetter, nil, dl.Data)
		ends[len(c.States)+i] = len(buf)
	}
	names := make([]string, 0, len(c.Values))
	for name := range c.Values {
		names = append(names, name)
	}
	slices.Sort(names) // rows are locked in one order (see below)
	values := make([][]byte, len(names))
	for i, name := range names {
		if v := c.Values[name]; v != nil {
			values[i] = checksum.Seal(nil, domainValue, []byte(name), v)
		}
	}
	audit := make([][]byte, len(c.Audit))
	for i, e := range c.Audit {
		audit[i] = checksum.Seal(nil, domainAudit, auditKey(e.Seq), e.Data)
	}
	data := func(i int) []byte {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		return buf[start:ends[i]:ends[i]]
	}

	// Statements go out in a fixed order (systems, then keys, then value
	// names, sorted) so that concurrent commits lock rows in one order and
	// never deadlock. A commit that appends to the audit log takes the
	// log's advisory lock after the lease's row and before any other.
	systems := make([]concord.SystemID, 0, len(c.Cursors))
	for sys := range c.Cursors {
		systems = append(systems, sys)
	}
	slices.Sort(systems)
	order := make([]int, len(c.States))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(c.States[a].Key, c.States[b].Key) })

	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if c.Lease != nil {
			if err := s.checkLease(ctx, tx, c.Lease); err != nil {
				return err
			}
		}
		if len(c.Audit) > 0 {
			if err := s.checkAudit(ctx, tx, c.Audit); err != nil {
				return err
			}
		}
		b := &pgx.Batch{}
		removed := 0
		if len(c.RemoveDeadLetters) > 0 {
			ids := make([]int64, len(c.RemoveDeadLetters))
			for i, id := range c.RemoveDeadLetters {
				ids[i] = int64(id)
			}
			b.Queue(s.q.deadDelete, ids)
			removed = 1
		}
		for _, sys := range systems {
			b.Queue(s.q.cursorSet, string(sys), encodeCursor(c.Cursors[sys]))
		}
		for i, d := range c.DeadLetters {
			b.Queue(s.q.deadInsert, data(len(c.States)+i), []byte(d.Key), []byte(d.Class))
		}
		for _, i := range order {
			st := c.States[i]
			if st.Rev == 0 {
				b.Queue(s.q.stateInsert, st.Key, st.Pending, st.Held, data(i))
			} else {
				b.Queue(s.q.stateUpdate, st.Key, st.Pending, st.Held, data(i), int64(st.Rev))
			}
		}
		for i, name := range names {
			if values[i] == nil {
				b.Queue(s.q.valueDelete, name)
			} else {
				b.Queue(s.q.valueSet, name, values[i])
			}
		}
		for i, e := range c.Audit {
			b.Queue(s.q.auditInsert, int64(e.Seq), audit[i])
		}
		br := tx.SendBatch(ctx, b)
		stale := -1
		firstAudit := b.Len() - len(c.Audit)
		for n := range b.Len() {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				if n >= firstAudit && isUniqueViolation(err) {
					// The advisory lock makes this unreachable, unless
					// the server's default isolation is above READ
					// COMMITTED: the primary key still refuses the seq.
					return fmt.Errorf("%w: audit entry %d was appended by another commit", store.ErrStale, c.Audit[n-firstAudit].Seq)
				}
				return err
			}
			if k := n - removed - len(systems) - len(c.DeadLetters); k >= 0 && k < len(order) && tag.RowsAffected() != 1 && stale < 0 {
				stale = order[k]
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		if stale >= 0 {
			return s.staleErr(ctx, tx, c.States[stale])
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrStale) {
		return fmt.Errorf("pgstore: commit of %d states, %d cursors, %d dead letters, %d values, %d audit entries: %w",
			len(c.States), len(c.Cursors), len(c.DeadLetters), len(c.Values), len(c.Audit), err)
	}
	return err
}

// checkAudit takes the audit log's advisory lock, held until the
// transaction ends, and then checks that entries continue the log. Under
// the lock, no other commit appends: the head read after it (in a
// statement of its own, so with a snapshot taken after the lock was
// granted, under READ COMMITTED) is the head this commit appends to.
func (s *Store) checkAudit(ctx context.Context, tx pgx.Tx, entries []store.AuditEntry) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.auditLock); err != nil {
		return fmt.Errorf("locking the audit log: %w", err)
	}
	var head int64
	if err := tx.QueryRow(ctx, s.q.auditHead).Scan(&head, new([]byte)); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("reading the audit head: %w", err)
	}
	return store.CheckAudit(uint64(head), entries)
}

// checkLease locks the lease's row, so that no takeover commits between
// the check and this commit, and compares its token and holder.
func (s *Store) checkLease(ctx context.Context, tx pgx.Tx, l *store.Lease) error {
	var holder string
	var token int64
	err := tx.QueryRow(ctx, s.q.leaseLock, l.Name).Scan(&holder, &token, new(time.Time), new(time.Time))
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if uint64(token) != l.Token || holder != l.Holder {
		return fmt.Errorf("%w: lease %q token %d of %q superseded by token %d of %q",
			store.ErrStale, l.Name, l.Token, l.Holder, token, holder)
	}
	return nil
}

// staleErr says which revision record st is at.
func (s *Store) staleErr(ctx context.Context, tx pgx.Tx, st store.State) error {
	var rev int64
	if err := tx.QueryRow(ctx, s.q.stateRev, st.Key).Scan(&rev); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	return fmt.Errorf("%w: record %q is at revision %d, not %d", store.ErrStale, st.Key, rev, st.Rev)
}

// Every state and dead letter is stored with a CRC-32C of its Data
// (internal/checksum; a state's is bound to its key), so that a changed
// byte is an error, never changed data. Rows written before checksums are
// read as they are, checked by decoding them (the one use this package
// makes of the engine's encoding); they gain one when next committed.
const (
	domainState      = "pgstore/state"
	domainDeadLetter = "pgstore/dead-letter"
	domainValue      = "pgstore/value"
	domainAudit      = "pgstore/audit"
)

// unsealRow checks a row's checksum (values and audit entries always have
// one) and returns its Data, a sub-slice of data.
func unsealRow(domain string, key, data []byte) ([]byte, error) {
	v, err := checksum.Unseal(domain, key, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return v, nil
}

// ErrDamaged is wrapped by the error of a Load, DeadLetters or DeadLetter
// that found a row whose checksum does not match: the database was changed
// behind the store's back, or damaged. errors.Is matches it with
// store.ErrDamaged too.
var ErrDamaged error = damagedError("pgstore: damaged row")

// damagedError is the type of ErrDamaged, which errors.Is also matches with
// store.ErrDamaged.
type damagedError string

func (e damagedError) Error() string { return string(e) }

// Is reports whether target is store.ErrDamaged.
func (e damagedError) Is(target error) bool { return target == store.ErrDamaged }

// legacyState and legacyDeadLetter check a row from before checksums by
// decoding it.
func legacyState(b []byte) error {
	_, err := state.DecodeState(b)
	return err
}

func legacyDeadLetter(b []byte) error {
	_, err := state.DecodeDeadLetter(b)
	return err
}

// openRow checks a row's checksum and returns its Data (a sub-slice of
// data). A row without one (written before checksums) never passes the
// check, and is returned as it is if it decodes (legacy); a row with one
// that fails it never decodes (the checksum is trailing bytes to the
// codec), so the error says both.
func openRow(domain string, key, data []byte, legacy func([]byte) error) ([]byte, error) {
	value, sealErr := checksum.Unseal(domain, key, data)
	if sealErr == nil {
		return value, nil
	}
	if err := legacy(data); err != nil {
		return nil, fmt.Errorf("%w: %w (and not a row from before checksums: %w)", ErrDamaged, sealErr, err)
	}
	return data, nil
}
