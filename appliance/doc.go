// Package appliance is kfp-box's wiring: configuration (defaults < file < KFPBOX_* environment <
// flags), ordered setup of the store, object storage, runtime, GPUs, engine and API, and their
// teardown in reverse. Only interfaces cross from here into the backends.
package appliance
