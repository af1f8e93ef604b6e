// Package normalize brings field values that mean the same thing to one
// form, so that systems that write "California" and "CA", "03/04/2025" and
// "2025-03-04", or "Germany", "DEU" and "DE" agree on what a record holds.
//
// A [Normalizer] maps one value to its normal form. It is usable three ways:
// on its own; as one direction of a [transform.Converter] for
// [transform.RenameWith]; and, through [Fields], as a
// [transform.Transformer] over named fields of a record:
//
//	inbound := normalize.Fields(map[string]normalize.Normalizer{
//		"country": normalize.CountryAlpha2(),
//		"state":   normalize.SubdivisionCode("US"),
//		"phone":   normalize.Phone("US"),
//		"email":   normalize.Email(),
//		"total":   normalize.Amount("USD", normalize.AmountFormat{Thousands: ','}),
//	})
//
// Errors are [*transform.FieldError]s naming the record key, the field and
// its value, wrapping a sentinel of this package ([ErrUnknownCountry],
// [ErrAmbiguousDate], ...) that errors.Is matches; each sentinel also
// matches [transform.ErrBadValue].
//
// # Normalizers
//
//   - [CountryAlpha2], [CountryName]: ISO 3166-1 codes (alpha-2, alpha-3,
//     numeric) and English names to the alpha-2 code, or to the name.
//   - [SubdivisionCode], [SubdivisionName]: ISO 3166-2 subdivisions of one
//     country ("California", "CA", "US-CA") to the full code "US-CA", or to
//     the name.
//   - [CurrencyCode]: ISO 4217 alphabetic or numeric codes to the
//     alphabetic code.
//   - [Date], [DateAuto]: dates between declared layouts; an ambiguous
//     date without a declared layout is an error, never a guess.
//   - [Phone]: phone numbers to E.164, given a default region.
//   - [Email]: trimmed, domain lower-cased, basic validation.
//   - [Space], [Lower], [Upper]: white space collapsed and trimmed, case
//     folded; [Chain] combines Normalizers.
//   - [Amount]: money amounts as exact decimal strings with the currency's
//     ISO 4217 minor units, never rounded.
//
// # Reference data
//
// The ISO data ([Countries], [Subdivisions], [Currencies], and the
// Lookup functions) is generated into the zz_generated_*.go files from the
// JSON files of the iso-codes project, as packaged by Debian; the release
// is [ISOCodesVersion]. It holds every ISO 3166-1 country, the ISO 3166-2
// subdivisions of AU, CA, DE, GB and US, and every ISO 4217 currency.
// iso-codes does not carry ISO 4217 minor units: they come from a table in
// internal/gen/minorunits.go, transcribed from ISO 4217 List One. To
// regenerate, from the repository root:
//
//	apt-get install -y iso-codes
//	go generate ./transform/normalize
//
// which runs the //go:generate line in doc.go (internal/gen -help lists its
// flags, such as -subdivisions to carry more countries). The output is
// sorted and gofmt-clean, so the same iso-codes release always gives the
// same files; TestGeneratedUpToDate in internal/gen checks the committed
// files against the installed iso-codes.
package normalize

//go:generate go run ./internal/gen -src /usr/share/iso-codes/json -pc /usr/share/pkgconfig/iso-codes.pc -out .
