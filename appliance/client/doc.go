// Package client is kfp-box's one client of the KFP v2beta1 REST API, shared by every client
// command (run, pipeline, experiment, logs), by push and pull, and by run export and import.
// It speaks to a kfp-box or to any KFP cluster: requests are shaped as the kfp SDK's
// generated client (kfp_server_api) shapes them, bearer tokens come from a literal, a file
// (re-read for every request, as projected service-account tokens rotate) or a kubeconfig
// (its token, token file or exec credential, through client-go, as the SDK's kubernetes
// client does), and a multi-user cluster's namespace is sent where the SDK sends it.
//
// It owns the wire types it reads and writes; they decode leniently (unknown fields are
// ignored) so that newer servers with more fields are still understood. It knows nothing
// about cobra or exit codes: the CLI maps Error to its exit codes.
package client
