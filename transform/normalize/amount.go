package normalize

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
)

// AmountFormat declares how a system writes amounts as strings. The zero
// value is the plain notation "1234.50": a '.' decimal point and no digit
// grouping.
type AmountFormat struct {
	// Decimal is the decimal separator; 0 means '.'.
	Decimal rune
	// Thousands is the digit-group separator ("1,234.50" has ','), or 0
	// if the system writes none, in which case a string with one fails.
	// Groups are not counted, so "1,00,000" (Indian grouping) is read too.
	Thousands rune
}

// Amount returns a Normalizer for money amounts in currency (an ISO 4217
// code, see [LookupCurrency]) that never rounds: the result is a decimal
// string with a '.' decimal point, no digit grouping and exactly the
// currency's number of decimal places ("19.99", "20.00" for EUR; "1500"
// for JPY; "1.500" for KWD). An amount with more decimal places than the
// currency has, other than trailing zeros, fails with [ErrBadAmount]
// rather than being rounded; so does anything that is not a decimal
// number. For currencies without a minor unit (XAU) the decimals are kept
// as written, less trailing zeros.
//
// It reads:
//   - strings in notation f, with an optional sign and surrounding spaces;
//   - json.Number, exactly, exponent included ("1.999e1");
//   - integers of every type;
//   - float64 and float32 by their shortest decimal representation
//     (strconv 'f' format, precision -1): 19.99 is "19.99". A float that
//     is not what was meant, such as 0.1+0.2 (0.30000000000000004), then
//     has too many decimal places and fails instead of being rounded.
//
// Its result, read again, is the same string, so the Normalizer is
// idempotent when f uses '.' as its decimal separator. With another
// separator (AmountFormat{Decimal: ',', Thousands: '.'}) it converts the
// system's notation and must run once: "1.234" is a thousand and more in
// that notation. It panics if currency is unknown or f is invalid (equal
// separators, or a digit, sign or space as one).
func Amount(currency string, f AmountFormat) Normalizer {
	c, ok := LookupCurrency(currency)
	if !ok {
		panic(fmt.Sprintf("normalize.Amount: unknown currency %q", currency))
	}
	if f.Decimal == 0 {
		f.Decimal = '.'
	}
	for _, r := range []rune{f.Decimal, f.Thousands} {
		if (r >= '0' && r <= '9') || r == '-' || r == '+' || r == ' ' {
			panic(fmt.Sprintf("normalize.Amount: invalid separator %q", r))
		}
	}
	if f.Decimal == f.Thousands {
		panic(fmt.Sprintf("normalize.Amount: decimal and thousands separators are both %q", f.Decimal))
	}
	return func(v concord.Value) (concord.Value, error) {
		var neg bool
		var intPart, frac string
		var err error
		switch x := v.(type) {
		case nil:
			return nil, nil
		case string:
			neg, intPart, frac, err = parseAmount(strings.TrimSpace(x), f)
		case json.Number:
			neg, intPart, frac, err = parseNumber(string(x))
		case float64:
			neg, intPart, frac, err = parseAmount(strconv.FormatFloat(x, 'f', -1, 64), AmountFormat{Decimal: '.'})
		case float32:
			neg, intPart, frac, err = parseAmount(strconv.FormatFloat(float64(x), 'f', -1, 32), AmountFormat{Decimal: '.'})
		case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
			neg, intPart, frac, err = parseAmount(fmt.Sprint(x), AmountFormat{Decimal: '.'})
		default:
			return nil, fmt.Errorf("%w: want a decimal string, json.Number, integer or float, got %T", transform.ErrWrongType, v)
		}
		if err != nil {
			return nil, err
		}
		return formatAmount(c, neg, intPart, frac)
	}
}

// parseAmount splits a decimal in notation f into its sign, integer digits
// and fraction digits.
func parseAmount(s string, f AmountFormat) (neg bool, intPart, frac string, err error) {
	orig := s
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		neg, s = true, rest
	} else {
		s = strings.TrimPrefix(s, "+")
	}
	whole, frac, hasPoint := strings.Cut(s, string(f.Decimal))
	var b strings.Builder
	prevDigit := false
	for _, r := range whole {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
			prevDigit = true
		case r == f.Thousands && f.Thousands != 0 && prevDigit:
			prevDigit = false // a separator must stand between digits
		default:
			return false, "", "", fmt.Errorf("%w: %q is not a decimal number", ErrBadAmount, orig)
		}
	}
	bad := whole != "" && !prevDigit || // ends in a separator
		frac != "" && !isDigits(frac) ||
		hasPoint && frac == "" || // "12."
		b.Len() == 0 && frac == "" // no digit at all
	if bad {
		return false, "", "", fmt.Errorf("%w: %q is not a decimal number", ErrBadAmount, orig)
	}
	return neg, b.String(), frac, nil
}

// maxExponent bounds the exponent of a json.Number, so that "1e999999999"
// cannot make a huge string.
const maxExponent = 64

// parseNumber reads a JSON number literal exactly, exponent included.
func parseNumber(s string) (neg bool, intPart, frac string, err error) {
	mant, expStr, hasExp := strings.Cut(strings.ToLower(s), "e")
	neg, intPart, frac, err = parseAmount(mant, AmountFormat{Decimal: '.'})
	if err != nil || !hasExp {
		return neg, intPart, frac, err
	}
	exp, perr := strconv.Atoi(expStr)
	if perr != nil || exp > maxExponent || exp < -maxExponent {
		return false, "", "", fmt.Errorf("%w: %q is not a decimal number within range", ErrBadAmount, s)
	}
	// Move the decimal point exp places to the right.
	digits, point := intPart+frac, len(intPart)+exp
	if point < 0 {
		digits, point = strings.Repeat("0", -point)+digits, 0
	}
	if point > len(digits) {
		digits += strings.Repeat("0", point-len(digits))
	}
	return neg, digits[:point], digits[point:], nil
}

// formatAmount writes the normal form of an amount in currency c.
func formatAmount(c Currency, neg bool, intPart, frac string) (string, error) {
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	frac = strings.TrimRight(frac, "0")
	if c.MinorUnits >= 0 {
		if len(frac) > c.MinorUnits {
			return "", fmt.Errorf("%w: %d decimal places, and %s has %d; amounts are not rounded", ErrBadAmount, len(frac), c.Code, c.MinorUnits)
		}
		frac += strings.Repeat("0", c.MinorUnits-len(frac))
	}
	s := intPart
	if frac != "" {
		s += "." + frac
	}
	if neg && strings.Trim(s, "0.") != "" {
		s = "-" + s
	}
	return s, nil
}
