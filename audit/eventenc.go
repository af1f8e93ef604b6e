package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/concordsync/concord"
)

// This file writes an event's JSON form without reflection. The bytes are
// the ones encodeEventReflect gives (toWire, then encoding/json with
// SetEscapeHTML(false)), byte for byte: the chain hashes them, so a
// difference of one byte would be a different log. Whatever the direct
// encoder does not know exactly (a value type outside concord.Value, a
// value encoding/json refuses: NaN, an invalid json.Number, a time past
// year 9999, nesting past concord.MaxValueDepth) makes it give up, and the
// event is encoded by encoding/json, which gives the bytes or the error.
// TestDirectEncoderMatchesReflect and FuzzDirectEncoder hold the two
// paths to the same bytes.

// eventEncoder holds the scratch space of the direct encoder, reused from
// one event to the next (a Chain keeps one). It is not safe for concurrent
// use.
type eventEncoder struct {
	ver  []byte    // a version's text before it is written as a JSON string
	keys []string  // map keys being sorted, a stack: nested maps push above
	used usedNames // the actors' names the event's versions use
}

// appendEvent appends ev's JSON form, without "seq" and without a line
// break, to b.
func (e *eventEncoder) appendEvent(b []byte, ev *Event) ([]byte, error) {
	n := len(b)
	if directEncoding {
		if out, ok := e.appendDirect(b, ev); ok {
			return out, nil
		}
	}
	js, err := encodeEventReflect(ev)
	if err != nil {
		return b[:n], err
	}
	return append(b[:n], js...), nil
}

