// Package engine runs KFP v2 pipelines: it reconciles each run as a pure function of (IR,
// persisted executions) to actions, with KFP's semantics for inputs and outputs,
// placeholders, conditions, loops, nested DAGs, exit handlers, retries and caching, and
// hands container tasks to a runtime.Runtime.
//
// # State model
//
// A run is a tree of meta.Execution records: one ROOT, one per sub-DAG (DAG), per
// ParallelFor (LOOP) and per loop iteration (ITERATION), one per container task
// (CONTAINER) and per importer (IMPORTER). A container record carries its attempt number;
// a failed attempt with retries left goes back to PENDING with a RetryAt time. Tasks that
// can never run (upstream failed or skipped, DAG failing fast, run terminated) are recorded
// as OMITTED. Terminal states never change, except when a FAILED run is retried: then the
// failed and omitted records are removed and their DAGs reopened.
//
// # Files
//
//	plan.go         the pure planner: (spec, executions) -> record changes, launches, kills
//	resolve.go      input resolution, DAG outputs, final status (pure)
//	celenv.go       KFP's CEL environment for trigger conditions and selectors
//	placeholders.go the executor input JSON and command placeholders
//	executor.go     starting container tasks, reading their outputs
//	cache.go        fingerprints and cache lookups
//	engine.go       the Engine: config, work queue, workers, Submit/Terminate/Retry
//	reconcile.go    one step of a run: apply task events, plan, persist, then act
//	recover.go      re-adopting tasks after a restart
//
// # Persist, then act
//
// A step applies task events (exits, starts) and plans in memory, then commits every
// changed record in one transaction, and only then starts or kills tasks. A task's record
// is QUEUED with its runtime id before Runtime.Start; RUNNING is persisted lazily (with the
// next commit or within 100 ms) since recovery needs only QUEUED and the runtime id.
// Slots (MaxParallelTasks) are claimed before planning so concurrent workers never exceed
// the cap.
//
// The engine owns executions, artifacts and cache entries in storage/meta and the files
// under DataDir/objects and DataDir/logs it writes for tasks; it must not touch other
// resources of the store (pipelines, experiments) nor talk HTTP.
package engine
