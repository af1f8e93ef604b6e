package dict

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Markdown writes the dictionary as a Markdown (GitHub-flavoured) table, one
// row per field in declaration order, with the columns Field, Type,
// Required, Rule, Description and Owner: the document the business teams
// agree on. The Rule column spells out every rule declared: allowed values,
// pattern, range, length and format. It returns the first write error.
func (d *Dictionary) Markdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("| Field | Type | Required | Rule | Description | Owner |\n")
	bw.WriteString("|---|---|---|---|---|---|\n")
	for _, f := range d.fields {
		required := "no"
		if f.Required {
			required = "yes"
		}
		fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %s |\n",
			cell(code(f.Name)), f.Type, required, cell(ruleText(f.Field)), cell(f.Description), cell(f.Owner))
	}
	return bw.Flush()
}

// ruleText describes the rules of f in words, "" when there are none.
func ruleText(f Field) string {
	var rules []string
	if len(f.Allowed) > 0 {
		vals := make([]string, len(f.Allowed))
		for i, v := range f.Allowed {
			vals[i] = code(fmt.Sprint(v))
		}
		rules = append(rules, "one of "+strings.Join(vals, ", "))
	}
	if f.Pattern != "" {
		rules = append(rules, "matches "+code(f.Pattern))
	}
	if r := f.Range; r != nil {
		switch {
		case r.HasMin && r.HasMax:
			rules = append(rules, fmt.Sprintf("%s ≤ value ≤ %s", formatFloat(r.Min), formatFloat(r.Max)))
		case r.HasMin:
			rules = append(rules, "value ≥ "+formatFloat(r.Min))
		default:
			rules = append(rules, "value ≤ "+formatFloat(r.Max))
		}
	}
	switch {
	case f.MinLen != 0 && f.MaxLen != 0:
		rules = append(rules, fmt.Sprintf("length %d–%d", f.MinLen, f.MaxLen))
	case f.MinLen != 0:
		rules = append(rules, fmt.Sprintf("length ≥ %d", f.MinLen))
	case f.MaxLen != 0:
		rules = append(rules, fmt.Sprintf("length ≤ %d", f.MaxLen))
	}
	if f.Kind != "" {
		rules = append(rules, "format "+kindText(f.Kind))
	}
	return strings.Join(rules, "; ")
}

// kindText names a kind for people: "date 2006-01-02", "ISO 4217".
func kindText(kind string) string {
	switch kind {
	case KindEmail:
		return "e-mail address"
	case KindE164:
		return "E.164 phone number"
	case KindCountry:
		return "ISO 3166-1 alpha-2 country code"
	case KindSubdivision:
		return "ISO 3166-2 subdivision code"
	case KindCurrency:
		return "ISO 4217 currency code"
	}
	if layout, ok := strings.CutPrefix(kind, datePrefix); ok {
		return "date " + code(layout)
	}
	return code(kind)
}

// code renders s as a Markdown code span, with a longer fence when s holds
// a backtick.
func code(s string) string {
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

// cell makes s safe inside a table cell: pipes escaped (GitHub requires it
// even in code spans), line breaks folded.
func cell(s string) string { return cellReplacer.Replace(s) }

var cellReplacer = strings.NewReplacer("|", `\|`, "\r\n", " ", "\n", " ", "\r", " ")