// appendDirect appends ev's JSON form (as appendEvent) to b. It reports
// false, with b possibly extended by a partial encoding, when ev holds
// something it does not encode exactly as encoding/json.
func (e *eventEncoder) appendDirect(b []byte, ev *Event) ([]byte, bool) {
	e.used.reset(len(ev.Actors) > 0)
	defer e.used.reset(false)
	var ok bool
	b = append(b, `{"time":`...)
	if b, ok = appendTime(b, ev.Time); !ok {
		return b, false
	}
	b = append(b, `,"kind":`...)
	b = appendString(b, string(ev.Kind))
	if ev.Cycle != 0 {
		b = append(b, `,"cycle":`...)
		b = strconv.AppendUint(b, ev.Cycle, 10)
	}
	b = appendStringField(b, `,"system":`, string(ev.System))
	b = appendStringField(b, `,"key":`, ev.Key)
	b = appendStringField(b, `,"unit":`, ev.Unit)
	b = appendStringList(b, `,"units":[`, ev.Units)
	b = appendStringList(b, `,"fields":[`, ev.Fields)
	if len(ev.From) > 0 {
		b = append(b, `,"from":`...)
		if b, ok = e.appendMapIn(b, ev.From, ev.Fields, -1); !ok {
			return b, false
		}
	}
	if len(ev.To) > 0 {
		b = append(b, `,"to":`...)
		if b, ok = e.appendMapIn(b, ev.To, ev.Fields, -1); !ok {
			return b, false
		}
	}
	if ev.Deleted {
		b = append(b, `,"deleted":true`...)
	}
	b = append(b, `,"version":`...)
	b = e.appendVersion(b, ev.Version, ev.Actors)
	if len(ev.Candidates) > 0 {
		b = append(b, `,"candidates":[`...)
		for i := range ev.Candidates {
			c := &ev.Candidates[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"system":`...)
			b = appendString(b, string(c.System))
			if c.Canonical {
				b = append(b, `,"canonical":true`...)
			}
			b = append(b, `,"version":`...)
			b = e.appendVersion(b, c.Version, ev.Actors)
			if len(c.Values) > 0 {
				b = append(b, `,"values":`...)
				if b, ok = e.appendMap(b, c.Values, -1); !ok {
					return b, false
				}
			}
			if c.Deleted {
				b = append(b, `,"deleted":true`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendStringField(b, `,"rule":`, string(ev.Rule))
	b = appendStringField(b, `,"reason":`, ev.Reason)
	b = appendStringField(b, `,"error":`, ev.Error)
	b = appendStringField(b, `,"error_class":`, ev.ErrorClass)
	if !ev.Modified.IsZero() {
		b = append(b, `,"modified":`...)
		if b, ok = appendTime(b, ev.Modified); !ok {
			return b, false
		}
	}
	b = appendStringField(b, `,"by":`, ev.By)
	if len(e.used.pairs) > 0 {
		e.used.sort()
		b = append(b, `,"actors":{`...)
		for i, p := range e.used.pairs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p.name)
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(p.actor), 10)
		}
		b = append(b, '}')
	}
	return append(b, '}'), true
}

// appendStringField appends key and s as a JSON string, unless s is empty
// (omitempty).
func appendStringField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

// appendVersion appends v as formatVersion writes it, as a JSON string,
// noting the names it uses in e.used.
func (e *eventEncoder) appendVersion(b []byte, v concord.Version, names map[concord.Actor]string) []byte {
	t := append(e.ver[:0], '{')
	for i := range v.Len() {
		d := v.Dot(i)
		if i > 0 {
			t = append(t, ',')
		}
		name, ok := "", false
		if len(names) > 0 {
			if name, ok = names[d.Actor]; ok {
				ok = e.used.claim(name, d.Actor)
			}
		}
		switch {
		case !ok:
			t = strconv.AppendUint(t, uint64(d.Actor), 10)
		case bareName(name):
			t = append(t, name...)
		default:
			t = strconv.AppendQuote(t, name)
		}
		t = append(t, ':')
		t = strconv.AppendUint(t, d.Counter, 10)
	}
	t = append(t, '}')
	e.ver = t
	return appendString(b, t)
}

// usedNames is the set of actor names an event's versions are written
// with, in the order they were first used: the "used" map of toWire,
// without a map for the few names an event has.
type usedNames struct {
	on    bool // the event has names: collect them
	pairs []namePair
	index map[string]concord.Actor // by name, once there are many pairs
}

type namePair struct {
	name  string
	actor concord.Actor
}

// manyNames is the number of names past which usedNames keeps a map.
const manyNames = 16

func (u *usedNames) reset(on bool) {
	clear(u.pairs) // drop references to the names
	u.pairs = u.pairs[:0]
	u.index = nil
	u.on = on
}

// claim reports whether a may be written as name: it may unless another
// actor of the event was written with that name first (as formatVersion
// decides).
func (u *usedNames) claim(name string, a concord.Actor) bool {
	if !u.on {
		return true
	}
	if u.index != nil {
		if other, taken := u.index[name]; taken {
			return other == a
		}
		u.index[name] = a
		u.pairs = append(u.pairs, namePair{name, a})
		return true
	}
	for _, p := range u.pairs {
		if p.name == name {
			return p.actor == a
		}
	}
	u.pairs = append(u.pairs, namePair{name, a})
	if len(u.pairs) > manyNames {
		u.index = make(map[string]concord.Actor, 2*len(u.pairs))
		for _, p := range u.pairs {
			u.index[p.name] = p.actor
		}
	}
	return true
}

// sort orders the pairs by name, as encoding/json orders map keys.
func (u *usedNames) sort() {
	slices.SortFunc(u.pairs, func(a, b namePair) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
}

// appendMap appends m (not nil) with its keys in encoding/json's order;
// its values are at depth+1 (an event's From, To and Values are at depth
// -1: their values are top-level, at depth 0, as concord.CheckValue counts).
func (e *eventEncoder) appendMap(b []byte, m map[string]concord.Value, depth int) ([]byte, bool) {
	start := len(e.keys)
	for k := range m {
		e.keys = append(e.keys, k)
	}
	keys := e.keys[start:]
	slices.Sort(keys)
	defer func() {
		clear(keys)
		e.keys = e.keys[:start]
	}()
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var ok bool
		if b, ok = e.appendValue(b, m[k], depth+1); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendMapIn is appendMap for a map whose keys are most often exactly
// order (an event's From and To, and its Fields): if order is sorted and
// holds m's keys alone, they are taken in its order, without sorting them
// again; otherwise appendMap sorts them.
func (e *eventEncoder) appendMapIn(b []byte, m map[string]concord.Value, order []string, depth int) ([]byte, bool) {
	if len(order) != len(m) {
		return e.appendMap(b, m, depth)
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			return e.appendMap(b, m, depth)
		}
	}
	start := len(b)
	b = append(b, '{')
	for i, k := range order {
		v, ok := m[k]
		if !ok { // as many keys, but others
			return e.appendMap(b[:start], m, depth)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, ok = e.appendValue(b, v, depth+1); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendValue appends v as encoding/json writes it, for the dynamic types
// a concord.Value may have; it reports false for any other, and for a
// value encoding/json refuses.
func (e *eventEncoder) appendValue(b []byte, v any, depth int) ([]byte, bool) {
	if depth > concord.MaxValueDepth {
		return b, false
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case bool:
		return strconv.AppendBool(b, x), true
	case string:
		return appendString(b, x), true
	case []byte:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, '"'), true
	case int:
		return strconv.AppendInt(b, int64(x), 10), true
	case int8:
		return strconv.AppendInt(b, int64(x), 10), true
	case int16:
		return strconv.AppendInt(b, int64(x), 10), true
	case int32:
		return strconv.AppendInt(b, int64(x), 10), true
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(b, x, 10), true
	case float32:
		return appendFloat(b, float64(x), 32)
	case float64:
		return appendFloat(b, x, 64)
	case json.Number:
		s := string(x)
		if s == "" {
			s = "0" // as encoding/json writes the zero Number
		}
		if !isJSONNumber(s) {
			return b, false
		}
		return append(b, s...), true
	case time.Time:
		return appendTime(b, x)
	case []any:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, el := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = e.appendValue(b, el, depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case []string:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), true
	case map[string]any:
		if x == nil {
			return append(b, "null"...), true
		}
		return e.appendMap(b, x, depth)
	case map[string]string:
		if x == nil {
			return append(b, "null"...), true
		}
		start := len(e.keys)
		for k := range x {
			e.keys = append(e.keys, k)
		}
		keys := e.keys[start:]
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, x[k])
		}
		clear(keys)
		e.keys = e.keys[:start]
		return append(b, '}'), true
	}
	return b, false
}

// appendFloat appends f as encoding/json writes a float of the given bits
// (ES6 number formatting), and reports false for NaN and infinities.
func appendFloat(b []byte, f float64, bits int) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// e-09 is written e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// appendTime appends t as time.Time.MarshalJSON writes it, and reports
// false for a time it refuses (a year outside 0000–9999, a zone offset of
// 24 hours or more) or one whose text is not plainly RFC 3339.
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	n := len(b)
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		return b, false // AppendText may return nil
	}
	for _, c := range out[n+1:] {
		if (c < '0' || c > '9') && c != '-' && c != ':' && c != '.' && c != '+' && c != 'T' && c != 'Z' {
			return out[:n], false
		}
	}
	return append(out, '"'), true
}

// isJSONNumber reports whether s is a JSON number literal (RFC 8259).
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(s)
}

// jsonSafe marks the ASCII bytes written as they are in a JSON string
// when HTML is not escaped: all but control characters, '"' and '\\'.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, as encoding/json writes it with
// SetEscapeHTML(false): '"', '\\' and control characters escaped (\b, \f,
// \n, \r, \t or \u00XX), invalid UTF-8 replaced by \ufffd, U+2028 and
// U+2029 escaped, everything else as it is.
func appendString[S []byte | string](b []byte, s S) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		// Only up to 4 bytes are converted, so the string stays on the
		// stack (as in encoding/json).
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// encodeEventReflect gives the event's bytes in an entry by encoding/json:
// its JSON Lines form without Seq and without the line break. It is the
// reference the direct encoder matches, and the path for what that one
// does not encode.
func encodeEventReflect(ev *Event) ([]byte, error) {
	w := toWire(ev)
	w.Seq = 0
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// appendStringList appends key (a field name and its opening bracket) and
// the strings of l as a JSON array, or nothing for an empty l (omitempty).
func appendStringList(b []byte, key string, l []string) []byte {
	if len(l) == 0 {
		return b
	}
	b = append(b, key...)
	for i, x := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, x)
	}
	return append(b, ']')
}
