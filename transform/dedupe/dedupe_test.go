package dedupe_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform/dedupe"
)

// contact builds a contact record.
func contact(key, first, last, email, phone, street, postal string) concord.Record {
	return concord.Record{Key: key, Fields: map[string]concord.Value{
		"first_name": first, "last_name": last, "email": email, "phone": phone,
		"street": street, "postal_code": postal,
	}}
}

var contactConfig = dedupe.Config{
	Name:       []string{"first_name", "last_name"},
	Email:      "email",
	Phone:      "phone",
	Address:    []string{"street"},
	PostalCode: "postal_code",
}

func newFinder(t testing.TB, cfg dedupe.Config) *dedupe.Finder {
	t.Helper()
	f, err := dedupe.New(cfg)
	require.NoError(t, err)
	return f
}

// pair is a suggestion reduced to what the table tests compare.
type pair struct {
	A, B  string
	Match dedupe.Match
}

func pairs(res *dedupe.Result) []pair {
	var out []pair
	for _, s := range res.Suggestions {
		out = append(out, pair{s.A, s.B, s.Match})
	}
	return out
}

func TestFind(t *testing.T) {
	tests := []struct {
		name string
		recs []concord.Record
		want []pair
	}{
		{"email differs in case and spaces", []concord.Record{
			contact("1", "Ada", "Lovelace", "Ada@Example.com ", "", "", ""),
			contact("2", "Augusta", "King", "ada@example.com", "", "", ""),
		}, []pair{{"1", "2", dedupe.Exact}}},
		{"phone formatted differently", []concord.Record{
			contact("1", "Ada", "Lovelace", "", "+41 44 668 18 00", "", ""),
			contact("2", "A.", "King", "", "044 668 18 00", "", ""),
			contact("3", "Bob", "Smith", "", "(044) 668-1801", "", ""),
		}, []pair{{"1", "2", dedupe.Exact}}},
		{"short phone numbers are ignored", []concord.Record{
			contact("1", "Ada", "Lovelace", "", "112", "", ""),
			contact("2", "Bob", "Smith", "", "112", "", ""),
		}, nil},
		{"typo in name, same address", []concord.Record{
			contact("1", "Martha", "Stewart", "m@a.test", "", "12 Oak Street", "8004"),
			contact("2", "Marhta", "stewart", "m@b.test", "", "12  OAK street", "8004"),
		}, []pair{{"1", "2", dedupe.Fuzzy}}},
		{"same name, other house number", []concord.Record{
			contact("1", "Martha", "Stewart", "", "", "12 Oak Street", "8004"),
			contact("2", "Martha", "Stewart", "", "", "14 Oak Street", "8004"),
		}, nil},
		{"same address, other person", []concord.Record{
			contact("1", "Martha", "Stewart", "", "", "12 Oak Street", "8004"),
			contact("2", "Peter", "Stewart", "", "", "12 Oak Street", "8004"),
		}, nil},
		{"name only when no address", []concord.Record{
			contact("1", "Jellyfish", "Smith", "", "", "", ""),
			contact("2", "Jellyfihs", "Smith", "", "", "", ""),
		}, []pair{{"1", "2", dedupe.Fuzzy}}},
		{"no names, no fuzzy evidence", []concord.Record{
			contact("1", "", "", "", "", "", ""),
			contact("2", "", "", "", "", "", ""),
		}, nil},
		{"exact wins over fuzzy and ranks first", []concord.Record{
			contact("1", "Martha", "Stewart", "", "", "12 Oak Street", "8004"),
			contact("2", "Martha", "Stewart", "", "", "12 Oak Street", "8004"),
			contact("3", "Ann", "Lee", "lee@x.test", "", "", ""),
			contact("4", "Anne", "Li", "LEE@x.test", "", "", ""),
		}, []pair{{"3", "4", dedupe.Exact}, {"1", "2", dedupe.Fuzzy}}},
		{"deleted records are skipped", []concord.Record{
			contact("1", "Ada", "Lovelace", "ada@example.com", "", "", ""),
			{Key: "2", Deleted: true, Fields: map[string]concord.Value{"email": "ada@example.com"}},
		}, nil},
	}
	f := newFinder(t, contactConfig)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := f.Find(t.Context(), tt.recs)
			require.NoError(t, err)
			if diff := cmp.Diff(tt.want, pairs(res)); diff != "" {
				t.Errorf("suggestions differ (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFindEvidence(t *testing.T) {
	recs := []concord.Record{
		contact("b", "Marhta", "Stewart", "", "+1 555 0100 200", "12 Oak Street", "8004"),
		contact("a", "Martha", "Stewart", "", "5550100200", "12 oak st.", "8004"),
	}
	res, err := newFinder(t, contactConfig).Find(t.Context(), recs)
	require.NoError(t, err)
	want := []dedupe.Suggestion{{A: "a", B: "b", Match: dedupe.Exact, Score: 1, Evidence: []dedupe.Evidence{
		{Field: "phone", Score: 1, A: "550100200", B: "550100200"},
	}}}
	if diff := cmp.Diff(want, res.Suggestions); diff != "" {
		t.Errorf("suggestions differ (-want +got):\n%s", diff)
	}

	// Without the phone, the same pair is a fuzzy match with every score:
	// first name 0.9611 (MARTHA/MARHTA), last name 1, so name 0.9611 (the
	// least similar part); street 0.92 (Jaro 0.8667, prefix "oak "),
	// postal 1; in all 0.5*0.9611+0.35*0.92+0.15*1.
	cfg := contactConfig
	cfg.Phone = ""
	res, err = newFinder(t, cfg).Find(t.Context(), recs)
	require.NoError(t, err)
	want = []dedupe.Suggestion{{A: "a", B: "b", Match: dedupe.Fuzzy, Score: 0.9526, Evidence: []dedupe.Evidence{
		{Field: "first_name", Score: 0.9611, A: "martha", B: "marhta"},
		{Field: "last_name", Score: 1, A: "stewart", B: "stewart"},
		{Field: "street", Score: 0.92, A: "12 oak st", B: "12 oak street"},
		{Field: "postal_code", Score: 1, A: "8004", B: "8004"},
	}}}
	if diff := cmp.Diff(want, res.Suggestions, cmpopts.EquateApprox(0, 0.0001)); diff != "" {
		t.Errorf("suggestions differ (-want +got):\n%s", diff)
	}
	if res.Comparisons != 1 || res.Records != 2 {
		t.Errorf("Comparisons, Records = %d, %d; want 1, 2", res.Comparisons, res.Records)
	}
}

func TestFindShared(t *testing.T) {
	cfg := contactConfig
	cfg.MaxGroup = 2
	recs := []concord.Record{
		contact("1", "Ann", "Lee", "info@acme.test", "", "", ""),
		contact("2", "Bob", "Ray", "info@acme.test", "", "", ""),
		contact("3", "Cy", "Oz", "INFO@acme.test", "", "", ""),
	}
	res, err := newFinder(t, cfg).Find(t.Context(), recs)
	require.NoError(t, err)
	want := []dedupe.Shared{{Field: "email", Value: "info@acme.test", Keys: []string{"1", "2", "3"}}}
	if diff := cmp.Diff(want, res.Shared); diff != "" {
		t.Errorf("Shared differs (-want +got):\n%s", diff)
	}
	if len(res.Suggestions) != 0 {
		t.Errorf("Suggestions = %v; want none for a widely shared value", res.Suggestions)
	}
}

func TestFindErrors(t *testing.T) {
	f := newFinder(t, contactConfig)
	_, err := f.Find(t.Context(), []concord.Record{contact("1", "", "", "", "", "", ""), contact("1", "", "", "", "", "", "")})
	var re *concord.RecordError
	if !errors.Is(err, dedupe.ErrDuplicateKey) || !errors.As(err, &re) || re.Key != "1" {
		t.Errorf("Find(duplicate keys) = %v; want a RecordError for key 1 wrapping ErrDuplicateKey", err)
	}
	if _, err := f.Find(t.Context(), []concord.Record{{}}); !errors.Is(err, concord.ErrNoKey) {
		t.Errorf("Find(no key) = %v; want ErrNoKey", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.Find(ctx, []concord.Record{contact("1", "A", "B", "", "", "", "")}); !errors.Is(err, context.Canceled) {
		t.Errorf("Find(cancelled) = %v; want context.Canceled", err)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  dedupe.Config
		want string
	}{
		{"no name", dedupe.Config{}, "no name field"},
		{"empty field", dedupe.Config{Name: []string{"n"}, Address: []string{""}}, "empty field name"},
		{"threshold", dedupe.Config{Name: []string{"n"}, Threshold: 1.5}, "Threshold 1.5 outside 0..1"},
		{"min name", dedupe.Config{Name: []string{"n"}, MinName: -1}, "MinName -1 outside 0..1"},
		{"window", dedupe.Config{Name: []string{"n"}, Window: -1}, "negative"},
		{"phone digits", dedupe.Config{Name: []string{"n"}, PhoneDigits: 3}, "PhoneDigits 3 below 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dedupe.New(tt.cfg)
			if !errors.Is(err, dedupe.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v; want ErrInvalidConfig containing %q", err, tt.want)
			}
		})
	}
}

func TestFindDoesNotMutate(t *testing.T) {
	recs := []concord.Record{
		contact("1", "Ada", "Lovelace", "ADA@example.com", "+41 44 668 18 00", "1 Main St", "8000"),
		contact("2", "Ada", "Lovelace", "ada@example.com", "044 668 18 00", "1 main st", "8000"),
	}
	want := []concord.Record{recs[0].Clone(), recs[1].Clone()}
	if _, err := newFinder(t, contactConfig).Find(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, recs); diff != "" {
		t.Errorf("Find modified its input (-want +got):\n%s", diff)
	}
}

func TestMatchString(t *testing.T) {
	for m, want := range map[dedupe.Match]string{dedupe.Exact: "exact", dedupe.Fuzzy: "fuzzy", 7: "Match(7)"} {
		if got := m.String(); got != want {
			t.Errorf("Match(%d).String() = %q; want %q", int(m), got, want)
		}
	}
}
