package s3store_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pebblestate/pebblestate/internal/s3test"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/s3store"
)

// TestThrottled puts a proxy in front of the server that answers a third
// of the requests with 503 SlowDown, some of them twice: two checkpoints,
// their commits and a restore all succeed, retried with backoff.
func TestThrottled(t *testing.T) {
	f := newFixture(t, true)
	target, err := url.Parse(f.srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var requests, throttled atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A third of the requests of an object (method, URL and range)
		// are throttled the first time, some of those again the second
		// time, none later: whoever retries, the SDK or the store, no
		// request fails more than twice in a row.
		n := requests.Add(1)
		id := r.Method + " " + r.URL.String() + " " + r.Header.Get("Range")
		mu.Lock()
		seen[id]++
		nth := seen[id]
		mu.Unlock()
		if nth == 1 && n%3 == 0 || nth == 2 && n%2 == 0 {
			throttled.Add(1)
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	opts := f.srv.Options()
	opts.Endpoint = front.URL
	opts.PartSize = 5 << 20
	st, err := s3store.New(context.Background(), f.st.Bucket(), "job/checkpoints", opts)
	if err != nil {
		t.Fatal(err)
	}
	f.write(1)
	if err := f.checkpoint(1, st); err != nil {
		t.Fatalf("checkpoint through throttling: %v", err)
	}
	f.write(2)
	if err := f.checkpoint(2, st); err != nil {
		t.Fatalf("second checkpoint through throttling: %v", err)
	}
	f.mustRestore(st, 2, 2)
	if throttled.Load() < 10 {
		t.Fatalf("only %d of %d requests throttled: the test shows little", throttled.Load(), requests.Load())
	}
	t.Logf("%d of %d requests answered 503 SlowDown", throttled.Load(), requests.Load())
}

// TestOpenErrors: wrong credentials, a missing bucket, a malformed URL
// and an unreachable endpoint each fail at open, with one error saying
// what is wrong.
func TestOpenErrors(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	ctx := context.Background()
	open := func(mod func(*s3store.Options), b string) error {
		opts := srv.Options()
		if mod != nil {
			mod(&opts)
		}
		_, err := s3store.New(ctx, b, "p", opts)
		return err
	}
	for _, c := range []struct {
		name string
		err  error
		want []string
	}{
		{"WrongSecret", open(func(o *s3store.Options) { o.SecretAccessKey = "wrong" }, bucket),
			[]string{"s3://" + bucket + "/p", "wrong credentials", "secret access key does not match"}},
		{"WrongKeyID", open(func(o *s3store.Options) { o.AccessKeyID = "nobody" }, bucket),
			[]string{"s3://" + bucket + "/p", "wrong credentials", "no such access key"}},
		{"MissingBucket", open(nil, "no-such-bucket"),
			[]string{"s3://no-such-bucket/p", "bucket does not exist"}},
		{"Unreachable", open(func(o *s3store.Options) { o.Endpoint = "http://127.0.0.1:1" }, bucket),
			[]string{"s3://" + bucket + "/p", "cannot reach the S3 endpoint"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.err == nil {
				t.Fatal("open succeeded")
			}
			t.Log(c.err)
			for _, w := range c.want {
				if !strings.Contains(c.err.Error(), w) {
					t.Fatalf("error %q does not say %q", c.err, w)
				}
			}
			if strings.Count(c.err.Error(), "s3://") != 1 {
				t.Fatalf("error %q names the root more than once", c.err)
			}
		})
	}
	srv.Env(t)
	for _, c := range []struct{ url, want string }{
		{"s3://", "not a bucket name"},
		{"s3://Bad_Bucket/p", "not a bucket name"},
		{"s3://bucket/../up", "not a clean relative path"},
		{"s3://bucket/p?color=red", `unknown parameter "color"`},
		{"s3://bucket/p?endpoint=ftp://x", "not an http or https URL"},
		{"s3://bucket/p?path_style=maybe", "path_style must be true or false"},
		{"s3://user@bucket/p", "want s3://bucket/prefix"},
		{"s3://bucket/p%zz", "malformed"},
		{"gs://bucket/p", `unknown scheme "gs"`},
	} {
		_, err := snapshot.OpenRoot(ctx, c.url)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "malformed") && !strings.Contains(err.Error(), "unknown scheme") {
			t.Errorf("OpenRoot(%q) = %v, want an error saying %q", c.url, err, c.want)
		}
	}
	// Through OpenRoot, by URL, with the credentials from the environment.
	st, err := snapshot.OpenRoot(ctx, srv.URL(bucket, "p"))
	if err != nil {
		t.Fatal(err)
	}
	if got := st.(*s3store.Store).Root(); got != "s3://"+bucket+"/p" {
		t.Fatalf("Root = %q", got)
	}
	if _, err := snapshot.OpenRoot(ctx, srv.URL("missing-bucket", "p")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("OpenRoot of a missing bucket = %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if _, err := snapshot.OpenRoot(ctx, srv.URL(bucket, "p")); err == nil || !strings.Contains(err.Error(), "wrong credentials") {
		t.Fatalf("OpenRoot with a wrong secret in the environment = %v", err)
	}
}
