package reconcile

import (
	"context"
	"strconv"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// noStarter hides a scanner's ScanStarter.
type noStarter struct{ connector.Scanner }

// sliceScanner scans fixed records in the order given, pages by position.
type sliceScanner struct {
	recs []concord.Record
	// fail, when set, is returned by the call with that number (1-based).
	failAt  int
	failErr error
	panicAt int
	// stuck returns More with the same cursor forever.
	stuck bool
	// between is called at the start of every scan after the first: a
	// change made while the check runs.
	between func(s *sliceScanner)
	calls   int
	scans   int
}

func (s *sliceScanner) Scan(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	s.calls++
	if s.calls == s.failAt {
		return connector.Batch{}, s.failErr
	}
	if s.calls == s.panicAt {
		panic("scanner exploded")
	}
	if err := ctx.Err(); err != nil {
		return connector.Batch{}, err
	}
	if s.stuck {
		return connector.Batch{Records: s.recs[:1], Next: cursor, More: true}, nil
	}
	p := 0
	if cursor == "" {
		s.scans++
		if s.scans > 1 && s.between != nil {
			s.between(s)
		}
	} else {
		p, _ = strconv.Atoi(string(cursor))
	}
	end := min(p+limit, len(s.recs))
	return connector.Batch{Records: s.recs[p:end], Next: connector.Cursor(strconv.Itoa(end)), More: end < len(s.recs)}, nil
}

type fields = map[string]concord.Value

func rec(key string, kv ...any) concord.Record {
	f := fields{}
	for i := 0; i < len(kv); i += 2 {
		f[kv[i].(string)] = kv[i+1]
	}
	return concord.Record{Key: key, Fields: f}
}

func scanner(recs ...concord.Record) *sliceScanner { return &sliceScanner{recs: recs} }

func two(a, b connector.Scanner) Config {
	return Config{Sides: []Side{{System: "a", Scanner: a}, {System: "b", Scanner: b}}, PageSize: 2}
}

// ids lists a report's differences as "key/field=class".
func ids(rep *Report) []string {
	var out []string
	for _, d := range rep.Differences {
		out = append(out, d.Key+"/"+d.Field+"="+string(d.Class))
	}
	return out
}
