package dedupe

import (
	"math"
	"strings"
	"testing"
)

func TestJaroWinkler(t *testing.T) {
	tests := []struct {
		a, b string
		want float64 // rounded to 3 places
	}{
		{"MARTHA", "MARHTA", 0.961},
		{"DIXON", "DICKSONX", 0.813},
		{"JELLYFISH", "SMELLYFISH", 0.896},
		{"DWAYNE", "DUANE", 0.840},
		{"CRATE", "TRACE", 0.733},
		{"ABC", "XYZ", 0},
		{"", "", 1},
		{"A", "", 0},
		{"same", "same", 1},
		{"zoë", "zoe", 0.822},
		{strings.Repeat("ab", 100), strings.Repeat("ab", 100), 1}, // beyond the stack buffers
	}
	for _, tt := range tests {
		for _, pair := range [][2]string{{tt.a, tt.b}, {tt.b, tt.a}} {
			got := JaroWinkler(pair[0], pair[1])
			if math.Round(got*1000)/1000 != tt.want {
				t.Errorf("JaroWinkler(%q, %q) = %.4f; want %.3f", pair[0], pair[1], got, tt.want)
			}
		}
	}
}

func TestJaroWinklerAllocs(t *testing.T) {
	a, b := []rune("jellyfish sandwich"), []rune("smellyfish sandwhich")
	if n := testing.AllocsPerRun(100, func() { jaroWinkler(a, b) }); n != 0 {
		t.Errorf("jaroWinkler allocates %v times per call; want 0", n)
	}
}

func BenchmarkJaroWinkler(b *testing.B) {
	x, y := []rune("martha stewart"), []rune("marhta stewrat")
	for b.Loop() {
		jaroWinkler(x, y)
	}
}
