package s3store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/pebblestate/pebblestate/snapshot"
)

func init() {
	snapshot.RegisterScheme("s3", func(ctx context.Context, u *url.URL) (snapshot.Storage, error) {
		return OpenURL(ctx, u.String(), Options{})
	})
}

// Options configure a Store. The zero value takes everything from the
// AWS SDK's default configuration (environment, shared files, instance
// role) and the defaults below.
type Options struct {
	// Endpoint is the base URL of an S3-compatible server, such as
	// http://127.0.0.1:7070. Empty: the SDK's (AWS_ENDPOINT_URL_S3,
	// AWS_ENDPOINT_URL, or AWS S3 itself).
	Endpoint string
	// Region is the bucket's region. Empty: the SDK's (AWS_REGION, the
	// profile), or us-east-1 if it has none.
	Region string
	// PathStyle addresses buckets as endpoint/bucket/key rather than
	// bucket.endpoint/key. Nil: true when Endpoint is set, false otherwise.
	PathStyle *bool
	// AccessKeyID and SecretAccessKey, if both set, are the static
	// credentials used instead of the SDK's credential chain.
	AccessKeyID, SecretAccessKey string
	// Concurrency bounds the transfers (part uploads, puts, reads) in
	// flight at once for the whole store. Default 4.
	Concurrency int
	// PartSize is the size of a multipart upload's parts, and the largest
	// file sent by one PutObject. Default 16 MiB; at least 5 MiB, S3's
	// minimum.
	PartSize int64
	// MaxAttempts bounds the attempts of one request, retries included.
	// Default 5.
	MaxAttempts int
	// MaxBackoff bounds the wait between two attempts. Default 5 s.
	MaxBackoff time.Duration
	// HTTPClient, if set, sends the requests (tests use it to put a proxy
	// in between). Default: the SDK's.
	HTTPClient *http.Client
}

const (
	defaultConcurrency = 4
	defaultPartSize    = 16 << 20
	minPartSize        = 5 << 20
	defaultAttempts    = 5
	defaultMaxBackoff  = 5 * time.Second
)

// Store is checkpoint storage under one prefix of an S3 bucket. It is
// safe for concurrent use. Make one with New or OpenURL.
type Store struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ends with "/"
	partSize int64
	slots    chan struct{} // one token per transfer in flight
	bufs     sync.Pool     // of *[]byte, part buffers of cap partSize

	maxAttempts int
	maxBackoff  time.Duration
}

// ParseURL splits s3://bucket/prefix into the bucket, the prefix (without
// leading or trailing slashes) and the options its query parameters set
// (endpoint, region, path_style), on top of opts. It fails, naming the
// URL, for anything else.
func ParseURL(raw string, opts Options) (bucket, prefix string, _ Options, _ error) {
	bad := func(why string) error { return fmt.Errorf("checkpoint root %q: malformed S3 URL: %s", raw, why) }
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", "", opts, bad(err.Error())
	}
	if u.Scheme != "s3" {
		return "", "", opts, bad("the scheme must be s3")
	}
	if u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return "", "", opts, bad("want s3://bucket/prefix")
	}
	if !validBucket(u.Host) {
		return "", "", opts, bad(fmt.Sprintf("%q is not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens)", u.Host))
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" {
		if err := snapshot.CheckName(prefix); err != nil {
			return "", "", opts, bad("the prefix is not a clean relative path")
		}
	}
	for k, v := range u.Query() {
		switch k {
		case "endpoint":
			opts.Endpoint = v[0]
		case "region":
			opts.Region = v[0]
		case "path_style":
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return "", "", opts, bad("path_style must be true or false")
			}
			opts.PathStyle = &b
		default:
			return "", "", opts, bad(fmt.Sprintf("unknown parameter %q (known: endpoint, region, path_style)", k))
		}
	}
	if opts.Endpoint != "" {
		if e, err := url.Parse(opts.Endpoint); err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return "", "", opts, bad(fmt.Sprintf("endpoint %q is not an http or https URL", opts.Endpoint))
		}
	}
	return u.Host, prefix, opts, nil
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return b[0] != '.' && b[0] != '-' && b[len(b)-1] != '.' && b[len(b)-1] != '-'
}

