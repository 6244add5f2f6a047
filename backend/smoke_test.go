package backend_test

import (
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	b, err := backend.Open(backend.String, backend.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	v, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
	if err != nil {
		t.Fatal(err)
	}
	l, err := backend.GetList(b, backend.ListDescriptor[string]{Name: "l", Codec: backend.String})
	if err != nil {
		t.Fatal(err)
	}
	m, err := backend.GetMap(b, backend.MapDescriptor[int64, string]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.String})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := b.SetCurrentKey(string(rune('a' + i%26))); err != nil {
			t.Fatal(err)
		}
		n, _, err := v.Get()
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Update(n + 1); err != nil {
			t.Fatal(err)
		}
		if err := l.Add("x"); err != nil {
			t.Fatal(err)
		}
		if err := m.Put(int64(i), "y"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = backend.Open(backend.String, backend.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, _ = backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
	l, _ = backend.GetList(b, backend.ListDescriptor[string]{Name: "l", Codec: backend.String})
	m, _ = backend.GetMap(b, backend.MapDescriptor[int64, string]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.String})
	_ = b.SetCurrentKey("a")
	n, ok, err := v.Get()
	es, err2 := l.Get()
	cnt := 0
	for _, err := range m.Entries() {
		if err != nil {
			t.Fatal(err)
		}
		cnt++
	}
	t.Log(n, ok, err, len(es), err2, cnt)
	keys := 0
	for _, err := range m.KeysInNamespace(backend.VoidNamespace{}) {
		if err != nil {
			t.Fatal(err)
		}
		keys++
	}
	t.Log("keys", keys)
}
