package pgstore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/concordsync/concord/internal/canary"
	"github.com/concordsync/concord/internal/enginetest"
)

// A canary in a sensitive field appears in no output of the engine and
// nowhere in the store's tables: every row of every table of the schema,
// as PostgreSQL prints it (bytea in hex and as escaped text).
func TestSensitiveCanariesOnPostgreSQL(t *testing.T) {
	schema := newSchema(t)
	st := openStore(t, schema)
	pool := adminPool(t)
	canary.Run(t, st, func(t *testing.T) []byte {
		ctx := context.Background()
		rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, schema)
		if err != nil {
			t.Fatal(err)
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(tables) < 5 {
			t.Fatalf("tables of %s: %v, %v", schema, tables, err)
		}
		var dump bytes.Buffer
		for _, table := range tables {
			{
				q := `SELECT t::text FROM ` + pgx.Identifier{schema, table}.Sanitize() + ` t`
				rows, err := pool.Query(ctx, q)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				for _, s := range texts {
					dump.WriteString(s)
					dump.WriteByte('\n')
					// bytea prints as \x<hex>: decode it, so that a
					// plaintext inside is found too.
					dump.Write(unhex(s))
				}
			}
		}
		return dump.Bytes()
	})
}

// unhex decodes every run of \x-prefixed hex digits in s.
func unhex(s string) []byte {
	var out []byte
	for i := 0; i+2 < len(s); i++ {
		if s[i] != '\\' || s[i+1] != 'x' {
			continue
		}
		j := i + 2
		for j+1 < len(s) && isHex(s[j]) && isHex(s[j+1]) {
			out = append(out, fromHex(s[j])<<4|fromHex(s[j+1]))
			j += 2
		}
		out = append(out, '\n')
		i = j
	}
	return out
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

func fromHex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// Keys no store can hold (a NUL byte: PostgreSQL's text) are dead-lettered
// at the boundary; before, one failed every load of every cycle.
func TestHostileKeysDoNotStopThePipeline(t *testing.T) {
	enginetest.HostileKeys(t, openStore(t, newSchema(t)))
}
