package state

// TestEncoder is a format 6 encoder that tests keep (with its name table)
// from record to record, as the pool does.
type TestEncoder struct{ e enc6 }

// Encode appends the format 6 encoding of st to b, sealed by c.
func (t *TestEncoder) Encode(c Codec, b []byte, st *Record) ([]byte, error) {
	b, _, _, err := t.e.encode(c, b, st, nil, false)
	t.e.release()
	return b, err
}

// TestDecoder is a format 6 decoder that tests keep (with its name table,
// zones and interned strings) from record to record, as the pool does.
type TestDecoder struct{ c *dec6Cache }

// NewTestDecoder returns a decoder with empty caches.
func NewTestDecoder() *TestDecoder { return &TestDecoder{newDec6Cache()} }

// Decode decodes what EncodeState wrote.
func (t *TestDecoder) Decode(c Codec, b []byte) (*Record, error) {
	st, _, err := c.decodeStateWith(b, false, t.c)
	return st, err
}
