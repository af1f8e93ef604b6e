package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/concordsync/concord"
)

// FormatVersion formats v with the names of ev.Actors:
// "{portal:2,crm:1}", entries in actor order. An actor without a name (an
// earlier identity of the engine, an event built without Actors) keeps its
// number; a name that could be mistaken for a number or that holds
// punctuation is quoted ({"a:b":2}). With no Actors it is v.String().
func (ev *Event) FormatVersion(v concord.Version) string {
	return formatVersion(v, ev.Actors, nil)
}

// formatVersion writes v with names; used, when not nil, collects the name
// of each actor written by name.
func formatVersion(v concord.Version, names map[concord.Actor]string, used map[string]concord.Actor) string {
	if len(names) == 0 {
		return v.String()
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := range v.Len() {
		d := v.Dot(i)
		if i > 0 {
			b.WriteByte(',')
		}
		name, ok := names[d.Actor]
		if ok && used != nil {
			if other, taken := used[name]; taken && other != d.Actor {
				ok = false // two actors of one name: the second keeps its number
			} else {
				used[name] = d.Actor
			}
		}
		switch {
		case !ok:
			b.WriteString(strconv.FormatUint(uint64(d.Actor), 10))
		case bareName(name):
			b.WriteString(name)
		default:
			b.WriteString(strconv.Quote(name))
		}
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(d.Counter, 10))
	}
	b.WriteByte('}')
	return b.String()
}

// bareName reports whether name can be written without quotes: it starts
// with a letter or '_' and holds only letters, digits and _ - . / @.
func bareName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '.' || c == '/' || c == '@'):
		default:
			return false
		}
	}
	return true
}

// parseVersion reads what formatVersion writes, and the plain form of
// [concord.Version.String]: names are looked up in actors, numbers are
// actors.
func parseVersion(t string, actors map[string]concord.Actor) (concord.Version, error) {
	if t == "" {
		return concord.Version{}, nil
	}
	if !strings.ContainsAny(t, "\"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_") {
		var v concord.Version
		err := v.UnmarshalText([]byte(t))
		return v, err
	}
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return concord.Version{}, fmt.Errorf("%w: %s is not {actor:counter,...}", concord.ErrBadVersion, cut(t))
	}
	body := t[1 : len(t)-1]
	var dots []concord.Dot
	for body != "" {
		if len(dots) == concord.MaxDots {
			return concord.Version{}, fmt.Errorf("%w: more than %d entries", concord.ErrVersionFull, concord.MaxDots)
		}
		var name string
		quoted := body[0] == '"'
		if quoted {
			q, err := strconv.QuotedPrefix(body)
			if err != nil {
				return concord.Version{}, fmt.Errorf("%w: entry %s", concord.ErrBadVersion, cut(body))
			}
			name, _ = strconv.Unquote(q)
			body = body[len(q):]
		} else {
			i := strings.IndexByte(body, ':')
			if i < 0 {
				return concord.Version{}, fmt.Errorf("%w: entry %s", concord.ErrBadVersion, cut(body))
			}
			name, body = body[:i], body[i:]
		}
		if body == "" || body[0] != ':' {
			return concord.Version{}, fmt.Errorf("%w: entry %s", concord.ErrBadVersion, cut(name))
		}
		count, rest, _ := strings.Cut(body[1:], ",")
		c, err := strconv.ParseUint(count, 10, 64)
		if err != nil || c == 0 {
			return concord.Version{}, fmt.Errorf("%w: entry %s", concord.ErrBadVersion, cut(name+body))
		}
		var a concord.Actor
		if n, err := strconv.ParseUint(name, 10, 32); err == nil && !quoted && bareNumber(name) {
			a = concord.Actor(n)
		} else if a = actors[name]; a == 0 {
			return concord.Version{}, fmt.Errorf("%w: actor %s is not named in the event's actors", concord.ErrBadVersion, cut(name))
		}
		dots = append(dots, concord.Dot{Actor: a, Counter: c})
		if rest == "" && strings.HasSuffix(body, ",") {
			return concord.Version{}, fmt.Errorf("%w: trailing comma", concord.ErrBadVersion)
		}
		body = rest
	}
	return concord.NewVersion(dots...)
}

// bareNumber reports whether s is decimal digits only.
func bareNumber(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func cut(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + "..."
	}
	return strconv.Quote(s)
}

