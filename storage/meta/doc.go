// Package meta holds kfp-box's typed metadata repositories over storage/kv: pipelines,
// pipeline versions, experiments, runs, recurring runs, executions (one per task attempt, DAG
// and loop iteration), artifacts and cache entries. It knows nothing about HTTP.
//
// Key layout in the flat kv keyspace (values are JSON):
//
//	/meta/version                          schema version (decimal)
//	/meta/default_experiment               id of the Default experiment (migration 1)
//	/pipelines/<pipeline id>               Pipeline
//	/versions/<pipeline id>/<version id>   PipelineVersion (with its spec)
//	/experiments/<experiment id>           Experiment
//	/runs/<run id>                         Run (without its spec)
//	/runspecs/<run id>                     the IR a run executes, frozen at creation
//	/recurringruns/<id>                    RecurringRun
//	/executions/<run id>/<execution id>    Execution
//	/artifacts/<artifact id>               Artifact
//	/cache/<scope>/<fingerprint>/<exec id> CacheEntry
//	/names/<kind>/<scope>/<name>           uniqueness index: id of the owner of a name
//	                                       (experiments and pipelines per namespace,
//	                                       versions per pipeline id)
//
// Listing (filter, sort, page) runs on in-memory rows of the listable kinds, loaded at Open
// and kept current on every write, so a filtered page of 10,000 runs needs no decoding but
// the page's own records. Index rows are published only after their transaction commits,
// stamped with its revision, so a rolled-back write never shows and two commits applied out
// of order leave the newer row. The kv store publishes watch events at commit, a moment
// before the index row is published: code that reacts to a watch event and must see that
// write reads the kv store (EnabledRecurringRuns does). Page tokens are opaque keyset cursors (sort value, id) bound
// to the sort and the filter they were made for.
package meta
