// Package api serves KFP's v2beta1 REST API over HTTP with gin: the KFP JSON codec (snake_case
// out, lenient in), error mapping to google.rpc.Status, and kfp-box's extensions (task logs,
// artifacts, GPUs, system status). It reaches the rest of the box only through Deps.
//
// Files by resource: codec.go (request normalisation, wire types, error classification),
// experiments.go, pipelines.go (with multipart upload), runs.go, recurring.go, create.go (the
// one run-creation path, RunCreator, which the scheduler in appliance/schedule also uses).
// Listing, filtering and paging are done by storage/meta; handlers only pass the raw query
// parameters through. Design notes: docs/adr/001-api-and-metadata.md.
package api
