// Package pyenv is what lets lightweight Python components run on the box: it reads the pip
// installs out of a compiled component's command (ParseCommand), checks them against the
// wheelhouse before a run starts (Preflight), turns pip's "no matching distribution" into
// one line with the fix (MissingHint), and, for the host runtime, gives every task a Python
// environment of its own (Manager).
//
// Host environments: the interpreter chosen by --host-python is probed once. For each
// distinct set of pip installs a cached environment is built once under
// $DATA/pyenv/<interpreter>/sets/<key> (a venv with --system-site-packages, so Debian's
// python3-* packages count as installed, filled by pip from the box's own index). Each task
// then gets a venv of its own in its work directory: a few files, no copy, whose
// site-packages chains to the cached environment through a .pth file. The task's own
// `pip install` finds everything satisfied; anything it does install lands in its own
// venv, never in the cached environment (handed to the task read-only), the box's or the
// system's interpreter.
//
// It must not know about runs or the API; the engine calls it with a task's argv.
package pyenv
