package s3test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pebblestate/pebblestate/snapshot/s3store"
)

// The test credentials every server accepts.
const (
	AccessKey = "pebblestate-test"
	SecretKey = "pebblestate-test-secret"
	Region    = "us-east-1"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary returns the path of the versitygw executable, building it on
// first use.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		dir := filepath.Join(filepath.Dir(file), "..", "..", "tools", "versitygw")
		cmd := exec.Command("go", "tool", "-n", "versitygw")
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				err = fmt.Errorf("%w: %s", err, ee.Stderr)
			}
			buildErr = fmt.Errorf("build versitygw in %s: %w", dir, err)
			return
		}
		binary = strings.TrimSpace(string(out))
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binary
}

// Server is a running versitygw.
type Server struct {
	tb       testing.TB
	Dir      string // the POSIX backend's directory: one subdirectory per bucket
	Addr     string // host:port
	Endpoint string // http://host:port
	cmd      *exec.Cmd
	exited   chan struct{}
}

var buckets atomic.Int64

// Start starts a server over a new temporary directory and stops it when
// the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, Dir: tb.TempDir()}
	s.Addr = freeAddr(tb)
	s.Endpoint = "http://" + s.Addr
	s.Restart()
	tb.Cleanup(s.Kill)
	return s
}

func freeAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Restart starts the server again on the same directory and address,
// after Kill. It waits until the server answers.
func (s *Server) Restart() {
	s.tb.Helper()
	cmd := exec.Command(Binary(s.tb), "--port", s.Addr, "--access", AccessKey, "--secret", SecretKey,
		"--region", Region, "--quiet", "posix", s.Dir)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start versitygw: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	exited := s.exited
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-exited:
			s.tb.Fatalf("versitygw exited at start: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			s.tb.Fatalf("versitygw did not answer on %s within 30s: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the server process (SIGKILL) and waits for it to exit. It
// does nothing if the server is not running.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Options returns store options for the server with the test
// credentials; retries are kept short so that tests of faults end soon.
func (s *Server) Options() s3store.Options {
	return s3store.Options{
		Endpoint: s.Endpoint, Region: Region,
		AccessKeyID: AccessKey, SecretAccessKey: SecretKey,
		MaxAttempts: 4, MaxBackoff: 200 * time.Millisecond,
	}
}

// Client returns an S3 client of the server, for tests that reach
// objects behind the store's back.
func (s *Server) Client(tb testing.TB) *s3.Client {
	tb.Helper()
	st, err := s3store.New(context.Background(), s.Bucket(tb), "", s.Options())
	if err != nil {
		tb.Fatal(err)
	}
	return st.Client()
}

// Bucket creates a new bucket and returns its name.
func (s *Server) Bucket(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("bucket-%d", buckets.Add(1))
	if err := os.Mkdir(filepath.Join(s.Dir, name), 0o755); err != nil {
		tb.Fatal(err)
	}
	return name
}

// Store opens a store on a new bucket under prefix.
func (s *Server) Store(tb testing.TB, prefix string) *s3store.Store {
	tb.Helper()
	st, err := s3store.New(context.Background(), s.Bucket(tb), prefix, s.Options())
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// URL returns the s3:// URL of bucket/prefix on this server, with its
// endpoint as a query parameter.
func (s *Server) URL(bucket, prefix string) string {
	return "s3://" + bucket + "/" + prefix + "?endpoint=" + s.Endpoint
}

// Env sets the environment variables that give the AWS SDK the server's
// credentials and region, for code that opens roots by URL.
func (s *Server) Env(tb testing.TB) {
	tb.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	tb.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	tb.Setenv("AWS_REGION", Region)
	tb.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// PutRaw writes an object directly, bypassing the store.
func PutRaw(ctx context.Context, c *s3.Client, bucket, key string, data []byte) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(string(data))})
	return err
}
