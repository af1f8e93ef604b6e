package transform_test

import (
	"errors"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
)

func TestConverters(t *testing.T) {
	vienna := time.FixedZone("CET", 3600)
	yesNo := transform.BoolString("yes", "no")
	date := transform.TimeString(time.DateOnly, nil)
	local := transform.TimeString(time.DateTime, vienna)
	tests := []struct {
		name    string
		conv    func(concord.Value) (concord.Value, error)
		in      concord.Value
		want    concord.Value
		wantErr error
	}{
		{"bool in true", yesNo.In, "yes", true, nil},
		{"bool in false", yesNo.In, "no", false, nil},
		{"bool in nil", yesNo.In, nil, nil, nil},
		{"bool in is exact", yesNo.In, "Yes", nil, transform.ErrBadValue},
		{"bool in wrong type", yesNo.In, true, nil, transform.ErrWrongType},
		{"bool out true", yesNo.Out, true, "yes", nil},
		{"bool out false", yesNo.Out, false, "no", nil},
		{"bool out nil", yesNo.Out, nil, nil, nil},
		{"bool out wrong type", yesNo.Out, "yes", nil, transform.ErrWrongType},
		{"date in", date.In, "2024-02-29", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), nil},
		{"date in nil", date.In, nil, nil, nil},
		{"date in unparsable", date.In, "29.02.2024", nil, transform.ErrBadValue},
		{"date in wrong type", date.In, 20240229, nil, transform.ErrWrongType},
		{"date out", date.Out, time.Date(2024, 2, 29, 23, 0, 0, 0, vienna), "2024-02-29", nil},
		{"date out wrong type", date.Out, "2024-02-29", nil, transform.ErrWrongType},
		{"date out nil", date.Out, nil, nil, nil},
		{"local in reads in location", local.In, "2024-02-29 10:00:00", time.Date(2024, 2, 29, 9, 0, 0, 0, time.UTC), nil},
		{"local out writes in location", local.Out, time.Date(2024, 2, 29, 9, 0, 0, 0, time.UTC), "2024-02-29 10:00:00", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.conv(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v; want %v", err, tt.wantErr)
			}
			if !concord.EqualValues(got, tt.want) {
				t.Errorf("got %#v; want %#v", got, tt.want)
			}
		})
	}
}

func TestTimeStringParseErrorReachable(t *testing.T) {
	_, err := transform.TimeString(time.DateOnly, nil).In("nope")
	var pe *time.ParseError
	if !errors.As(err, &pe) {
		t.Errorf("error %v does not wrap the *time.ParseError", err)
	}
}

func TestBoolStringPanicsOnEqualStrings(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("BoolString(\"x\", \"x\") did not panic")
		}
	}()
	transform.BoolString("x", "x")
}
