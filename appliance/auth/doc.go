// Package auth owns the box's credentials: the admin token (a 0600 file in the data
// directory, made at first start), named tokens with admin or read scope and UI sessions
// (kept in storage/kv as SHA-256 hashes, never the secrets), one-time login codes (memory),
// and run tokens (an HMAC of the run id, valid while the run is live). It decides who a
// presented secret is; what each scope may do is the API layer's rule. It must not know
// about HTTP.
package auth