// wireEvent is the JSON form of an Event: its fields in the same order
// under the same names, with the versions written with the actors' names
// and the names used listed in "actors" (name to number), so that a reader
// restores the versions exactly. TestWireEventMirrorsEvent keeps the two
// in step.
type wireEvent struct {
	Seq        uint64                   `json:"seq,omitempty"`
	Time       time.Time                `json:"time"`
	Kind       Kind                     `json:"kind"`
	Cycle      uint64                   `json:"cycle,omitempty"`
	System     concord.SystemID         `json:"system,omitempty"`
	Key        string                   `json:"key,omitempty"`
	Unit       string                   `json:"unit,omitempty"`
	Units      []string                 `json:"units,omitempty"`
	Fields     []string                 `json:"fields,omitempty"`
	From       map[string]concord.Value `json:"from,omitempty"`
	To         map[string]concord.Value `json:"to,omitempty"`
	Deleted    bool                     `json:"deleted,omitempty"`
	Version    string                   `json:"version"`
	Candidates []wireCandidate          `json:"candidates,omitempty"`
	Rule       concord.Rule             `json:"rule,omitempty"`
	Reason     string                   `json:"reason,omitempty"`
	Error      string                   `json:"error,omitempty"`
	ErrorClass string                   `json:"error_class,omitempty"`
	Modified   time.Time                `json:"modified,omitzero"`
	By         string                   `json:"by,omitempty"`
	Actors     map[string]concord.Actor `json:"actors,omitempty"`
}

type wireCandidate struct {
	System    concord.SystemID         `json:"system"`
	Canonical bool                     `json:"canonical,omitempty"`
	Version   string                   `json:"version"`
	Values    map[string]concord.Value `json:"values,omitempty"`
	Deleted   bool                     `json:"deleted,omitempty"`
}

// MarshalJSON encodes ev with its fields under their json tag names, in
// declaration order. Versions are written with the names of ev.Actors
// ("{portal:2,crm:1}", see [Event.FormatVersion]), and "actors" maps each
// name used to its actor number; without Actors, versions are written as
// numbers ("{1:2,2:1}") and "actors" is left out, as before names were
// written. HTML characters are not escaped by this method (the calling
// encoder may escape them).
func (ev Event) MarshalJSON() ([]byte, error) {
	w := toWire(&ev)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// toWire is ev in its JSON form; the sinks encode it directly, without the
// second pass an encoder makes over a Marshaler's output.
func toWire(ev *Event) *wireEvent {
	var used map[string]concord.Actor
	if len(ev.Actors) > 0 {
		used = map[string]concord.Actor{}
	}
	w := wireEvent{Seq: ev.Seq, Time: ev.Time, Kind: ev.Kind, Cycle: ev.Cycle, System: ev.System, Key: ev.Key, Unit: ev.Unit,
		Units: ev.Units, Fields: ev.Fields, From: ev.From, To: ev.To, Deleted: ev.Deleted, Version: formatVersion(ev.Version, ev.Actors, used),
		Rule: ev.Rule, Reason: ev.Reason, Error: ev.Error, ErrorClass: ev.ErrorClass, Modified: ev.Modified, By: ev.By}
	for _, c := range ev.Candidates {
		w.Candidates = append(w.Candidates, wireCandidate{System: c.System, Canonical: c.Canonical,
			Version: formatVersion(c.Version, ev.Actors, used), Values: c.Values, Deleted: c.Deleted})
	}
	if len(used) > 0 {
		w.Actors = used
	}
	return &w
}

// UnmarshalJSON decodes what [Event.MarshalJSON] writes, and lines written
// before versions carried names. Numbers in values are decoded as
// json.Number (see [ReadJSONLines]); Actors is restored from "actors".
func (ev *Event) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var w wireEvent
	if err := dec.Decode(&w); err != nil {
		return err
	}
	seen := make(map[concord.Actor]string, len(w.Actors))
	for name, a := range w.Actors {
		if a == 0 {
			return fmt.Errorf("audit: actors: %s names actor 0, which does not exist", cut(name))
		}
		if other, dup := seen[a]; dup {
			return fmt.Errorf("audit: actors: %s and %s both name actor %d", cut(min(name, other)), cut(max(name, other)), a)
		}
		seen[a] = name
	}
	out := Event{Seq: w.Seq, Time: w.Time, Kind: w.Kind, Cycle: w.Cycle, System: w.System, Key: w.Key, Unit: w.Unit,
		Units: w.Units, Fields: w.Fields, From: w.From, To: w.To, Deleted: w.Deleted, Rule: w.Rule, Reason: w.Reason,
		Error: w.Error, ErrorClass: w.ErrorClass, Modified: w.Modified, By: w.By}
	var err error
	if out.Version, err = parseVersion(w.Version, w.Actors); err != nil {
		return fmt.Errorf("audit: version: %w", err)
	}
	for i, c := range w.Candidates {
		v, err := parseVersion(c.Version, w.Actors)
		if err != nil {
			return fmt.Errorf("audit: candidate %d version: %w", i, err)
		}
		out.Candidates = append(out.Candidates, Candidate{System: c.System, Canonical: c.Canonical, Version: v, Values: c.Values, Deleted: c.Deleted})
	}
	if len(w.Actors) > 0 {
		out.Actors = make(map[concord.Actor]string, len(w.Actors))
		for name, a := range w.Actors {
			out.Actors[a] = name
		}
	}
	*ev = out
	return nil
}
