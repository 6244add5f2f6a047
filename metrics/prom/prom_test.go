package prom_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/metrics/prom"
	"github.com/pebblestate/pebblestate/snapshot"
)

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// open opens a backend of operator op for key groups kgs of 4, with 1000
// values and timers: 3 registered, one of them twice, one deleted, one
// fired, so one pending.
func open(t *testing.T, op string, kgs backend.KeyGroupRange) *backend.Backend[int64] {
	t.Helper()
	b, err := backend.Open(backend.Int64, backend.Options{Dir: t.TempDir(), Operator: op, MaxParallelism: 4, KeyGroups: kgs})
	noErr(t, err)
	t.Cleanup(func() { _ = b.Close() })
	v, err := backend.GetValue(b, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})
	noErr(t, err)
	n := 0
	for k := int64(0); n < 1000; k++ {
		if err := b.SetCurrentKey(k); err != nil {
			continue // another subtask's key
		}
		noErr(t, v.Update(fmt.Sprintf("%050d", k)))
		n++
	}
	svc, err := backend.GetTimerService(b, backend.TimerServiceDescriptor[backend.VoidNamespace]{Name: "timers", NamespaceCodec: backend.Void})
	noErr(t, err)
	for _, ts := range []int64{1, 2, 2, 3} {
		noErr(t, svc.RegisterEventTimeTimer(backend.VoidNamespace{}, ts))
	}
	noErr(t, svc.DeleteEventTimeTimer(backend.VoidNamespace{}, 3))
	noErr(t, svc.AdvanceWatermark(1, func(int64, backend.VoidNamespace, int64) error { return nil }))
	return b
}

// scrape fetches the registry's metrics over HTTP in the text format and
// returns the samples of the pebblestate metrics, by series
// (name{labels} as written).
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	noErr(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s: %s", resp.Status, body)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "pebblestate_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		noErr(t, err)
		out[line[:i]] = v
	}
	noErr(t, sc.Err())
	return out
}

