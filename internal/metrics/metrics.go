// Package metrics is postroom's metrics registry, built on the Prometheus Go client
// library (github.com/prometheus/client_golang): counters, gauges and histograms with
// labels, gauges read at scrape time, and the Go runtime's and the process's own metrics
// (go_*, process_*), served in the Prometheus exposition formats by promhttp.
//
// Each package defines its metrics next to the code it measures, on a *Registry passed in
// by the caller (no global registry: prometheus.DefaultRegisterer is not used). A nil
// *Registry, *Counter, *Gauge or *Histogram does nothing, so a package works unchanged
// without metrics (in tests).
//
// Who may read /metrics: the handler asks its authorize function; postroom's app lets
// supervisors and admins in, with a browser session or an API token ("Authorization:
// Bearer prt_..." in Prometheus' scrape config). Nobody is let in for coming from
// loopback: behind a reverse proxy on the same host every request comes from loopback.
//
// Invariants a change must keep:
//   - A counter only goes up (Add ignores negative and NaN deltas); series are kept until
//     Delete.
//   - Registering a family twice with the same type and labels returns the first (two
//     Runners may share a registry); with another type or labels it panics.
//   - Label values are made valid UTF-8, so a mailbox name cannot break the format.
package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// ContentType is the media type of the text exposition format (WriteText; the handler
// answers in the format the scraper asks for, this one by default).
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// readTimeout bounds a gauge read at scrape time (GaugeFunc).
const readTimeout = 5 * time.Second

// Registry holds metric families. The zero value is not usable: call New.
type Registry struct {
	reg *prometheus.Registry

	mu       sync.Mutex
	families map[string]*family
}

// family is what was registered under a name, to return it on a second registration.
type family struct {
	typ       string
	labels    []string
	collector prometheus.Collector
}

// New returns a Registry holding the Go runtime's and this process's metrics.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{reg: reg, families: map[string]*family{}}
}

// register returns the collector registered as name, creating it with make; a second
// registration with the same type and labels returns the first.
func (r *Registry) register(name, typ string, labels []string, make func() prometheus.Collector) prometheus.Collector {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.families[name]; ok {
		if f.typ != typ || !slices.Equal(f.labels, labels) {
			panic(fmt.Sprintf("metrics: %s registered twice with different types or labels", name))
		}
		return f.collector
	}
	c := make()
	r.reg.MustRegister(c)
	r.families[name] = &family{typ: typ, labels: slices.Clone(labels), collector: c}
	return c
}

// clean makes label values valid UTF-8.
func clean(values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = strings.ToValidUTF8(v, "\uFFFD")
	}
	return out
}

// Counter is a family of counters, one per combination of label values.
type Counter struct {
	vec *prometheus.CounterVec
}

// Counter registers (or returns) a counter family with the given label names.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	if r == nil {
		return nil
	}
	c := r.register(name, "counter", labels, func() prometheus.Collector {
		vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		if len(labels) == 0 {
			vec.WithLabelValues() // a counter without labels exists from its registration (0)
		}
		return vec
	})
	return &Counter{vec: c.(*prometheus.CounterVec)}
}

// Inc adds 1 to the series with the given label values.
func (c *Counter) Inc(labelValues ...string) { c.Add(1, labelValues...) }

// Add adds delta (ignored when negative or NaN: counters only go up) to the series with
// the given label values, creating it at 0.
func (c *Counter) Add(delta float64, labelValues ...string) {
	if c == nil || !(delta >= 0) {
		return
	}
	c.vec.WithLabelValues(clean(labelValues)...).Add(delta)
}

// Touch creates the series with the given label values at 0 if it is missing, so that a
// counter shows 0 before its first event.
func (c *Counter) Touch(labelValues ...string) {
	if c != nil {
		c.vec.WithLabelValues(clean(labelValues)...)
	}
}

// Delete removes the series with the given label values (a mailbox that is gone).
func (c *Counter) Delete(labelValues ...string) {
	if c != nil {
		c.vec.DeleteLabelValues(clean(labelValues)...)
	}
}

// Gauge is a family of gauges, one per combination of label values.
type Gauge struct {
	vec *prometheus.GaugeVec
}

// Gauge registers (or returns) a gauge family with the given label names.
func (r *Registry) Gauge(name, help string, labels ...string) *Gauge {
	if r == nil {
		return nil
	}
	c := r.register(name, "gauge", labels, func() prometheus.Collector {
		vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		if len(labels) == 0 {
			vec.WithLabelValues()
		}
		return vec
	})
	return &Gauge{vec: c.(*prometheus.GaugeVec)}
}

// Set sets the series with the given label values to v.
func (g *Gauge) Set(v float64, labelValues ...string) {
	if g != nil {
		g.vec.WithLabelValues(clean(labelValues)...).Set(v)
	}
}

// Delete removes the series with the given label values.
func (g *Gauge) Delete(labelValues ...string) {
	if g != nil {
		g.vec.DeleteLabelValues(clean(labelValues)...)
	}
}

// Histogram is a family of histograms, one per combination of label values.
type Histogram struct {
	vec *prometheus.HistogramVec
}

// Histogram registers (or returns) a histogram family with the given upper bounds of its
// buckets (nil: prometheus.DefBuckets, 5 ms to 10 s) and label names.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *Histogram {
	if r == nil {
		return nil
	}
	c := r.register(name, "histogram", labels, func() prometheus.Collector {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	})
	return &Histogram{vec: c.(*prometheus.HistogramVec)}
}

// Observe adds one observation v to the series with the given label values.
func (h *Histogram) Observe(v float64, labelValues ...string) {
	if h != nil {
		h.vec.WithLabelValues(clean(labelValues)...).Observe(v)
	}
}

// GaugeFunc registers a gauge without labels whose value read returns at each scrape (for
// example a count from the store), read within 5 s. An error leaves the sample out: the
// scrape still serves every other metric, and the error is logged by the handler.
func (r *Registry) GaugeFunc(name, help string, read func(ctx context.Context) (float64, error)) {
	if r == nil {
		return
	}
	r.register(name, "gaugefunc", nil, func() prometheus.Collector {
		return &gaugeFunc{desc: prometheus.NewDesc(name, help, nil, nil), read: read}
	})
}

// gaugeFunc is the collector of GaugeFunc.
type gaugeFunc struct {
	desc *prometheus.Desc
	read func(context.Context) (float64, error)
}

func (g *gaugeFunc) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *gaugeFunc) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	v, err := g.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(g.desc, fmt.Errorf("%s not available: %w", g.desc, err))
		return
	}
	ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v)
}

// WriteText writes every family in the text exposition format, by name. A gauge that
// cannot be read is left out and its error returned, after the rest is written.
func (r *Registry) WriteText(ctx context.Context, w io.Writer) error {
	mfs, gatherErr := r.reg.Gather()
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("write metrics: %w", err)
		}
	}
	if gatherErr != nil {
		return fmt.Errorf("gather metrics: %w", gatherErr)
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
// Metrics that cannot be gathered (a GaugeFunc whose read fails) are left out of the
// answer and logged to log (slog.Default when nil).
func (r *Registry) Handler(authorize func(*http.Request) Access, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	serve := promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      promLogger{log},
	})
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
		w.Header().Set("Cache-Control", "no-store")
		if req.Method == http.MethodHead {
			w.Header().Set("Content-Type", ContentType)
			return
		}
		serve.ServeHTTP(w, req)
	})
}

// promLogger passes promhttp's error lines to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn("metrics: " + strings.TrimSpace(fmt.Sprintln(v...)))
}
