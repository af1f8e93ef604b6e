package reconcile

import (
	"html/template"
	"io"

	"github.com/concordsync/concord"
)

// classColors are the chart's colours by class.
var classColors = map[Class]string{Conflicting: "#c62828", Missing: "#ef6c00", Stale: "#6a1b9a", InFlight: "#1565c0"}

// maxChartRows is how many fields the chart shows (those with the most
// differences; RecordField always first when present).
const maxChartRows = 40

type htmlSeg struct {
	Class  Class
	Color  string
	Count  int
	X, W   float64
	Y      int
	Field  string
	Height int
}

type htmlRow struct {
	Field  string
	Y      int
	TextY  int
	Total  int
	TotalX float64
	Segs   []htmlSeg
}

type htmlClass struct {
	Class Class
	Color string
	Count int
	X     int
}

type htmlPage struct {
	R           *Report
	Failed      string
	Checked     []htmlChecked
	Classes     []htmlClass
	Rows        []htmlRow
	HiddenRows  int
	ChartHeight int
	LegendY     int
	Diffs       []htmlDiff
	MoreDiffs   int
	Repairs     []htmlRepair
	MoreRepairs int
	Person      []Item
	MorePerson  int
}

type htmlChecked struct {
	System concord.SystemID
	Count  int64
}

type htmlDiff struct {
	Key, Field, What string
	Class            Class
	Color            string
}

type htmlRepair struct {
	Key, What string
	System    concord.SystemID
}

// Chart geometry, in SVG user units.
const (
	chartLabelW = 180
	chartBarW   = 520
	chartRowH   = 22
	chartTop    = 10
)

func (rep *Report) htmlPage() htmlPage {
	p := htmlPage{R: rep}
	if err := rep.Err(); err != nil {
		p.Failed = err.Error()
	}
	for _, s := range rep.Sides {
		p.Checked = append(p.Checked, htmlChecked{s, rep.Checked[s]})
	}
	for i, c := range Classes {
		p.Classes = append(p.Classes, htmlClass{Class: c, Color: classColors[c], Count: rep.ByClass[c], X: chartLabelW + i*130})
	}
	fields := rep.Fields()
	if len(fields) > maxChartRows {
		p.HiddenRows = len(fields) - maxChartRows
		fields = fields[:maxChartRows]
	}
	most := 1
	for _, f := range fields {
		t := 0
		for _, c := range Classes {
			t += rep.ByField[f][c]
		}
		most = max(most, t)
	}
	for i, f := range fields {
		row := htmlRow{Field: f, Y: chartTop + i*chartRowH}
		row.TextY = row.Y + 14
		x := float64(chartLabelW)
		for _, c := range Classes {
			n := rep.ByField[f][c]
			if n == 0 {
				continue
			}
			w := float64(n) * chartBarW / float64(most)
			row.Segs = append(row.Segs, htmlSeg{Class: c, Color: classColors[c], Count: n, X: x, W: w, Y: row.Y + 3, Field: f, Height: chartRowH - 6})
			x += w
			row.Total += n
		}
		row.TotalX = x + 6
		p.Rows = append(p.Rows, row)
	}
	rows := max(len(p.Rows), 1)
	p.LegendY = chartTop + rows*chartRowH + 16
	p.ChartHeight = p.LegendY + 20
	for _, d := range rep.Differences[:min(len(rep.Differences), MaxListed)] {
		p.Diffs = append(p.Diffs, htmlDiff{Key: d.Key, Field: d.Field, What: rep.describe(d), Class: d.Class, Color: classColors[d.Class]})
	}
	p.MoreDiffs = max(len(rep.Differences)-MaxListed, 0)
	for _, r := range rep.Plan.Repairs[:min(len(rep.Plan.Repairs), MaxListed)] {
		p.Repairs = append(p.Repairs, htmlRepair{Key: r.Key, System: r.System, What: r.describe()})
	}
	p.MoreRepairs = max(len(rep.Plan.Repairs)-MaxListed, 0)
	p.Person = rep.Plan.NeedsPerson[:min(len(rep.Plan.NeedsPerson), MaxListed)]
	p.MorePerson = max(len(rep.Plan.NeedsPerson)-MaxListed, 0)
	return p
}

