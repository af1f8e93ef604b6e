package sync_test

import (
	"errors"
	"fmt"

	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
)

// New checks the whole Config before anything runs. Every error it returns
// matches ErrConfig, and says what is wrong; an underlying cause stays
// reachable with errors.Is and errors.As.
func ExampleNew_errConfig() {
	_, err := recsync.New(recsync.Config{
		Systems: []recsync.System{
			{ID: "portal", Connector: fake.New("portal")},
			{ID: "crm", Connector: fake.New("crm")},
		},
		Groups: map[string][]string{"address": {"street"}}, // a group of one field
	})
	if errors.Is(err, recsync.ErrConfig) {
		fmt.Println("configuration refused:", err)
	}

	_, err = recsync.New(recsync.Config{Systems: []recsync.System{{ID: "portal", Connector: fake.New("portal")}}})
	fmt.Println(errors.Is(err, recsync.ErrConfig), err)
	// Output:
	// configuration refused: concord: invalid config: group "address": a group needs at least two fields, got 1
	// true concord: invalid config: need at least two systems, got 1
}
