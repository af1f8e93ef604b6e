package csvfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReader feeds arbitrary bytes as the file: reading never panics, a
// file rewritten without changes is byte for byte the same, and every
// malformed row's text is in the file.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		brokenFile,
		"id,name\na,Ann\n",
		"id,name\r\na,Ann",
		"id,name\n\n\na,\"x\ny\"\n\n",
		"id,name\nb,\"never closed\nc,Cy\n",
		"id\n\xff\n",
		"",
		"\xef\xbb\xbf",
		"id,id\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if fl, err := parseFile(data, ','); err == nil {
			out, err := fl.encode(',')
			if err != nil {
				t.Fatalf("encode of an unchanged parse: %v", err)
			}
			if !bytes.Equal(out, data) {
				t.Fatalf("unchanged rewrite differs:\n in %q\nout %q", data, out)
			}
		}
		path := filepath.Join(t.TempDir(), "f.csv")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := New(Config{Path: path, Key: "id", Types: map[string]Type{"n": Int}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Changes(t.Context(), "", 3); err != nil {
			return
		}
		ms, err := c.Malformed(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Line < 2 || !strings.Contains(string(data), m.Text) {
				t.Fatalf("malformed row %v: line below 2 or text not in the file", m)
			}
		}
	})
}