// TestCollector registers a Collector of two subtasks and a coordinator's
// reports with a real registry, scrapes it, and checks values and names.
func TestCollector(t *testing.T) {
	ctx := context.Background()
	b0 := open(t, "counts", backend.KeyGroupRange{Start: 0, End: 2})
	b1 := open(t, "counts", backend.KeyGroupRange{Start: 2, End: 4})
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "checkpoints"))
	noErr(t, err)

	c := prom.NewCollector()
	c.Add("counts", 0, b0)
	c.Add("counts", 1, b1)
	coord, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{
		Storage:   st,
		Operators: []checkpoint.Operator{{Name: "counts", Subtasks: []checkpoint.Participant{checkpoint.KeyedParticipant(b0), checkpoint.KeyedParticipant(b1)}}},
		OnReport:  c.OnReport,
	})
	noErr(t, err)
	stats, err := coord.Checkpoint(ctx)
	noErr(t, err)
	noErr(t, coord.Close())
	noErr(t, b0.Flush())

	reg := prometheus.NewPedanticRegistry()
	noErr(t, reg.Register(c))
	got := scrape(t, reg)

	// sub names a series of subtask i with extra labels, "k=v" each, in
	// the exposition's order (sorted by label name).
	sub := func(name string, i int, extra ...string) string {
		labels := append([]string{"operator=counts", fmt.Sprintf("subtask=%d", i)}, extra...)
		slices.Sort(labels)
		for j, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			labels[j] = fmt.Sprintf("%s=%q", k, v)
		}
		return name + "{" + strings.Join(labels, ",") + "}"
	}
	want := map[string]float64{
		sub("pebblestate_timers_pending", 0, "timer_service=timers"):          1,
		sub("pebblestate_timers_pending_exact", 0, "timer_service=timers"):    1,
		sub("pebblestate_timers_registered_total", 1, "timer_service=timers"): 4,
		sub("pebblestate_timers_deleted_total", 1, "timer_service=timers"):    1,
		sub("pebblestate_timers_fired_total", 1, "timer_service=timers"):      1,
		sub("pebblestate_checkpoint_completed_total", 0):                      1,
		sub("pebblestate_checkpoint_last_id", 1):                              float64(stats.ID),
		sub("pebblestate_checkpoint_last_uploaded_bytes", 0):                  float64(stats.Subtasks[0].CheckpointedSize),
		sub("pebblestate_checkpoint_last_full_size_bytes", 1):                 float64(stats.Subtasks[1].StateSize),
		sub("pebblestate_backend_closed", 0):                                  0,
		sub("pebblestate_ttl_removed_total", 0, "strategy=read"):              0,
		"pebblestate_job_checkpoints_completed_total":                         1,
		"pebblestate_job_checkpoints_aborted_total":                           0,
		"pebblestate_job_checkpoint_last_id":                                  float64(stats.ID),
		"pebblestate_job_checkpoint_last_state_bytes":                         float64(stats.StateSize),
		sub("pebblestate_job_checkpoint_last_subtask_checkpointed_bytes", 1):  float64(stats.Subtasks[1].CheckpointedSize),
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("no sample %s", k)
		} else if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
	if v := got[sub("pebblestate_state_estimated_disk_bytes", 0, "kind=value", "state=v")]; v < 10_000 {
		t.Errorf("state v of subtask 0 estimated at %v bytes after a flush", v)
	}
	if v := got[sub("pebblestate_pebble_level_files", 0, "level=0")] + got[sub("pebblestate_pebble_level_files", 0, "level=6")]; v < 1 {
		t.Errorf("no table in L0 or L6 after a flush: %v", got)
	}
	if v := got[sub("pebblestate_pebble_flushes_total", 0)]; v < 1 {
		t.Errorf("flushes of subtask 0: %v", v)
	}
	for k := range got {
		if strings.Contains(k, "restore_") {
			t.Errorf("a backend that was opened exports %s", k)
		}
	}

	problems, err := testutil.CollectAndLint(c)
	noErr(t, err)
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	// A restored backend exports its restore; a closed one its counters
	// only; a removed one nothing.
	r, err := backend.Restore(ctx, backend.Int64, backend.Options{Dir: t.TempDir(), Operator: "counts", MaxParallelism: 4}, st, mustLatest(t, st).Handles)
	noErr(t, err)
	defer r.Close()
	c.Add("counts", 0, r)
	c.Remove("counts", 1)
	noErr(t, b1.Close())
	c.Add("other", 0, b1)
	got = scrape(t, reg)
	if got[sub("pebblestate_restore_files", 0)] < 2 || got[sub("pebblestate_restore_bytes", 0)] <= 0 ||
		got[sub("pebblestate_restore_downloaded_bytes", 0)] != got[sub("pebblestate_restore_bytes", 0)] ||
		got[sub("pebblestate_restore_local_bytes", 0)] != 0 ||
		got[sub("pebblestate_restore_checkpoint_id", 0)] != float64(stats.ID) {
		t.Errorf("restore metrics: %v", got)
	}
	if got[`pebblestate_backend_closed{operator="other",subtask="0"}`] != 1 {
		t.Errorf("closed backend not reported closed")
	}
	for k := range got {
		if strings.Contains(k, `subtask="1"`) && !strings.HasPrefix(k, "pebblestate_job_") {
			t.Errorf("removed subtask still exported: %s", k)
		}
		if strings.Contains(k, `operator="other"`) && strings.HasPrefix(k, "pebblestate_pebble_") {
			t.Errorf("closed backend exports %s", k)
		}
	}
}

func mustLatest(t *testing.T, st snapshot.Storage) *snapshot.Checkpoint {
	t.Helper()
	cp, err := snapshot.Latest(context.Background(), st)
	noErr(t, err)
	return cp
}
