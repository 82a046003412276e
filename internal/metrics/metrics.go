// Package metrics is postroom's small metrics registry: counters and gauges with labels,
// and gauges read at scrape time, written in the Prometheus text exposition format
// (version 0.0.4: https://prometheus.io/docs/instrumenting/exposition_formats/). It is
// written by hand to keep the binary free of a metrics library; it covers what postroom
// measures and nothing more (no histograms, no timestamps, no exemplars).
//
// Each package defines its metrics next to the code it measures, on a *Registry passed in
// by the caller (no global registry). A nil *Registry, *Counter or *Gauge does nothing, so
// a package works unchanged without metrics (in tests).
//
// Who may read /metrics: the handler asks its authorize function; postroom's app lets
// supervisors and admins in, with a browser session or an API token ("Authorization:
// Bearer prt_..." in Prometheus' scrape config). Nobody is let in for coming from
// loopback: behind a reverse proxy on the same host every request comes from loopback.
//
// Invariants a change must keep:
//   - A counter only goes up (Add ignores negative deltas); series are kept until Delete.
//   - Output is deterministic: families by name, series by label values.
//   - Label values are escaped (backslash, double quote, line feed) and made valid UTF-8,
//     so a mailbox name cannot break the format.
package metrics

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Metric and label name syntax of the exposition format.
var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Registry holds metric families. The zero value is not usable: call New.
type Registry struct {
	mu       sync.Mutex
	families map[string]*family
}

// New returns an empty Registry.
func New() *Registry {
	return &Registry{families: map[string]*family{}}
}

type family struct {
	name, help, typ string
	labels          []string
	series          map[string]*series                     // by joined label values
	read            func(context.Context) (float64, error) // GaugeFunc
}

type series struct {
	values []string
	v      float64
}

// register returns the family name, creating it; a second registration with the same
// type and labels returns the first (so that two Runners may share a registry).
func (r *Registry) register(name, help, typ string, labels []string) *family {
	if !metricName.MatchString(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	for _, l := range labels {
		if !labelName.MatchString(l) || strings.HasPrefix(l, "__") {
			panic(fmt.Sprintf("metrics: invalid label name %q of %s", l, name))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.families[name]; ok {
		if f.typ != typ || !slices.Equal(f.labels, labels) || f.read != nil {
			panic(fmt.Sprintf("metrics: %s registered twice with different types or labels", name))
		}
		return f
	}
	f := &family{name: name, help: help, typ: typ, labels: slices.Clone(labels), series: map[string]*series{}}
	r.families[name] = f
	return f
}

// Counter registers (or returns) a counter family with the given label names.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	if r == nil {
		return nil
	}
	return &Counter{r: r, f: r.register(name, help, "counter", labels)}
}

// Gauge registers (or returns) a gauge family with the given label names.
func (r *Registry) Gauge(name, help string, labels ...string) *Gauge {
	if r == nil {
		return nil
	}
	return &Gauge{r: r, f: r.register(name, help, "gauge", labels)}
}

// GaugeFunc registers a gauge without labels whose value read returns at each scrape (for
// example a count from the store). An error leaves the sample out and is written as a
// comment.
func (r *Registry) GaugeFunc(name, help string, read func(ctx context.Context) (float64, error)) {
	if r == nil {
		return
	}
	f := r.register(name, help, "gauge", nil)
	r.mu.Lock()
	f.read = read
	r.mu.Unlock()
}

// Counter is a family of counters, one per combination of label values.
type Counter struct {
	r *Registry
	f *family
}

// Inc adds 1 to the series with the given label values.
func (c *Counter) Inc(labelValues ...string) { c.Add(1, labelValues...) }

// Add adds delta (ignored when negative or NaN: counters only go up) to the series with
// the given label values, creating it at 0.
func (c *Counter) Add(delta float64, labelValues ...string) {
	if c == nil || !(delta >= 0) {
		return
	}
	c.r.update(c.f, labelValues, func(v float64) float64 { return v + delta })
}

// Touch creates the series with the given label values at 0 if it is missing, so that a
// counter shows 0 before its first event.
func (c *Counter) Touch(labelValues ...string) {
	if c == nil {
		return
	}
	c.r.update(c.f, labelValues, func(v float64) float64 { return v })
}

// Delete removes the series with the given label values (a mailbox that is gone).
func (c *Counter) Delete(labelValues ...string) {
	if c != nil {
		c.r.delete(c.f, labelValues)
	}
}

// Gauge is a family of gauges, one per combination of label values.
type Gauge struct {
	r *Registry
	f *family
}

// Set sets the series with the given label values to v.
func (g *Gauge) Set(v float64, labelValues ...string) {
	if g != nil {
		g.r.update(g.f, labelValues, func(float64) float64 { return v })
	}
}

// Delete removes the series with the given label values.
func (g *Gauge) Delete(labelValues ...string) {
	if g != nil {
		g.r.delete(g.f, labelValues)
	}
}

// key joins label values; 0xff never occurs in valid UTF-8, which values are made into.
func key(values []string) string { return strings.Join(values, "\xff") }

func checkArity(f *family, values []string) {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values (%v), got %d", f.name, len(f.labels), f.labels, len(values)))
	}
}

