package patterns

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// text says p in words, for example:
//
//	21% of failures are warehouse writes between 03:00 and 04:00 on day 1,
//	for region=EU (rate 90% against a base rate of 3.6%; 377 of 419
//	attempts failed; errors: permanent 100%)
//
// Names that are not plain (letters, digits and _ - . / @ :) are quoted, so
// that a value cannot pass for more words or lines.
func text(p *Pattern, loc *time.Location) string {
	var sys, dir, field, hour, day, weekday string
	var host []string
	for _, it := range p.Items {
		switch it.Attr {
		case AttrSystem:
			sys = quote(it.Value)
		case AttrDirection:
			dir = it.Value
		case AttrField:
			field = quote(it.Value)
		case AttrHour:
			hour = it.Value
		case AttrDay:
			day = it.Value
		case AttrWeekday:
			weekday = it.Value
		default:
			host = append(host, quote(it.Attr)+"="+quote(it.Value))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s of failures are ", pct(p.Share))
	switch {
	case sys != "" && dir != "":
		b.WriteString(sys + " " + dir + "s")
	case sys != "":
		b.WriteString(sys + " attempts")
	case dir != "":
		b.WriteString(dir + "s")
	default:
		b.WriteString("attempts")
	}
	if field != "" {
		b.WriteString(" touching field " + field)
	}
	if hour != "" {
		h, _ := strconv.Atoi(hour)
		fmt.Fprintf(&b, " between %s:00 and %02d:00", hour, h+1)
		if loc != time.UTC {
			b.WriteString(" (" + loc.String() + ")")
		}
	}
	switch {
	case day != "" && weekday != "":
		b.WriteString(" on day " + day + ", a " + weekday)
	case day != "":
		b.WriteString(" on day " + day)
	case weekday != "":
		b.WriteString(" on a " + weekday)
	}
	if len(host) > 0 {
		b.WriteString(", for " + and(host))
	}
	fmt.Fprintf(&b, " (rate %s against a base rate of %s; %d of %d attempts failed", pct(p.Rate), pct(p.BaseRate), p.Failures, p.Total)
	for i, c := range p.ErrorClasses {
		if i == 3 {
			b.WriteString(", ...")
			break
		}
		if i == 0 {
			b.WriteString("; errors: ")
		} else {
			b.WriteString(", ")
		}
		class := "unclassified"
		if c.Class != "" {
			class = quote(c.Class)
		}
		b.WriteString(class + " " + pct(float64(c.Failures)/float64(p.Failures)))
	}
	b.WriteString(")")
	return b.String()
}

// and joins words: "a", "a and b", "a, b and c".
func and(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// quote returns s if it is plain, else s quoted.
func quote(s string) string {
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == '.', c == '/', c == '@', c == ':':
		default:
			return strconv.Quote(s)
		}
	}
	return s
}

// pct formats a share in [0, 1] as a percentage: whole numbers from 10%,
// one decimal below (2%, 3.8%), and never 0% or 100% for what is not.
func pct(x float64) string {
	p := x * 100
	switch {
	case p <= 0:
		return "0%"
	case p >= 100:
		return "100%"
	case p < 0.1:
		return "<0.1%"
	case p > 99.9:
		return ">99.9%"
	case p < 9.95:
		return strings.TrimSuffix(strconv.FormatFloat(p, 'f', 1, 64), ".0") + "%"
	case p >= 99.5:
		return strconv.FormatFloat(math.Floor(p*10)/10, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(math.Round(p), 'f', 0, 64) + "%"
}
