// Package s3server runs the S3 endpoint embedded in kfp-box: versitygw's gateway
// (package embedgw) over its posix backend, serving the same plain files the local store
// writes under $DATA/objects. A file a task writes into its mounted output directory is
// therefore an S3 object at once, with no copy and no import step.
//
// The server generates its root credentials at first start and keeps them in a JSON file
// (mode 0600), listens on 127.0.0.1 unless explicit credentials and an address are
// configured, and creates the buckets it is asked for (mlpipeline by default).
//
// Two properties of versitygw v1.8.0 shape its use, see docs/adr/002-object-store.md:
// only one gateway may run per process, and the posix backend changes the process's
// working directory to the object root, so the rest of kfp-box must use absolute paths
// and must never chdir.
package s3server
