package s3store_test

import (
	"context"
	"testing"

	"github.com/pebblestate/pebblestate/internal/s3test"
	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/s3store"
)

// TestStorageConformanceS3 runs the storage contract's suite on S3, with
// parts of 5 MiB so that the large files take multipart uploads.
func TestStorageConformanceS3(t *testing.T) {
	srv := s3test.Start(t)
	storagetest.Conformance(t, func(t *testing.T) snapshot.Storage {
		opts := srv.Options()
		opts.PartSize = 5 << 20
		st, err := s3store.New(context.Background(), srv.Bucket(t), "root/dir", opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if up, err := st.Uploads(context.Background()); err != nil || len(up) != 0 {
				t.Errorf("unfinished uploads left: %v, %v", up, err)
			}
		})
		return st
	}, 11<<20)
}
