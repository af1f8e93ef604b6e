package sqltable

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Dialect is the SQL dialect of the database: how placeholders are written
// and which SQL the connector generates for a few operations.
type Dialect int

const (
	// SQLite (for example through modernc.org/sqlite): "?" placeholders.
	// Needs SQLite 3.35 or later (RETURNING, row values).
	SQLite Dialect = iota + 1
	// PostgreSQL (for example through github.com/jackc/pgx/v5/stdlib):
	// "$1" placeholders.
	PostgreSQL
)

// String returns the dialect's name.
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "SQLite"
	case PostgreSQL:
		return "PostgreSQL"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// placeholder returns the n-th (1-based) placeholder.
func (d Dialect) placeholder(n int) string {
	if d == PostgreSQL {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// Type is the declared type of a column: it decides which Go type a value
// read from the column has and which values a patch may write to it. See the
// package documentation for the full mapping.
type Type int

const (
	// Text: string (valid UTF-8, no NUL byte).
	Text Type = iota + 1
	// Int64: int64.
	Int64
	// Float64: float64 (finite).
	Float64
	// Bool: bool (SQLite stores 0 or 1).
	Bool
	// Decimal: json.Number holding the digits exactly as stored.
	Decimal
	// Bytes: []byte.
	Bytes
	// Time: time.Time in UTC.
	Time
)

var typeNames = map[Type]string{
	Text: "text", Int64: "int64", Float64: "float64", Bool: "bool",
	Decimal: "decimal", Bytes: "bytes", Time: "time",
}

// String returns the type's name ("text", "int64", ...).
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Column is a configured column: its name in the table and its declared
// type.
type Column struct {
	// Name is the column's name: a plain identifier
	// ([A-Za-z_][A-Za-z0-9_]*). It is quoted in the SQL the connector
	// generates, so on PostgreSQL it must match the case the column was
	// created with (unquoted names are created in lower case). It is also
	// the record's field name.
	Name string
	// Type is the column's declared type.
	Type Type
}

// Tracking selects how the change feed finds changed rows.
type Tracking int

const (
	// TrackAuto (the zero value) is TrackUpdatedAt when Config.UpdatedAt
	// is set, TrackVersion otherwise.
	TrackAuto Tracking = iota
	// TrackUpdatedAt reads changes by the UpdatedAt timestamp column,
	// with a (timestamp, key) cursor and an overlap window of
	// Config.Window.
	TrackUpdatedAt
	// TrackVersion reads changes by the Version column, which must then
	// hold a number that increases across the whole table on every write
	// (a sequence value), with a (version, key) cursor and an overlap
	// window of Config.VersionWindow sequence values.
	TrackVersion
)

// DefaultWindow is the overlap window of TrackUpdatedAt when Config.Window
// is zero.
const DefaultWindow = 5 * time.Minute

// DefaultVersionWindow is the overlap window of TrackVersion when
// Config.VersionWindow is zero.
const DefaultVersionWindow = 10_000

// Config configures a [Table]. Every name in it is checked by [New]; only
// plain identifiers are accepted.
type Config struct {
	// DB is the database. The connector never closes it.
	DB *sql.DB
	// Dialect is the database's SQL dialect. Required.
	Dialect Dialect
	// Table is the table's name, optionally schema-qualified
	// ("sales.customers"). Required.
	Table string
	// Key lists the key column(s), of type Text or Int64; together they
	// are unique. With one column the record key is the column's value
	// (an Int64 in decimal). With several, the record key joins the
	// values with "/", each value escaped first ("\" becomes "\\" and
	// "/" becomes "\/"): the columns ("a/b", 7) make the key `a\/b/7`.
	// See [EncodeKey] and [DecodeKey].
	Key []Column
	// Fields lists the field columns: the record's fields. A patch may
	// set only these. Key, UpdatedAt, Version and Deleted columns may not
	// be listed here.
	Fields []Column
	// UpdatedAt names a timestamp column holding each row's last
	// modification time: Record.Modified, and the change cursor under
	// TrackUpdatedAt. The connector sets it to Now() on every write.
	// The column must never be NULL.
	UpdatedAt string
	// Version names an integer column that changes on every write: the
	// record's Tag and the precondition of conditional writes
	// (Patch.IfMatch). Under TrackUpdatedAt it may be a per-row counter
	// (the connector writes version+1); under TrackVersion it must be
	// a table-wide sequence value (the connector writes the next one:
	// nextval(Sequence) on PostgreSQL, one more than the column's
	// maximum on SQLite). Without it, the tag is the UpdatedAt value:
	// then every writer of the table must set UpdatedAt on every change,
	// to a precision no two changes of a row share (a column to the
	// second is not enough). Two changes with one tag are one state to
	// the engine: the second is taken for the first, read again, and
	// never merged (a version tag names one state of the record).
	Version string
	// Track selects the change-tracking column; see [Tracking].
	Track Tracking
	// Sequence names the PostgreSQL sequence that numbers writes under
	// TrackVersion (required there); unused on SQLite.
	Sequence string
	// Window is how far before the newest timestamp delivered the change
	// feed reads again (TrackUpdatedAt). It must exceed the longest
	// write transaction plus the clock difference between writers; see
	// the package documentation. Zero means DefaultWindow.
	Window time.Duration
	// VersionWindow is how many sequence values before the newest one
	// delivered the change feed reads again (TrackVersion). It must
	// exceed the number of sequence values taken while the longest write
	// transaction is open. Zero means DefaultVersionWindow.
	VersionWindow int64
	// Deleted optionally names a boolean column marking soft-deleted
	// rows: they appear in the change feed as deleted records, and
	// Patch.Delete sets it. Without it, Patch.Delete removes the row and
	// the change feed cannot see deletions.
	Deleted string
	// AllowCreate permits Patch.Create (INSERT); without it such patches
	// fail with connector.ErrPermanent.
	AllowCreate bool
	// AllowDelete permits Patch.Delete; without it such patches fail with
	// connector.ErrPermanent.
	AllowDelete bool
	// Now is the clock the connector writes UpdatedAt from. Nil means
	// time.Now.
	Now func() time.Time
}

// identRE is a plain SQL identifier.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// maxIdentLen bounds identifiers (PostgreSQL's limit is 63 bytes).
const maxIdentLen = 63

// checkIdent checks a configured name; qualified allows one "schema." prefix.
func checkIdent(what, name string, qualified bool) error {
	parts := []string{name}
	if qualified {
		parts = strings.SplitN(name, ".", 2)
	}
	for _, p := range parts {
		if len(p) > maxIdentLen || !identRE.MatchString(p) {
			return &ConfigError{Setting: what, Name: name, Reason: "not a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes" + map[bool]string{true: ", optionally schema-qualified)", false: ")"}[qualified]}
		}
	}
	return nil
}

// quote quotes a checked (possibly qualified) identifier.
func quote(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}

// validate checks c and fills in defaults; it returns the checked copy.
func (c Config) validate() (Config, error) {
	if c.DB == nil {
		return c, &ConfigError{Setting: "DB", Reason: "nil"}
	}
	if c.Dialect != SQLite && c.Dialect != PostgreSQL {
		return c, &ConfigError{Setting: "Dialect", Name: c.Dialect.String(), Reason: "unknown dialect"}
	}
	if err := checkIdent("Table", c.Table, true); err != nil {
		return c, err
	}
	if len(c.Key) == 0 {
		return c, &ConfigError{Setting: "Key", Reason: "no key column"}
	}
	used := map[string]string{}
	use := func(what, name string) error {
		if err := checkIdent(what, name, false); err != nil {
			return err
		}
		low := strings.ToLower(name)
		if prev, dup := used[low]; dup {
			return &ConfigError{Setting: what, Name: name, Reason: "column already configured as " + prev}
		}
		used[low] = what
		return nil
	}
	for _, k := range c.Key {
		if err := use("Key", k.Name); err != nil {
			return c, err
		}
		if k.Type != Text && k.Type != Int64 {
			return c, &ConfigError{Setting: "Key", Name: k.Name, Reason: "key columns must be of type text or int64, not " + k.Type.String()}
		}
	}
	for _, f := range c.Fields {
		if err := use("Fields", f.Name); err != nil {
			return c, err
		}
		if _, ok := typeNames[f.Type]; !ok {
			return c, &ConfigError{Setting: "Fields", Name: f.Name, Reason: "unknown type " + f.Type.String()}
		}
	}
	for _, opt := range []struct{ what, name string }{{"UpdatedAt", c.UpdatedAt}, {"Version", c.Version}, {"Deleted", c.Deleted}} {
		if opt.name == "" {
			continue
		}
		if err := use(opt.what, opt.name); err != nil {
			return c, err
		}
	}
	if c.Track == TrackAuto {
		c.Track = TrackVersion
		if c.UpdatedAt != "" {
			c.Track = TrackUpdatedAt
		}
	}
	switch c.Track {
	case TrackUpdatedAt:
		if c.UpdatedAt == "" {
			return c, &ConfigError{Setting: "UpdatedAt", Reason: "required to track changes by timestamp"}
		}
		if c.Window < 0 {
			return c, &ConfigError{Setting: "Window", Name: c.Window.String(), Reason: "negative"}
		}
		if c.Window == 0 {
			c.Window = DefaultWindow
		}
		if c.Sequence != "" {
			return c, &ConfigError{Setting: "Sequence", Name: c.Sequence, Reason: "only used with TrackVersion"}
		}
	case TrackVersion:
		if c.Version == "" {
			return c, &ConfigError{Setting: "Version", Reason: "required to track changes by version (or set UpdatedAt)"}
		}
		if c.VersionWindow < 0 {
			return c, &ConfigError{Setting: "VersionWindow", Name: fmt.Sprint(c.VersionWindow), Reason: "negative"}
		}
		if c.VersionWindow == 0 {
			c.VersionWindow = DefaultVersionWindow
		}
		switch {
		case c.Dialect == PostgreSQL && c.Sequence == "":
			return c, &ConfigError{Setting: "Sequence", Reason: "required on PostgreSQL to track changes by version"}
		case c.Dialect == SQLite && c.Sequence != "":
			return c, &ConfigError{Setting: "Sequence", Name: c.Sequence, Reason: "not used on SQLite (the next version is one more than the maximum)"}
		case c.Sequence != "":
			if err := checkIdent("Sequence", c.Sequence, true); err != nil {
				return c, err
			}
		}
	default:
		return c, &ConfigError{Setting: "Track", Name: fmt.Sprint(int(c.Track)), Reason: "unknown tracking"}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// fingerprint identifies the table and tracking a cursor belongs to.
func (c Config) fingerprint() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%d|%s|%s|%d", c.Table, c.Track, c.UpdatedAt, c.Version, c.Dialect)
	for _, k := range c.Key {
		fmt.Fprintf(&b, "|%s:%d", k.Name, k.Type)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:6])
}
