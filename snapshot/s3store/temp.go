package s3store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// RemoveTemp implements snapshot.TempRemover: it aborts every unfinished
// multipart upload under the store's prefix whose file name drop approves
// (the uploads of writers that died, or whose abort failed). retention.Retain
// and retention.Recover call it. Unfinished uploads are the only debris an
// S3 writer leaves: a file of one part or less is sent whole at Commit.
func (s *Store) RemoveTemp(ctx context.Context, drop func(name string) bool) error {
	type upload struct{ key, id string }
	var todo []upload
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix)}
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return fmt.Errorf("list unfinished uploads of %s: %w", s.Root(), explain(err))
		}
		for _, u := range out.Uploads {
			key := aws.ToString(u.Key)
			if name, ok := strings.CutPrefix(key, s.prefix); ok && drop(name) {
				todo = append(todo, upload{key, aws.ToString(u.UploadId)})
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	var errs []error
	for _, u := range todo {
		_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(u.key), UploadId: aws.String(u.id),
		})
		if err != nil && !errors.Is(explain(err), fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("abort upload of s3://%s/%s: %w", s.bucket, u.key, explain(err)))
		}
	}
	return errors.Join(errs...)
}

// Uploads returns the file names of the unfinished multipart uploads
// under the store's prefix, one per upload, for tests and tools that
// check for debris.
func (s *Store) Uploads(ctx context.Context) ([]string, error) {
	var names []string
	err := s.RemoveTemp(ctx, func(name string) bool { names = append(names, name); return false })
	return names, err
}
