// Package objects owns kfp-box's object storage abstraction: the Store interface that
// every backend implements, the optional LocalPather ability that makes zero-copy task
// mounts possible, artifact URI parsing and the KFP URI <-> container path mapping, and
// the streaming stage-in/stage-out helpers the engine uses around a task when the store
// is remote.
//
// Backends live in subpackages: local (plain files under $DATA/objects/<bucket>/<key>),
// s3 (any S3 endpoint through minio-go) and s3server (the embedded S3 server that serves
// the local files over the S3 protocol). objectstoretest holds the conformance suite that
// every Store passes.
//
// This package must not know about HTTP handlers, runs or the metadata store.
package objects
