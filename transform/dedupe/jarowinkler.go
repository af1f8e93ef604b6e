package dedupe

// JaroWinkler returns the Jaro-Winkler similarity of a and b, from 0 (no
// characters in common) to 1 (equal), comparing them rune by rune, case
// included: normalise first if case should not count.
//
// The Jaro similarity of strings of lengths |a| and |b| is
//
//	(m/|a| + m/|b| + (m-t)/m) / 3
//
// where m counts the characters that match (the same rune, no further
// apart than max(|a|,|b|)/2 - 1 positions, each used once) and t is half
// the number of matched characters that appear in a different order.
// Winkler's adjustment rewards a common prefix of length l (at most 4):
// jw = j + l*0.1*(1-j), applied when j exceeds 0.7, as in Winkler's
// original. Known values: MARTHA/MARHTA 0.961, DIXON/DICKSONX 0.813,
// JELLYFISH/SMELLYFISH 0.896. Two empty strings are equal (1).
func JaroWinkler(a, b string) float64 {
	return jaroWinkler([]rune(a), []rune(b))
}

// jaroWinkler is JaroWinkler on runes. It allocates nothing for strings of
// up to 128 runes.
func jaroWinkler(a, b []rune) float64 {
	j := jaro(a, b)
	if j <= 0.7 {
		return j
	}
	l := 0
	for l < 4 && l < len(a) && l < len(b) && a[l] == b[l] {
		l++
	}
	return j + float64(l)*0.1*(1-j)
}

func jaro(a, b []rune) float64 {
	if len(a) > len(b) {
		a, b = b, a // a is the shorter
	}
	la, lb := len(a), len(b)
	switch {
	case lb == 0:
		return 1
	case la == 0:
		return 0
	}
	window := max(lb/2-1, 0)
	var bufA, bufB [2]uint64
	ma, mb := bits(bufA[:], la), bits(bufB[:], lb)
	m := 0
	for i, r := range a {
		for j := max(0, i-window); j < min(lb, i+window+1); j++ {
			if !mb.has(j) && b[j] == r {
				ma.set(i)
				mb.set(j)
				m++
				break
			}
		}
	}
	if m == 0 {
		return 0
	}
	// Count the matched characters out of order.
	t, j := 0, 0
	for i := range la {
		if !ma.has(i) {
			continue
		}
		for !mb.has(j) {
			j++
		}
		if a[i] != b[j] {
			t++
		}
		j++
	}
	fm := float64(m)
	return (fm/float64(la) + fm/float64(lb) + (fm-float64(t)/2)/fm) / 3
}

// bitset marks matched positions.
type bitset []uint64

// bits returns a cleared bitset of n bits, in buf when it is large enough.
func bits(buf []uint64, n int) bitset {
	words := (n + 63) / 64
	if words > len(buf) {
		return make(bitset, words)
	}
	clear(buf[:words])
	return buf[:words]
}

func (s bitset) has(i int) bool { return s[uint(i)/64]&(1<<(uint(i)%64)) != 0 }
func (s bitset) set(i int)      { s[uint(i)/64] |= 1 << (uint(i) % 64) }
