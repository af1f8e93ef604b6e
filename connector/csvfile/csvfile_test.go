package csvfile

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/connectortest"
)

// columns of the conformance file, after the key column "id".
var columns = []string{"n", "label", "ratio", "price", "ok", "at", "blob"}

var types = map[string]Type{"n": Int, "ratio": Float, "price": Decimal, "ok": Bool, "at": Time, "blob": Bytes}

// sheet is a person editing the CSV file in a spreadsheet: in place, not
// through the connector.
type sheet struct {
	path string
	conn *Connector
}

func (s sheet) Connector() connector.Connector { return s.conn }

func (s sheet) rows() [][]string {
	data, err := os.ReadFile(s.path)
	if err != nil {
		panic(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		panic(err)
	}
	return rows
}

func (s sheet) save(rows [][]string) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.WriteAll(rows); err != nil {
		return err
	}
	return os.WriteFile(s.path, b.Bytes(), 0o644)
}

func (s sheet) Edit(ctx context.Context, key string, f map[string]concord.Value) error {
	return s.EditAll(ctx, map[string]map[string]concord.Value{key: f})
}

func (s sheet) EditAll(_ context.Context, edits map[string]map[string]concord.Value) error {
	rows := s.rows()
	for key, f := range edits {
		i := slices.IndexFunc(rows, func(r []string) bool { return r[0] == key })
		if i < 0 {
			rows = append(rows, make([]string, len(rows[0])))
			i = len(rows) - 1
			rows[i][0] = key
		}
		for field, v := range f {
			j := slices.Index(rows[0], field)
			if j < 0 {
				return errors.New("no column " + field)
			}
			cell, err := types[field].format(v)
			if err != nil {
				return err
			}
			rows[i][j] = cell
		}
	}
	return s.save(rows)
}

func (s sheet) Delete(_ context.Context, key string) error {
	rows := slices.DeleteFunc(s.rows(), func(r []string) bool { return r[0] == key })
	return s.save(rows)
}

func newSheet(t testing.TB) sheet {
	path := filepath.Join(t.TempDir(), "contacts.csv")
	if err := os.WriteFile(path, []byte("id,"+strings.Join(columns, ",")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Path: path, Key: "id", Types: types, AllowDeletes: true})
	if err != nil {
		t.Fatal(err)
	}
	return sheet{path: path, conn: c}
}

func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		New:         func(t testing.TB) connectortest.System { return newSheet(t) },
		Conditional: true,
		Deletes:     true,
		EmptyIsNull: true,
		Schema: map[string]connectortest.Kind{
			"n": connectortest.KindInt, "label": connectortest.KindString, "ratio": connectortest.KindFloat,
			"price": connectortest.KindDecimal, "ok": connectortest.KindBool, "at": connectortest.KindTime,
			"blob": connectortest.KindBytes,
		},
	})
}
