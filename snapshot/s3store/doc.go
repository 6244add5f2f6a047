// Package s3store is checkpoint storage (snapshot.Storage) on the S3 API,
// for AWS S3 and S3-compatible servers. Importing it registers the "s3"
// URL scheme with snapshot.OpenRoot, so that every place that takes a
// checkpoint root path also takes s3://bucket/prefix; the snapshot package
// itself does not import the AWS SDK, and users who keep checkpoints on
// local disk do not either.
//
// # Layout and semantics
//
// A file named N of the root s3://bucket/prefix is the object prefix/N.
// A file is buffered in parts (Options.PartSize, default 16 MiB) while
// it is written: one part or less is sent by one PutObject at Commit,
// more by a multipart upload whose parts go out while the writer goes on,
// at most Options.Concurrency transfers at a time for the whole store
// (default 4). Commit is an exclusive create: the PutObject or
// CompleteMultipartUpload carries If-None-Match: *, so of two writers of
// one name at most one commits and the other fails with fs.ErrExist, and
// _metadata, written last, remains the checkpoint's commit point. A
// writer that fails or is aborted aborts its multipart upload; one that
// dies leaves an unfinished upload, which is invisible to List and Open,
// and which RemoveTemp (called by retention.Retain and retention.Recover)
// aborts. There are no other temporary objects.
//
// Every upload carries a CRC-32C checksum that the server verifies
// (per part for multipart uploads), and reads of whole objects have the
// server's checksum checked by the SDK; the CRC-32C of every file kept in
// the checkpoint's metadata is checked by restores and snapshot.Verify on
// top of that, so an object changed after its upload is reported as
// snapshot.ErrCorrupt naming it.
//
// Requests that fail with throttling (503 SlowDown), a 5xx or a broken
// connection are retried with exponential backoff and jitter, at most
// Options.MaxAttempts times (default 5). A read that breaks midway
// resumes at the byte it reached.
//
// # Configuration
//
// New takes the AWS SDK's usual configuration (environment variables
// such as AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_PROFILE and AWS_ENDPOINT_URL_S3, shared config and credentials
// files, instance roles) and Options on top. A URL may carry query
// parameters: endpoint (http://host:port of an S3-compatible server),
// region, and path_style (true or false; true by default when an
// endpoint is given, as S3-compatible servers mostly want).
//
// # Why aws-sdk-go-v2
//
// Of the three candidates, aws-sdk-go-v2 is the one that gives every
// feature this storage needs without a layer hiding it: conditional
// writes (If-None-Match on PutObject and CompleteMultipartUpload, the
// exclusive commit), flexible checksums (CRC-32C sent and verified),
// a standard retryer that knows S3's throttling codes, explicit control of
// multipart uploads (so a failed writer aborts its own upload, and
// retention can list and abort those of dead writers), and the SDK's
// configuration conventions users already have. It pulls in only its own
// modules (about twenty, all of the SDK), none shared with Pebble.
// gocloud.dev/blob abstracts over many clouds, and an adapter on it worked,
// but its writer exposes neither If-None-Match on multipart completion nor
// the upload ids needed to abort a dead writer's upload, and it brings in
// the SDKs of every cloud it supports. minio-go has conditional puts and
// multipart control too, but its own configuration conventions rather
// than the AWS ones users expect, and a larger dependency set of its own.
package s3store
