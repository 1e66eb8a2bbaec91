// Package api serves KFP's v2beta1 REST API over HTTP with gin: the KFP JSON codec (snake_case
// out, lenient in), error mapping to google.rpc.Status, and kfp-box's extensions (task logs,
// artifacts, GPUs, system status). It reaches the rest of the box only through Deps.
package api
