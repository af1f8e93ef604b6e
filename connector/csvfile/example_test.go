package csvfile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/csvfile"
)

// A sales representative's contact list, exported from a spreadsheet: one
// row cannot be read, the others sync, and a write keeps that row's text.
func Example() {
	dir, _ := os.MkdirTemp("", "csvfile-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "contacts.csv")
	os.WriteFile(path, []byte("Email,Full name,Calls\nann@example.com,Ann,3\nbob@example.com,\"Bob,4\n"), 0o644)

	conn, err := csvfile.New(csvfile.Config{
		Path:        path,
		Key:         "Email",
		Columns:     map[string]string{"Full name": "name", "Calls": "calls"},
		Types:       map[string]csvfile.Type{"calls": csvfile.Int},
		OnMalformed: func(e *csvfile.RowError) { fmt.Println("dead letter:", e.Line, e.Text) },
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	b, err := conn.Changes(ctx, "", 100)
	if err != nil {
		panic(err)
	}
	for _, r := range b.Records {
		fmt.Println(r.Key, r.Fields["name"], r.Fields["calls"])
	}
	res, _ := conn.Apply(ctx, []connector.Patch{
		{Key: "ann@example.com", Set: map[string]concord.Value{"calls": 4}, IfMatch: b.Records[0].Tag},
	})
	fmt.Println("write:", res[0].Err)
	data, _ := os.ReadFile(path)
	fmt.Print(string(data))
	// Output:
	// dead letter: 3 bob@example.com,"Bob,4
	//
	// ann@example.com Ann 3
	// write: <nil>
	// Email,Full name,Calls
	// ann@example.com,Ann,4
	// bob@example.com,"Bob,4
}
