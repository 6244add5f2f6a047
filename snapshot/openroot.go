package snapshot

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Opener opens checkpoint storage from a URL of its scheme, such as
// s3://bucket/prefix. It should check that the storage is reachable and
// usable (a cheap request) and fail with one clear error naming what is
// wrong before any work starts.
type Opener func(ctx context.Context, u *url.URL) (Storage, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// RegisterScheme makes OpenRoot open URLs of scheme with open. Storage
// packages call it from an init function (the S3 store registers "s3"), so
// that a program which imports one can name its roots by URL while this
// package imports nothing of theirs. Registering a scheme twice replaces
// the first opener.
func RegisterScheme(scheme string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	openers[strings.ToLower(scheme)] = open
}

// Schemes returns the registered URL schemes, sorted.
func Schemes() []string {
	openersMu.RLock()
	defer openersMu.RUnlock()
	var out []string
	for s := range openers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// IsURL reports whether root names storage by URL (scheme://...) rather
// than by local path.
func IsURL(root string) bool {
	i := strings.Index(root, "://")
	return i > 0 && !strings.ContainsAny(root[:i], `/\`)
}

// OpenRoot opens the checkpoint root named by a local directory path or a
// URL of a registered scheme (file:// is a local path). A local directory
// is created if missing, as NewLocal does; a URL's storage is checked by
// its opener. A URL of an unregistered scheme, or one that does not parse,
// fails naming it.
func OpenRoot(ctx context.Context, root string) (Storage, error) {
	if !IsURL(root) {
		return NewLocal(root)
	}
	u, err := url.Parse(root)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("checkpoint root %q: malformed URL: %w", root, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("checkpoint root %q: a file URL names no host", root)
		}
		return NewLocal(u.Path)
	}
	openersMu.RLock()
	open := openers[scheme]
	openersMu.RUnlock()
	if open == nil {
		known := append([]string{"file"}, Schemes()...)
		return nil, fmt.Errorf("checkpoint root %q: unknown scheme %q (known: %s; an S3 root needs the program to import snapshot/s3store)",
			root, u.Scheme, strings.Join(known, ", "))
	}
	return open(ctx, u)
}

var chkBase = regexp.MustCompile(`^chk-(\d+)$`)

// SplitCheckpoint splits a URL that names one checkpoint's chk-<id>
// directory (s3://bucket/prefix/chk-7) into the URL of the root that
// holds it and the id. ok is false when root is not a URL or names no
// chk-<id> directory (a root, presumably); local paths are resolved by
// their callers, which follow symbolic links.
func SplitCheckpoint(root string) (parent string, id int64, ok bool) {
	trim := strings.TrimRight(root, "/")
	if IsURL(root) {
		u, err := url.Parse(trim)
		if err != nil {
			return "", 0, false
		}
		m := chkBase.FindStringSubmatch(path.Base(u.Path))
		if m == nil {
			return "", 0, false
		}
		id, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return "", 0, false
		}
		u.Path = path.Dir(u.Path)
		if u.Path == "/" || u.Path == "." {
			u.Path = ""
		}
		u.RawPath = ""
		return u.String(), id, true
	}
	return "", 0, false
}
