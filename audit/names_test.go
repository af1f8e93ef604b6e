package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
)

var named = map[concord.Actor]string{1: "portal", 2: "crm", 3: "concord/engine@1f", 4: "a:b,c}", 5: "7", 6: ""}

func v(dots ...uint64) concord.Version {
	var ds []concord.Dot
	for i := 0; i+1 < len(dots); i += 2 {
		ds = append(ds, concord.Dot{Actor: concord.Actor(dots[i]), Counter: dots[i+1]})
	}
	return concord.MustVersion(ds...)
}

func TestFormatVersionNamesActors(t *testing.T) {
	ev := audit.Event{Actors: named}
	for _, tc := range []struct {
		v    concord.Version
		want string
	}{
		{v(), "{}"},
		{v(1, 2, 2, 2), "{portal:2,crm:2}"},
		{v(3, 1), "{concord/engine@1f:1}"},
		{v(4, 1), `{"a:b,c}":1}`}, // punctuation is quoted
		{v(5, 9), `{"7":9}`},      // a name that looks like a number too
		{v(6, 1), `{"":1}`},       // and an empty one
		{v(9, 1, 1, 1), "{portal:1,9:1}"},
	} {
		if got := ev.FormatVersion(tc.v); got != tc.want {
			t.Errorf("FormatVersion(%v) = %s; want %s", tc.v, got, tc.want)
		}
	}
	if got := (&audit.Event{}).FormatVersion(v(1, 2)); got != "{1:2}" {
		t.Errorf("without Actors: %s; want {1:2}", got)
	}
}

// TestJSONNamedVersionsRoundTrip: every hostile name survives the trip to
// a JSON line and back, and the versions come back exactly.
func TestJSONNamedVersionsRoundTrip(t *testing.T) {
	ev := audit.Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Kind: audit.ConflictHeld, System: "crm", Key: "k",
		Version:    v(1, 2, 2, 2, 3, 1, 4, 1, 5, 9, 6, 3, 9, 1),
		Candidates: []audit.Candidate{{System: "portal", Canonical: true, Version: v(1, 2)}, {System: "crm", Version: v(2, 2, 4, 7)}},
		Actors:     named}
	var buf bytes.Buffer
	if err := audit.JSONLines(&buf).Emit(context.Background(), []audit.Event{ev}); err != nil {
		t.Fatal(err)
	}
	line := buf.String()
	for _, want := range []string{`"version":"{portal:2,crm:2,concord/engine@1f:1,\"a:b,c}\":1,\"7\":9,\"\":3,9:1}"`, `"version":"{crm:2,\"a:b,c}\":7}"`,
		`"actors":{"":6,"7":5,"a:b,c}":4,"concord/engine@1f":3,"crm":2,"portal":1}`} {
		if !strings.Contains(line, want) {
			t.Errorf("line lacks %s:\n%s", want, line)
		}
	}
	back, err := audit.ReadJSONLines(&buf)
	if err != nil || len(back) != 1 {
		t.Fatalf("read back %v, %v", back, err)
	}
	// Only the actors the versions use are written, so those come back.
	want := ev
	want.Actors = map[concord.Actor]string{1: "portal", 2: "crm", 3: "concord/engine@1f", 4: "a:b,c}", 5: "7", 6: ""}
	if diff := cmp.Diff(want, back[0], cmp.Comparer(func(a, b concord.Version) bool { return a.Compare(b) == concord.Equal && a.Len() == b.Len() })); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := audit.ReadJSONLines(strings.NewReader(strings.Replace(line, `"portal":1`, `"portal":0`, 1))); err == nil {
		t.Error("actor 0 accepted")
	}
}

