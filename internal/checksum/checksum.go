// Package checksum seals stored values with a CRC-32C bound to where they
// are kept (a domain such as a bucket or table, and a key), for the durable
// stores: a changed byte, or a value copied under another key, is found.
package checksum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Size is the number of bytes [Seal] appends to a value.
const Size = 4

// castagnoli is the CRC-32C table (the polynomial of iSCSI, ext4 and
// LevelDB, computed in hardware on amd64 and arm64). Any 1, 2 or 3 flipped
// bits in a sealed value shorter than 256 MiB are always detected; other
// damage is missed with probability 2^-32.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrMismatch is wrapped by the errors of [Unseal] for a value whose
// checksum does not match: changed on disk, or stored under another key or
// domain.
var ErrMismatch = errors.New("checksum mismatch")

// Checksum returns the CRC-32C of domain, key and value, the first two
// length-prefixed (uvarint) so that no two different triples share an
// input. The domain names where the value is kept (a table or bucket), the
// key its key there: a value copied under another key does not verify.
func Checksum(domain string, key, value []byte) uint32 {
	var n [binary.MaxVarintLen64]byte
	c := crc32.Update(0, castagnoli, n[:binary.PutUvarint(n[:], uint64(len(domain)))])
	c = crc32.Update(c, castagnoli, []byte(domain))
	c = crc32.Update(c, castagnoli, n[:binary.PutUvarint(n[:], uint64(len(key)))])
	c = crc32.Update(c, castagnoli, key)
	return crc32.Update(c, castagnoli, value)
}

// Seal appends value and then its [Checksum] (4 bytes, big-endian) to dst
// and returns the extended slice.
func Seal(dst []byte, domain string, key, value []byte) []byte {
	dst = append(dst, value...)
	return binary.BigEndian.AppendUint32(dst, Checksum(domain, key, value))
}

// Unseal checks a value written by [Seal] for the same domain and key and
// returns it without its checksum (a sub-slice of sealed, not a copy). A
// value too short to hold a checksum, or whose checksum does not match,
// is an error wrapping [ErrMismatch] that gives both sums; the caller names
// the key.
func Unseal(domain string, key, sealed []byte) ([]byte, error) {
	if len(sealed) < Size {
		return nil, fmt.Errorf("%w: %d bytes, too short to hold one", ErrMismatch, len(sealed))
	}
	value := sealed[:len(sealed)-Size]
	stored := binary.BigEndian.Uint32(sealed[len(value):])
	if sum := Checksum(domain, key, value); sum != stored {
		return nil, fmt.Errorf("%w: stored %08x, computed %08x over %d bytes", ErrMismatch, stored, sum, len(value))
	}
	return value, nil
}
