package normalize

import (
	"fmt"

	"github.com/nyaruka/phonenumbers"
)

// Phone returns a Normalizer from a phone number as people write it to its
// E.164 form ("+43 1 234567", "(01) 234567" in region AT, "0043-1-234567"
// are all "+431234567"), using github.com/nyaruka/phonenumbers, the Go
// port of Google's libphonenumber. Numbers without a country calling code
// are read as numbers of defaultRegion. A string that is not a valid
// number for its region, or that carries an extension (which E.164 cannot
// hold, and which would be lost), fails with [ErrBadPhone].
//
// defaultRegion is any form [LookupCountry] accepts ("AT", "AUT",
// "Austria"); Phone panics if it is unknown or has no phone numbering plan
// in the library.
func Phone(defaultRegion string) Normalizer {
	c, ok := LookupCountry(defaultRegion)
	if !ok || !phonenumbers.GetSupportedRegions()[c.Alpha2] {
		panic(fmt.Sprintf("normalize.Phone: unsupported region %q", defaultRegion))
	}
	return onString(func(s string) (string, error) {
		n, err := phonenumbers.Parse(s, c.Alpha2)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrBadPhone, err)
		}
		if n.GetExtension() != "" {
			return "", fmt.Errorf("%w: has extension %q, which E.164 cannot hold", ErrBadPhone, n.GetExtension())
		}
		if !phonenumbers.IsValidNumber(n) {
			return "", fmt.Errorf("%w: not a valid number", ErrBadPhone)
		}
		return phonenumbers.Format(n, phonenumbers.E164), nil
	})
}
