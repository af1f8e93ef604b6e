package concord_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
)

// CloneFields copies every level a caller could mutate: nested maps,
// slices, []byte and the typed containers, while nil and empty stay apart.
func TestCloneFieldsIsDeep(t *testing.T) {
	assert.Nil(t, concord.CloneFields(nil), "nil stays nil")
	empty := concord.CloneFields(map[string]concord.Value{})
	require.NotNil(t, empty, "an empty map stays non-nil (a present, empty record)")
	assert.Empty(t, empty)

	in := map[string]concord.Value{
		"nested":  map[string]any{"list": []any{"a", map[string]any{"deep": "x"}}},
		"bytes":   []byte{0, 1, 2},
		"strings": []string{"a", "b"},
		"labels":  map[string]string{"k": "v"},
		"nil":     nil,
		"number":  json.Number("1e400"),
		"time":    time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("", 3600)),
		"":        "empty field name",
	}
	want := map[string]concord.Value{
		"nested":  map[string]any{"list": []any{"a", map[string]any{"deep": "x"}}},
		"bytes":   []byte{0, 1, 2},
		"strings": []string{"a", "b"},
		"labels":  map[string]string{"k": "v"},
		"nil":     nil,
		"number":  json.Number("1e400"),
		"time":    time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("", 3600)),
		"":        "empty field name",
	}
	out := concord.CloneFields(in)
	require.True(t, concord.EqualValues(want, out), "the copy equals the original")

	// Mutate every level of the copy: the original must not move.
	out["nested"].(map[string]any)["list"].([]any)[1].(map[string]any)["deep"] = "changed"
	out["nested"].(map[string]any)["list"].([]any)[0] = "changed"
	out["bytes"].([]byte)[0] = 99
	out["strings"].([]string)[1] = "changed"
	out["labels"].(map[string]string)["k"] = "changed"
	out["added"] = true
	delete(out, "")
	assert.True(t, concord.EqualValues(want, in), "mutating the copy changed the original: %v", in)

	// And the other way round.
	out2 := concord.CloneFields(in)
	in["bytes"].([]byte)[2] = 42
	assert.Equal(t, []byte{0, 1, 2}, out2["bytes"])
}

// Record.Clone uses CloneFields for its fields and keeps nil and empty apart.
func TestRecordCloneKeepsNilAndEmpty(t *testing.T) {
	assert.Nil(t, concord.Record{Key: "k"}.Clone().Fields)
	r := concord.Record{Key: "k", Fields: map[string]concord.Value{}}
	assert.NotNil(t, r.Clone().Fields)
}

// Keys are refused where a store could not index them: a NUL byte, more
// than MaxKeyBytes. The error keeps the whole key and shows its start.
func TestValidateRefusesKeysNoStoreHolds(t *testing.T) {
	longest := strings.Repeat("é", concord.MaxKeyBytes/2)
	if err := (concord.Record{Key: longest}).Validate(); err != nil {
		t.Errorf("a key of MaxKeyBytes: %v", err)
	}
	for key, why := range map[string]string{
		"a\x00b":                    "NUL",
		longest + "x":               "more than 2048",
		strings.Repeat("k", 40_000): "40000 bytes",
	} {
		err := (concord.Record{Key: key}).Validate()
		var re *concord.RecordError
		if !errors.As(err, &re) || re.Key != key || !errors.Is(err, concord.ErrUnsupportedValue) || !strings.Contains(err.Error(), why) {
			t.Errorf("key of %d bytes: %v; want a RecordError with the whole key, saying %q", len(key), err, why)
			continue
		}
		if n := len(err.Error()); n > 400 {
			t.Errorf("the error for a key of %d bytes is %d bytes long: the key is shown whole", len(key), n)
		}
	}
}