// TestOldLinesStillRead: lines written before versions carried names read
// as before.
func TestOldLinesStillRead(t *testing.T) {
	old := `{"time":"2025-03-14T09:00:00Z","kind":"merge.decided","cycle":3,"system":"crm","key":"c1","unit":"email","version":"{1:2,2:2}",` +
		`"candidates":[{"system":"crm","version":"{2:2}"}],"rule":"fast-forward"}` + "\n"
	evs, err := audit.ReadJSONLines(strings.NewReader(old))
	if err != nil || len(evs) != 1 {
		t.Fatalf("%v, %v", evs, err)
	}
	if ev := evs[0]; ev.Version.Compare(v(1, 2, 2, 2)) != concord.Equal || ev.Candidates[0].Version.Compare(v(2, 2)) != concord.Equal ||
		ev.Rule != "fast-forward" || ev.Actors != nil {
		t.Errorf("old line read as %+v", ev)
	}
	// And an event without names is written as before, byte for byte.
	var buf bytes.Buffer
	if err := audit.JSONLines(&buf).Emit(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if buf.String() != old {
		t.Errorf("rewritten:\n%s\nwant:\n%s", buf.String(), old)
	}
}

func TestBadNamedVersionsAreErrors(t *testing.T) {
	for _, version := range []string{
		"{portal:1", "portal:1}", "{portal}", "{portal:}", "{portal:0}", "{portal:-1}", "{portal:1,}", "{,}", "{:1}",
		"{nobody:1}", `{"portal:1}`, `{"por\tal":1}`, "{portal:1,portal:2}", "{portal:18446744073709551616}",
		"{4294967296:1}", `{"portal"x:1}`, "{portal:1:2}", "{ portal:1}",
	} {
		line := `{"kind":"merge.decided","version":` + jsonString(version) + `,"actors":{"portal":1}}`
		_, err := audit.ReadJSONLines(strings.NewReader(line))
		if err == nil {
			t.Errorf("version %s accepted", version)
		} else if !errors.Is(err, concord.ErrBadVersion) && !errors.Is(err, concord.ErrVersionFull) {
			t.Errorf("version %s: %v; want ErrBadVersion", version, err)
		}
	}
	many := "{" + strings.Repeat("portal:1,", 100000) + "portal:1}"
	if _, err := audit.ReadJSONLines(strings.NewReader(`{"kind":"k","version":` + jsonString(many) + `,"actors":{"portal":1}}`)); err == nil {
		t.Error("a huge version accepted")
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestWireEventMirrorsEvent: the JSON form has every field of Event under
// the same name and in the same order, so that adding a field to Event
// without adding it to the JSON form fails here.
func TestWireEventMirrorsEvent(t *testing.T) {
	ev := audit.Event{Seq: 9, Time: time.Unix(1, 0).UTC(), Kind: "k", Cycle: 1, System: "s", Key: "key", Unit: "u", Units: []string{"u", "w"}, Fields: []string{"f"},
		From: map[string]concord.Value{"f": "a"}, To: map[string]concord.Value{"f": "b"}, Deleted: true, Version: v(1, 1),
		Candidates: []audit.Candidate{{System: "s", Canonical: true, Version: v(1, 1), Values: map[string]concord.Value{"f": "x"}, Deleted: true}},
		Rule:       "r", Reason: "why", Error: "e", ErrorClass: "c", Modified: time.Unix(2, 0).UTC(), By: "ana"}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	var want []string
	typ := reflect.TypeFor[audit.Event]()
	for i := range typ.NumField() {
		tag := strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]
		if tag != "-" {
			want = append(want, tag)
		}
	}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("JSON keys (-Event's fields +written):\n%s", diff)
	}
	var back audit.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Version.Compare(ev.Version) != concord.Equal || back.Candidates[0].Values["f"] != "x" || back.ErrorClass != "c" {
		t.Errorf("json.Unmarshal gives %+v", back)
	}
}

// TestSlogNamesActors: the slog sink prints versions with names too.
func TestSlogNamesActors(t *testing.T) {
	var buf bytes.Buffer
	s := audit.Slog(slog.New(slog.NewTextHandler(&buf, nil)))
	if err := s.Emit(context.Background(), []audit.Event{{Kind: audit.MergeDecided, Version: v(1, 2, 2, 1), Actors: named,
		Candidates: []audit.Candidate{{System: "crm", Version: v(2, 1)}}}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "version={portal:2,crm:1}") || !strings.Contains(buf.String(), "version={crm:1}") {
		t.Errorf("slog line: %s", buf.String())
	}
}

// FuzzEventJSON: no input makes decoding panic; whatever decodes is
// written and read back to the same event.
func FuzzEventJSON(f *testing.F) {
	for _, s := range []string{
		`{"kind":"k","version":"{1:2,2:2}"}`,
		`{"kind":"k","version":"{portal:2,\"a:b\":1}","actors":{"portal":1,"a:b":2}}`,
		`{"kind":"k","version":"{portal:2}","candidates":[{"system":"x","version":"{7:1,portal:1}"}],"actors":{"portal":1}}`,
		`{"kind":"k","version":"{\"\\u0000\":1}","actors":{"\u0000":3}}`,
		`{"kind":"k","version":"{}","actors":{"7":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev audit.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return
		}
		out, err := json.Marshal(ev)
		if err != nil {
			return // values JSON cannot hold
		}
		var back audit.Event
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%s\nwrites %s\nwhich does not read back: %v", b, out, err)
		}
		again, err := json.Marshal(back)
		if err != nil || !bytes.Equal(out, again) {
			t.Fatalf("not stable:\n%s\n%s (%v)", out, again, err)
		}
	})
}
