package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/s3test"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/s3store"
)

// TestCheckpointCommandsS3 runs inspect and verify on an s3:// root
// (versitygw, credentials from the environment): they list and verify
// its checkpoints; after one byte of an object is overwritten through
// the S3 API, verify exits 1 naming it; a missing bucket, wrong
// credentials and a malformed URL each exit 1 with one clear error.
func TestCheckpointCommandsS3(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.Env(t)
	bucket := srv.Bucket(t)
	url := srv.URL(bucket, "chk")
	stg, err := snapshot.OpenRoot(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	st := stg.(*s3store.Store)
	b, err := backend.Open(backend.Int64, backend.Options{Dir: t.TempDir(), IncrementalCheckpoints: true, Operator: "op"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
	if err != nil {
		t.Fatal(err)
	}
	for k := range int64(2000) {
		b.SetCurrentKey(k)
		if err := v.Update(k); err != nil {
			t.Fatal(err)
		}
	}
	h, err := b.Checkpoint(ctx, st, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"inspect", url}, {"verify", url}, {"verify", strings.Replace(url, "/chk?", "/chk/chk-1?", 1)}} {
		if code, out, errOut := runArgs(args...); code != 0 || !strings.Contains(out, "checkpoint 1") {
			t.Fatalf("pebblestate %q: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	// One byte of an SST changed after upload.
	victim := h.Handles[0].Shared[0].Name
	key := aws.String(st.Key(victim))
	obj, err := st.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	data[len(data)/2] ^= 1
	if _, err := st.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: key, Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runArgs("verify", url)
	t.Logf("verify of a damaged root:\n%s%s", out, errOut)
	if code != 1 || !strings.Contains(out+errOut, victim) {
		t.Fatalf("verify of a changed object: exit %d, want 1 naming %s\n%s%s", code, victim, out, errOut)
	}
	for _, c := range []struct{ url, want string }{
		{srv.URL("no-such-bucket", "chk"), "bucket does not exist"},
		{"s3://Bad_Bucket/x", "malformed S3 URL"},
	} {
		code, out, errOut := runArgs("verify", c.url)
		t.Logf("verify %s: %s", c.url, errOut)
		if code != 1 || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("verify %s: exit %d, want 1 and one line saying %q\n%s%s", c.url, code, c.want, out, errOut)
		}
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if code, _, errOut := runArgs("inspect", url); code != 1 || !strings.Contains(errOut, "wrong credentials") {
		t.Errorf("inspect with wrong credentials: exit %d\n%s", code, errOut)
	}
}

// TestDemoS3 runs the demo with its checkpoints on S3 (the job is killed
// and restored from S3 at another parallelism, unless it finished first):
// its results match, and verify passes on the root it leaves.
func TestDemoS3(t *testing.T) {
	raceFreeChild(t)
	srv := s3test.Start(t)
	srv.Env(t)
	url := srv.URL(srv.Bucket(t), "demo")
	code, out, errOut := runArgs("demo", "-events", "3000", "-interval", "50ms", "-max-parallelism", "16",
		"-dir", t.TempDir(), "-checkpoints", url)
	if code != 0 || !strings.Contains(out, "results equal the in-memory reference") {
		t.Fatalf("demo on S3: exit %d\n%s%s", code, out, errOut)
	}
	// The restored run takes what the killed one kept locally.
	if strings.Contains(out, "SIGKILL after chk") && !strings.Contains(out, "run 1 restored") {
		t.Fatalf("demo on S3: the restore after the kill used no local copies\n%s", out)
	}
	if code, out, errOut := runArgs("verify", url); code != 0 {
		t.Fatalf("verify %s: exit %d\n%s%s", url, code, out, errOut)
	}
}