// OpenURL opens the root s3://bucket/prefix, as New does.
func OpenURL(ctx context.Context, raw string, opts Options) (*Store, error) {
	bucket, prefix, opts, err := ParseURL(raw, opts)
	if err != nil {
		return nil, err
	}
	return New(ctx, bucket, prefix, opts)
}

// New returns storage under prefix in bucket. It lists one object of the
// prefix first, so that wrong credentials, a missing bucket or an
// unreachable endpoint fail here, with one error saying which.
func New(ctx context.Context, bucket, prefix string, opts Options) (*Store, error) {
	prefix = strings.Trim(prefix, "/")
	root := "s3://" + bucket
	if prefix != "" {
		root += "/" + prefix
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = defaultConcurrency
	}
	if opts.PartSize <= 0 {
		opts.PartSize = defaultPartSize
	}
	if opts.PartSize < minPartSize {
		return nil, fmt.Errorf("checkpoint root %s: part size %d is below S3's minimum of %d", root, opts.PartSize, minPartSize)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = defaultAttempts
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = defaultMaxBackoff
	}
	var load []func(*config.LoadOptions) error
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.AccessKeyID != "" && opts.SecretAccessKey != "" {
		load = append(load, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, "")))
	}
	if opts.HTTPClient != nil {
		load = append(load, config.WithHTTPClient(opts.HTTPClient))
	}
	load = append(load, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = opts.MaxAttempts
			o.MaxBackoff = opts.MaxBackoff
			// No client-side retry quota: under sustained throttling the
			// backoff is what slows us down, not a failure.
			o.RateLimiter = ratelimit.None
		})
	}))
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("checkpoint root %s: AWS configuration: %w", root, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	pathStyle := opts.Endpoint != ""
	if opts.PathStyle != nil {
		pathStyle = *opts.PathStyle
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = pathStyle
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
		o.DisableLogOutputChecksumValidationSkipped = true
		o.Logger = logging.Nop{}
	})
	s := &Store{client: client, bucket: bucket, partSize: opts.PartSize, slots: make(chan struct{}, opts.Concurrency),
		maxAttempts: opts.MaxAttempts, maxBackoff: opts.MaxBackoff}
	if prefix != "" {
		s.prefix = prefix + "/"
	}
	if _, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(bucket), Prefix: aws.String(s.prefix), MaxKeys: aws.Int32(1),
	}); err != nil {
		return nil, fmt.Errorf("checkpoint root %s: %w", root, explain(err))
	}
	return s, nil
}

// getBuf returns an empty part buffer: zeroing 16 MiB for every file
// written would cost more than sending a small one.
func (s *Store) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, s.partSize)
	return &b
}

// putBuf gives a part buffer back once no request reads it.
func (s *Store) putBuf(b *[]byte) {
	if b != nil {
		s.bufs.Put(b)
	}
}

// Root returns the storage's URL, s3://bucket/prefix. snapshot.SameRoot
// compares it.
func (s *Store) Root() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

// Client returns the S3 client the store uses.
func (s *Store) Client() *s3.Client { return s.client }

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// Key returns the object key of a file name.
func (s *Store) Key(name string) string { return s.prefix + name }

// url names a file in errors.
func (s *Store) url(name string) string { return "s3://" + s.bucket + "/" + s.prefix + name }

// acquire takes a transfer slot, or fails when ctx ends first.
func (s *Store) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) release() { <-s.slots }

// pathErr reports err of op on a file, naming its URL once.
func (s *Store) pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: s.url(name), Err: explain(err)}
}

// List implements snapshot.Storage.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	var names []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", s.url(prefix), explain(err))
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if snapshot.CheckName(name) != nil {
				continue // directory markers and keys no writer of ours makes
			}
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Delete implements snapshot.Storage. Deleting a missing object is not an
// error.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := snapshot.CheckName(name); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.Key(name))})
	if err != nil && !errors.Is(explain(err), fs.ErrNotExist) {
		return s.pathErr("delete", name, err)
	}
	return nil
}