// WriteHTML writes the report as one self-contained HTML page: inline CSS,
// an inline SVG bar chart of the differences by field and class, and the
// tables of the Markdown report. It loads nothing and runs no script.
// Every key, field and value is escaped (html/template).
func (rep *Report) WriteHTML(w io.Writer) error {
	return pageTemplate.Execute(w, rep.htmlPage())
}

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Reconciliation report</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1000px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.failed { background: #fdecea; border: 1px solid #c62828; padding: .6em 1em; font-weight: bold; }
.ok { background: #e8f5e9; border: 1px solid #2e7d32; padding: .6em 1em; }
.chip { display: inline-block; width: .8em; height: .8em; margin-right: .3em; vertical-align: middle; }
svg text { font: 12px system-ui, sans-serif; fill: #222; }
.note { color: #555; }
</style>
</head>
<body>
<h1>Reconciliation: {{range $i, $s := .R.Sides}}{{if $i}}, {{end}}{{$s}}{{end}}</h1>
{{if .Failed}}<p class="failed" id="status">FAILED: {{.Failed}}</p>
{{else if .R.Differences}}<p class="failed" id="status">{{len .R.Differences}} differences in {{.R.Keys}} keys.</p>
{{else}}<p class="ok" id="status">All {{.R.Keys}} keys agree on every side.</p>{{end}}
<table id="checked"><tr><th>system</th><th>records checked</th></tr>
{{range .Checked}}<tr><td>{{.System}}</td><td class="n">{{.Count}}</td></tr>
{{end}}</table>
<p>{{.R.Keys}} keys, {{.R.Matched}} equal on every side{{if .R.Settled}}, {{.R.Settled}} changed during the check{{end}}.</p>
<table id="by-class"><tr><th>class</th><th>differences</th></tr>
{{range .Classes}}<tr><td><span class="chip" style="background:{{.Color}}"></span>{{.Class}}</td><td class="n">{{.Count}}</td></tr>
{{end}}</table>
<h2>Differences by field and class</h2>
<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{{.ChartWidth}}" height="{{.ChartHeight}}" viewBox="0 0 {{.ChartWidth}} {{.ChartHeight}}" role="img" aria-label="Differences by field and class">
{{range .Rows}}<g class="row" data-field="{{.Field}}" data-total="{{.Total}}">
<text x="{{$.LabelX}}" y="{{.TextY}}" text-anchor="end">{{.Field}}</text>
{{range .Segs}}<rect class="bar" data-field="{{.Field}}" data-class="{{.Class}}" data-count="{{.Count}}" x="{{printf "%.2f" .X}}" y="{{.Y}}" width="{{printf "%.2f" .W}}" height="{{.Height}}" fill="{{.Color}}"><title>{{.Field}}: {{.Count}} {{.Class}}</title></rect>
{{end}}<text x="{{printf "%.2f" .TotalX}}" y="{{.TextY}}" class="total">{{.Total}}</text>
</g>
{{else}}<text x="10" y="24" id="no-differences">No differences.</text>
{{end}}{{range .Classes}}<g class="legend" data-class="{{.Class}}"><rect x="{{.X}}" y="{{$.LegendY}}" width="12" height="12" fill="{{.Color}}"></rect><text x="{{.LegendTextX}}" y="{{$.LegendTextY}}">{{.Class}}</text></g>
{{end}}</svg>
{{if .HiddenRows}}<p class="note">{{.HiddenRows}} more fields are not shown in the chart.</p>{{end}}
{{if .Diffs}}<h2>Differences</h2>
<table id="differences"><tr><th>key</th><th>field</th><th>class</th><th>values</th></tr>
{{range .Diffs}}<tr><td>{{.Key}}</td><td>{{.Field}}</td><td><span class="chip" style="background:{{.Color}}"></span>{{.Class}}</td><td>{{.What}}</td></tr>
{{end}}</table>
{{if .MoreDiffs}}<p class="note">… and {{.MoreDiffs}} more (see the JSON report).</p>{{end}}{{end}}
<h2>Repair plan</h2>
<p>{{len .R.Plan.Repairs}} repairs, {{len .R.Plan.NeedsPerson}} need a person, {{len .R.Plan.InFlight}} in flight.</p>
{{if .Repairs}}<table id="repairs"><tr><th>key</th><th>correct</th><th>fields</th></tr>
{{range .Repairs}}<tr><td>{{.Key}}</td><td>{{.System}}</td><td>{{.What}}</td></tr>
{{end}}</table>
{{if .MoreRepairs}}<p class="note">… and {{.MoreRepairs}} more.</p>{{end}}{{end}}
{{if .Person}}<table id="needs-person"><tr><th>needs a person</th><th>field</th><th>why</th></tr>
{{range .Person}}<tr><td>{{.Key}}</td><td>{{.Field}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>
{{if .MorePerson}}<p class="note">… and {{.MorePerson}} more.</p>{{end}}{{end}}
</body>
</html>
`))

// ChartWidth is the SVG's width.
func (htmlPage) ChartWidth() int { return chartLabelW + chartBarW + 60 }

// LabelX is where field labels end.
func (htmlPage) LabelX() int { return chartLabelW - 8 }

// LegendTextX is where a legend entry's text starts.
func (c htmlClass) LegendTextX() int { return c.X + 16 }

// LegendTextY is the baseline of the legend's text.
func (p htmlPage) LegendTextY() int { return p.LegendY + 11 }
