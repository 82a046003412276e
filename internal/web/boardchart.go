package web

import (
	"fmt"
	"strings"
	"time"

	"github.com/postroom/postroom/internal/routing"
)

// The hourly chart of the board, drawn by the server as inline SVG (no script): a bar per
// hour for arrivals, a line for the share of first responses within the SLA.

// Chart geometry, in SVG user units.
const (
	chartW, chartH         = 760.0, 240.0
	chartLeft, chartRight  = 44.0, 52.0
	chartTop, chartBottom  = 18.0, 40.0
	chartPlotW, chartPlotH = chartW - chartLeft - chartRight, chartH - chartTop - chartBottom
	chartBarShare          = 0.7
	chartLabelEvery        = 3 // hours between x labels
)

type chartBar struct {
	X, Y, W, H string
	Title      string
}

type chartDot struct {
	X, Y  string
	Title string
}

type chartLabel struct {
	X, Y string
	Text string
}

type chartData struct {
	W, H, Left, Right, Top, Bottom string // the plot area's edges
	Mid                            string // y of 50 %
	Bars                           []chartBar
	Line                           string // polyline points of the attainment
	Dots                           []chartDot
	XLabels                        []chartLabel
	YMax                           int
	Summary                        string
	Arrivals, Responded, Met       int
}

func num(f float64) string { return fmt.Sprintf("%.1f", f) }

// hourlyChart lays out the last 24 hours.
func hourlyChart(hours []routing.HourPoint, loc *time.Location) chartData {
	c := chartData{W: num(chartW), H: num(chartH), Left: num(chartLeft), Right: num(chartW - chartRight),
		Top: num(chartTop), Bottom: num(chartTop + chartPlotH), Mid: num(chartTop + chartPlotH/2)}
	peak := 0
	for _, h := range hours {
		peak = max(peak, h.Arrivals)
		c.Arrivals += h.Arrivals
		c.Responded += h.Responded
		c.Met += h.ResponseMet
	}
	c.YMax = niceCeil(peak)
	n := float64(max(len(hours), 1))
	slot := chartPlotW / n
	var line []string
	for i, h := range hours {
		x := chartLeft + float64(i)*slot
		bh := chartPlotH * float64(h.Arrivals) / float64(c.YMax)
		label := h.Hour.In(loc).Format("15:04")
		title := fmt.Sprintf("%s: %d arrived, %d first responses", label, h.Arrivals, h.Responded)
		if h.SLAAttainment != nil {
			title += fmt.Sprintf(", %.0f %% within the SLA", *h.SLAAttainment)
		}
		c.Bars = append(c.Bars, chartBar{X: num(x + slot*(1-chartBarShare)/2), Y: num(chartTop + chartPlotH - bh),
			W: num(slot * chartBarShare), H: num(bh), Title: title})
		if h.SLAAttainment != nil {
			cx, cy := x+slot/2, chartTop+chartPlotH*(1-*h.SLAAttainment/100)
			line = append(line, num(cx)+","+num(cy))
			c.Dots = append(c.Dots, chartDot{X: num(cx), Y: num(cy), Title: title})
		}
		if i%chartLabelEvery == 0 {
			c.XLabels = append(c.XLabels, chartLabel{X: num(x + slot/2), Y: num(chartTop + chartPlotH + 16), Text: label})
		}
	}
	c.Line = strings.Join(line, " ")
	c.Summary = fmt.Sprintf("%d arrived and %d first responses in the last 24 hours", c.Arrivals, c.Responded)
	if c.Responded > 0 {
		c.Summary += fmt.Sprintf(", %.0f %% of them within the SLA", float64(c.Met)*100/float64(c.Responded))
	}
	return c
}

// niceCeil rounds n up to 1, 2 or 5 times a power of ten (at least 1), for the axis.
func niceCeil(n int) int {
	if n <= 1 {
		return 1
	}
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}
