// Package wheelhouse is the box's own Python package index: wheels kept as plain files in
// one directory ($DATA/wheelhouse), served as a PEP 503 simple index (HTML) and a PEP 691
// index (JSON) with a sha256 for every file, and optionally filled on demand from an
// upstream index (pull-through), each download verified against the hash the upstream
// published before it is kept.
//
// Layout:
//
//	<dir>/<file>.whl              the wheels, as imported (PEP 427 file names)
//	<dir>/.meta/<file>.whl.json   sha256, size and Requires-Python of each wheel
//	<dir>/.tmp/                   partial imports and downloads, renamed into place
//
// It owns the wheel files and their index; it knows nothing about runs, tasks or how the
// index URL reaches a task (the engine's business).
package wheelhouse