func (r *Registry) update(f *family, values []string, fn func(float64) float64) {
	checkArity(f, values)
	clean := make([]string, len(values))
	for i, v := range values {
		clean[i] = strings.ToValidUTF8(v, "\uFFFD")
	}
	k := key(clean)
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := f.series[k]
	if !ok {
		s = &series{values: clean}
		f.series[k] = s
	}
	s.v = fn(s.v)
}

func (r *Registry) delete(f *family, values []string) {
	checkArity(f, values)
	clean := make([]string, len(values))
	for i, v := range values {
		clean[i] = strings.ToValidUTF8(v, "\uFFFD")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(f.series, key(clean))
}

// snapshot is one family as written, copied under the lock.
type snapshot struct {
	name, help, typ string
	labels          []string
	series          []series
	read            func(context.Context) (float64, error)
}

func (r *Registry) snapshot() []snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]snapshot, 0, len(r.families))
	for _, f := range r.families {
		s := snapshot{name: f.name, help: f.help, typ: f.typ, labels: f.labels, read: f.read}
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			s.series = append(s.series, *f.series[k])
		}
		// A counter or gauge without labels exists from its registration (value 0).
		if len(f.labels) == 0 && len(s.series) == 0 && f.read == nil {
			s.series = []series{{}}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b snapshot) int { return strings.Compare(a.name, b.name) })
	return out
}

// WriteText writes every family in the text exposition format. Gauges read at scrape
// time are read with ctx.
func (r *Registry) WriteText(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, f := range r.snapshot() {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.typ)
		if f.read != nil {
			v, err := f.read(ctx)
			if err != nil {
				fmt.Fprintf(bw, "# %s not available: %s\n", f.name, strings.ReplaceAll(err.Error(), "\n", " "))
				continue
			}
			f.series = []series{{v: v}}
		}
		for _, s := range f.series {
			bw.WriteString(f.name)
			if len(f.labels) > 0 {
				bw.WriteByte('{')
				for i, l := range f.labels {
					if i > 0 {
						bw.WriteByte(',')
					}
					fmt.Fprintf(bw, `%s="%s"`, l, escapeLabel(s.values[i]))
				}
				bw.WriteByte('}')
			}
			bw.WriteByte(' ')
			bw.WriteString(formatValue(s.v))
			bw.WriteByte('\n')
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}

// Access is what an authorize function of Handler says of a request.
type Access int

const (
	// Anonymous: nobody signed in (no session, no valid token): 401.
	Anonymous Access = iota
	// Refused: signed in, but not allowed to read metrics: 403.
	Refused
	// Allowed: the metrics are served.
	Allowed
)

// Handler serves the registry at GET (and HEAD) when authorize allows the request: 401
// with a hint when nobody is signed in, 403 when the one signed in may not read them.
func (r *Registry) Handler(authorize func(*http.Request) Access) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		access := Allowed
		if authorize != nil {
			access = authorize(req)
		}
		switch access {
		case Allowed:
		case Refused:
			http.Error(w, "metrics are for supervisors and admins: you are signed in with a lower role; use a supervisor's or admin's sign-in or API token", http.StatusForbidden)
			return
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="postroom"`)
			http.Error(w, "metrics are for supervisors and admins: sign in, or send an API token as Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Cache-Control", "no-store")
		if req.Method == http.MethodHead {
			return
		}
		_ = r.WriteText(req.Context(), w) // a client that went away is not our error
	})
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