// exists reports whether the object of name exists.
func (s *Store) exists(ctx context.Context, name string) (bool, error) {
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.Key(name))})
	if err == nil {
		return true, nil
	}
	if errors.Is(explain(err), fs.ErrNotExist) {
		return false, nil
	}
	return false, s.pathErr("stat", name, err)
}

// errPrecondition marks an exclusive create that found the name taken.
var errPrecondition = fmt.Errorf("%w: precondition failed", fs.ErrExist)

// explain turns the SDK's errors into short ones a user can act on,
// matching fs.ErrNotExist and fs.ErrExist where they mean that, with the
// original wrapped (for errors.As) but not repeated: its request and host
// ids say nothing to a reader.
func explain(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	code, msg := "", ""
	if errors.As(err, &ae) {
		code, msg = ae.ErrorCode(), ae.ErrorMessage()
	}
	status := 0
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	detail := shortCode(code, status)
	if msg != "" {
		detail += ": " + msg
	}
	short := func(format string, args ...any) error {
		return &sdkError{msg: fmt.Sprintf(format, args...), err: err}
	}
	switch {
	case code == "NoSuchBucket":
		return short("the bucket does not exist (%s)", detail)
	case code == "InvalidAccessKeyId" || code == "XAdminUserNotFound": // AWS's, versitygw's
		return short("wrong credentials: the server knows no such access key id (%s)", detail)
	case code == "NoSuchKey" || code == "NotFound" || code == "NoSuchUpload" || status == http.StatusNotFound:
		return &sdkError{msg: fmt.Sprintf("%v (%s)", fs.ErrNotExist, detail), err: err, is: fs.ErrNotExist}
	case code == "SignatureDoesNotMatch":
		return short("wrong credentials: the secret access key does not match (%s)", detail)
	case code == "AccessDenied" || status == http.StatusForbidden:
		return short("access denied: wrong credentials, or no permission on the bucket (%s)", detail)
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return &sdkError{msg: fmt.Sprintf("%v (%s)", fs.ErrExist, detail), err: err, is: errPrecondition}
	}
	var oe *smithy.OperationError
	if errors.As(err, &oe) && status == 0 && code == "" {
		var cause error = oe.Err
		var ne *net.OpError
		if errors.As(oe.Err, &ne) {
			cause = ne
		}
		return short("cannot reach the S3 endpoint: %v", cause)
	}
	if code != "" {
		op := "request"
		if errors.As(err, &oe) {
			op = oe.Operation()
		}
		return short("%s: %s", op, detail)
	}
	return err
}

// sdkError is an SDK error said shortly.
type sdkError struct {
	msg string
	err error
	is  error // a sentinel it matches besides err's chain, or nil
}

func (e *sdkError) Error() string { return e.msg }
func (e *sdkError) Unwrap() error { return e.err }
func (e *sdkError) Is(target error) bool {
	return e.is != nil && (target == e.is || errors.Is(e.is, target))
}

func shortCode(code string, status int) string {
	if code != "" {
		return code
	}
	return "HTTP " + strconv.Itoa(status)
}

// retryable reports whether err is worth another attempt: a broken
// connection, throttling or a server error.
func retryable(err error) bool {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		st := re.HTTPStatusCode()
		return st == 0 || st >= 500 || st == http.StatusTooManyRequests
	}
	var ae smithy.APIError
	return !errors.As(err, &ae) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// isCode reports whether err is an S3 error of the code.
func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// sleep waits before the attempt after attempt: exponential backoff from
// 50 ms with full jitter, at most maxBackoff.
func (s *Store) sleep(ctx context.Context, attempt int) error {
	d := min(s.maxBackoff, 50*time.Millisecond<<min(attempt, 10))
	d = time.Duration(rand.Int64N(int64(d)) + 1)
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
