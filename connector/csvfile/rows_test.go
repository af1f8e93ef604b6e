package csvfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// brokenFile has good rows and every kind of malformed row, with CRLF line
// endings and a BOM, as a spreadsheet exports them.
const brokenFile = "\xef\xbb\xbfid,name,qty,note\r\n" +
	"a,Ann,1,first\r\n" +
	"b,Bo\"b,2,bare quote\r\n" + // line 3: a quote in an unquoted cell
	"c,Cy,3\r\n" + // line 4: a cell short
	"d,Di,four,not a number\r\n" + // line 5: qty is an Int column
	"a,Ann again,5,duplicate\r\n" + // line 6: key a is on line 2
	",Nobody,6,no key\r\n" + // line 7: empty key
	"e,\"Ed\r\nMultiline\",7,\"quoted, with comma\"\r\n" + // lines 8-9: good
	"f,Fay,8,last\r\n"

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "contacts.csv")
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBrokenRowLosesNothing(t *testing.T) {
	path := writeFile(t, brokenFile)
	var reported []*RowError
	c, err := New(Config{Path: path, Key: "id", Types: map[string]Type{"qty": Int},
		OnMalformed: func(e *RowError) { reported = append(reported, e) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	b, err := c.Changes(ctx, "", 100)
	if err != nil {
		t.Fatalf("Changes on a file with malformed rows: %v; want the good rows", err)
	}
	var keys []string
	for _, r := range b.Records {
		keys = append(keys, r.Key)
	}
	if got, want := strings.Join(keys, ","), "a,e,f"; got != want {
		t.Errorf("Changes delivered %s; want %s (the good rows, each once)", got, want)
	}
	wantLines := map[int]string{3: "bare", 4: "3 fields", 5: `"four"`, 6: "already on line 2", 7: "key cell is empty"}
	if len(reported) != len(wantLines) {
		t.Fatalf("OnMalformed got %d rows: %v; want %d", len(reported), reported, len(wantLines))
	}
	for _, e := range reported {
		if !errors.Is(e, ErrMalformedRow) || !strings.Contains(e.Error(), fmt.Sprintf("line %d", e.Line)) {
			t.Errorf("RowError %v: want ErrMalformedRow naming line %d", e, e.Line)
		}
		if want, ok := wantLines[e.Line]; !ok || !strings.Contains(e.Error(), want) {
			t.Errorf("RowError at line %d: %v; want it to mention %q", e.Line, e, wantLines[e.Line])
		}
		if !strings.Contains(brokenFile, e.Text) || e.Text == "" {
			t.Errorf("RowError at line %d: Text %q is not the row's text", e.Line, e.Text)
		}
	}
	// Read again: nothing new to report, nothing re-delivered.
	b2, err := c.Changes(ctx, b.Next, 100)
	if err != nil || len(b2.Records) != 0 || len(reported) != 5 {
		t.Errorf("second Changes: %d records, err %v, %d reports; want 0, nil, still 5", len(b2.Records), err, len(reported))
	}

	res, err := c.Apply(ctx, []connector.Patch{
		{Key: "a", Set: map[string]concord.Value{"name": "Ann B.", "qty": 10}},
		{Key: "d", Set: map[string]concord.Value{"qty": 4}},
		{Key: "g", Set: map[string]concord.Value{"name": "Gus"}, Create: true},
		{Key: "f", Set: map[string]concord.Value{"qty": "eight"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[2].Err != nil {
		t.Errorf("patches to good rows failed: %v, %v", res[0].Err, res[2].Err)
	}
	if !errors.Is(res[1].Err, connector.ErrPermanent) || !strings.Contains(res[1].Err.Error(), "line 5") {
		t.Errorf("patch to the malformed row d: %v; want a permanent error naming line 5", res[1].Err)
	}
	var fe *FieldError
	if !errors.As(res[3].Err, &fe) || fe.Key != "f" || fe.Field != "qty" || !errors.Is(res[3].Err, connector.ErrPermanent) {
		t.Errorf("writing a string to an Int column: %v; want a permanent *FieldError naming f and qty", res[3].Err)
	}
	data, _ := os.ReadFile(path)
	got := string(data)
	for _, line := range []string{"b,Bo\"b,2,bare quote\r\n", "c,Cy,3\r\n", "d,Di,four,not a number\r\n",
		"a,Ann again,5,duplicate\r\n", ",Nobody,6,no key\r\n", "e,\"Ed\r\nMultiline\",7,\"quoted, with comma\"\r\n", "f,Fay,8,last\r\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("after Apply the file lost %q:\n%s", line, got)
		}
	}
	if !strings.HasPrefix(got, "\xef\xbb\xbfid,name,qty,note\r\n") || !strings.Contains(got, "a,Ann B.,10,first\r\n") || !strings.HasSuffix(got, "g,Gus,,\r\n") {
		t.Errorf("after Apply the file is:\n%q\nwant the BOM and header kept, row a patched in place, g appended with CRLF", got)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("file mode after rewrite %v; want 0640 kept", st.Mode().Perm())
	}

	// Row a, known before, turns malformed: it is not taken as deleted.
	os.WriteFile(path, []byte(strings.Replace(got, "a,Ann B.,10,first", "a,Ann B.,ten,first", 1)), 0o640)
	b3, err := c.Changes(ctx, b.Next, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range b3.Records {
		if r.Deleted {
			t.Errorf("record %q reported deleted while the file has malformed rows; want no deletions inferred", r.Key)
		}
	}
	if ms, err := c.Malformed(ctx); err != nil || len(ms) != 6 {
		t.Errorf("Malformed: %d rows, %v; want 6", len(ms), err)
	}
}

func TestUnterminatedQuoteKeepsNewRowsReadable(t *testing.T) {
	path := writeFile(t, "id,name\na,Ann\nb,\"never closed\nc,Cy\n")
	c, err := New(Config{Path: path, Key: "id"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Apply(t.Context(), []connector.Patch{{Key: "z", Set: map[string]concord.Value{"name": "Zed"}, Create: true}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Apply: %v %v", err, res)
	}
	recs, err := c.Get(t.Context(), []string{"z", "a"})
	if err != nil || len(recs) != 2 {
		t.Errorf("Get after creating z before an unterminated quote: %v, %v; want z and a readable", recs, err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "b,\"never closed\nc,Cy\n") {
		t.Errorf("the malformed tail was changed:\n%s", data)
	}
}

func TestAtomicRewriteCrashKeepsOldFile(t *testing.T) {
	const before = "id,name\na,Ann\nb,Bob\n"
	path := writeFile(t, before)
	c, err := New(Config{Path: path, Key: "id"})
	if err != nil {
		t.Fatal(err)
	}
	crash := errors.New("power cut")
	var tmpContent string
	c.beforeRename = func(tmp string) error {
		b, _ := os.ReadFile(tmp)
		tmpContent = string(b)
		return crash
	}
	_, err = c.Apply(t.Context(), []connector.Patch{{Key: "a", Set: map[string]concord.Value{"name": "Anne"}}})
	if !errors.Is(err, crash) || !errors.Is(err, connector.ErrTransient) {
		t.Errorf("Apply with a crash before the rename: %v; want a transient error wrapping it", err)
	}
	if data, _ := os.ReadFile(path); string(data) != before {
		t.Errorf("file after a crash before the rename:\n%s\nwant the old file intact:\n%s", data, before)
	}
	if tmpContent != "id,name\na,Anne\nb,Bob\n" {
		t.Errorf("temporary file before the rename: %q; want the whole new file", tmpContent)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	c.beforeRename = nil
	if res, err := c.Apply(t.Context(), []connector.Patch{{Key: "a", Set: map[string]concord.Value{"name": "Anne"}}}); err != nil || res[0].Err != nil {
		t.Fatalf("Apply after the crash: %v %v", err, res)
	}
	if data, _ := os.ReadFile(path); string(data) != "id,name\na,Anne\nb,Bob\n" {
		t.Errorf("file after the retried write: %q", data)
	}
}

func TestExternalEditBetweenReadAndWrite(t *testing.T) {
	path := writeFile(t, "id,name\na,Ann\nb,Bob\n")
	c, err := New(Config{Path: path, Key: "id"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	b, err := c.Changes(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	tagA := b.Records[0].Tag
	const saved = "id,name\na,Ann\nb,Bobby\n"
	c.beforeRename = func(string) error { return os.WriteFile(path, []byte(saved), 0o644) }
	_, err = c.Apply(ctx, []connector.Patch{{Key: "a", Set: map[string]concord.Value{"name": "Anne"}}})
	if !errors.Is(err, ErrFileChanged) || !connector.Retryable(err) {
		t.Errorf("Apply while someone saved the file: %v; want a retryable ErrFileChanged", err)
	}
	if data, _ := os.ReadFile(path); string(data) != saved {
		t.Errorf("file: %q; want what they saved, %q", data, saved)
	}
	c.beforeRename = nil
	// Their edit of a changes a's tag: a write conditional on the old tag fails.
	os.WriteFile(path, []byte("id,name\na,Annie\nb,Bobby\n"), 0o644)
	res, err := c.Apply(ctx, []connector.Patch{{Key: "a", Set: map[string]concord.Value{"name": "Anne"}, IfMatch: tagA}})
	if err != nil || !errors.Is(res[0].Err, connector.ErrConflict) {
		t.Errorf("Apply with the tag read before their edit: %v %v; want ErrConflict", err, res)
	}
}

func TestSnapshotSurvivesRestart(t *testing.T) {
	path := writeFile(t, "id,name\na,Ann\nb,Bob\nc,Cy\n")
	open := func() *Connector {
		c, err := New(Config{Path: path, Key: "id"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := t.Context()
	b, err := open().Changes(ctx, "", 10)
	if err != nil || len(b.Records) != 3 {
		t.Fatalf("first read: %v %v", b, err)
	}
	// While no connector runs: b is deleted, c edited, d added.
	os.WriteFile(path, []byte("id,name\na,Ann\nc,Cyd\nd,Di\n"), 0o644)
	b2, err := open().Changes(ctx, b.Next, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range b2.Records {
		got[r.Key] = fmt.Sprintf("%v %v", r.Deleted, r.Fields["name"])
	}
	want := map[string]string{"b": "true <nil>", "c": "false Cyd", "d": "false Di"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a restart, reading from the old cursor: %v; want %v", got, want)
	}

	// A damaged snapshot is an error, not a silent rebuild.
	snap := filepath.Join(filepath.Dir(path), ".contacts.csv.concord-snapshot")
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), `"seq":`) + 7
	data[i] ^= 0x01
	os.WriteFile(snap, data, 0o600)
	if _, err := open().Changes(ctx, b2.Next, 10); !errors.Is(err, ErrDamagedSnapshot) || !errors.Is(err, connector.ErrPermanent) {
		t.Errorf("Changes with a damaged snapshot: %v; want a permanent ErrDamagedSnapshot", err)
	}
	// Deleted, it is rebuilt under a new epoch: the old cursor reads everything again.
	os.Remove(snap)
	b3, err := open().Changes(ctx, b2.Next, 10)
	if err != nil || len(b3.Records) != 3 {
		t.Errorf("after deleting the snapshot, reading from an old cursor: %d records, %v; want all 3 again", len(b3.Records), err)
	}
}

func TestConfigAndFileRefused(t *testing.T) {
	for _, cfg := range []Config{
		{Key: "id"},
		{Path: "x.csv"},
		{Path: "x.csv", Key: "id", Comma: '"'},
		{Path: "x.csv", Key: "id", Columns: map[string]string{"id": "id"}},
		{Path: "x.csv", Key: "id", Columns: map[string]string{"A": "f", "B": "f"}},
		{Path: "x.csv", Key: "id", Columns: map[string]string{"A": ""}},
		{Path: "x.csv", Key: "id", Types: map[string]Type{"f": Type(99)}},
		{Path: "x.csv", Key: "id", Columns: map[string]string{"A": "a"}, Types: map[string]Type{"b": Int}},
		{Path: "x.csv", Key: "id", MaxFileSize: -1},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v): %v; want ErrConfig", cfg, err)
		}
	}
	for name, content := range map[string]string{
		"empty":       "",
		"no key":      "name,qty\nAnn,1\n",
		"dup header":  "id,name,name\n",
		"bad header":  "id,\"name\n",
		"too large":   "id,name\n" + strings.Repeat("a,b\n", 100),
		"missing col": "id,other\n",
	} {
		path := writeFile(t, content)
		cfg := Config{Path: path, Key: "id", MaxFileSize: 200}
		if name == "missing col" {
			cfg.Columns = map[string]string{"name": "name"}
		}
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Changes(t.Context(), "", 10); !errors.Is(err, ErrBadFile) || !errors.Is(err, connector.ErrPermanent) {
			t.Errorf("%s: Changes: %v; want a permanent ErrBadFile", name, err)
		}
	}
	c, _ := New(Config{Path: filepath.Join(t.TempDir(), "missing.csv"), Key: "id"})
	if _, err := c.Changes(t.Context(), "", 10); !errors.Is(err, ErrBadFile) {
		t.Errorf("Changes on a missing file: %v; want ErrBadFile", err)
	}
	path := writeFile(t, "id,name\na,Ann\n")
	c, _ = New(Config{Path: path, Key: "id"})
	for _, cur := range []connector.Cursor{"nocolon", ":5", "e:-1", "e:x", "e:99999999999999999999999"} {
		if _, err := c.Changes(t.Context(), cur, 10); !errors.Is(err, connector.ErrPermanent) {
			t.Errorf("Changes(cursor %q): %v; want a permanent error", cur, err)
		}
	}
	res, err := c.Apply(t.Context(), []connector.Patch{
		{Key: "a", Delete: true},
		{Key: "a", Set: map[string]concord.Value{"nope": "x"}},
		{Key: "a", Set: map[string]concord.Value{"name": "two\r\nlines"}},
		{Key: "x\r\ny", Set: map[string]concord.Value{"name": "x"}, Create: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !errors.Is(r.Err, connector.ErrPermanent) {
			t.Errorf("patch %d: %v; want a permanent error", i, r.Err)
		}
	}
	if data, _ := os.ReadFile(path); string(data) != "id,name\na,Ann\n" {
		t.Errorf("refused patches changed the file: %q", data)
	}
}

func TestTypes(t *testing.T) {
	bad := []struct {
		t Type
		v concord.Value
	}{
		{Int, 1.5}, {Int, uint64(1 << 63)}, {Int, "1"}, {Int, jsonNumber("1e30")},
		{Float, "x"}, {Float, jsonNumber("1e400")}, {Bool, 1}, {Time, "2024-01-01"},
		{Bytes, "x"}, {String, 1}, {Decimal, true}, {String, "\xff"},
	}
	for _, b := range bad {
		if s, err := b.t.format(b.v); err == nil {
			t.Errorf("%v.format(%#v) = %q; want an error", b.t, b.v, s)
		}
	}
	for _, c := range []struct {
		t    Type
		cell string
	}{{Int, "9223372036854775808"}, {Int, "1.0"}, {Float, "NaN"}, {Float, "Inf"}, {Float, "1e999"},
		{Decimal, "1e999999"}, {Decimal, "0x10"}, {Decimal, " 1"}, {Bool, "yes"}, {Time, "2024-13-01T00:00:00Z"},
		{Bytes, "!!"}, {String, "\xff"}} {
		if v, err := c.t.parse(c.cell); err == nil {
			t.Errorf("%v.parse(%q) = %#v; want an error", c.t, c.cell, v)
		}
	}
	for _, v := range []concord.Value{int64(-9223372036854775808), 3.0, jsonNumber("42"), uint8(7)} {
		cell, err := Int.format(v)
		if err != nil {
			t.Errorf("Int.format(%#v): %v", v, err)
			continue
		}
		back, err := Int.parse(cell)
		if err != nil || !concord.EqualValues(back, v) {
			t.Errorf("Int round trip of %#v: %q -> %#v, %v", v, cell, back, err)
		}
	}
}

func jsonNumber(s string) concord.Value { return json.Number(s) }
