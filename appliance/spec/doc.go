// Package spec is kfp-box's model of KFP's pipeline IR (PipelineSpec, schema 2.1.0) and of the
// optional Kubernetes platform document: Go types that decode the SDK's camelCase JSON/YAML,
// a parser for raw YAML/JSON (single or multi-document) and for packages (.zip, .tar.gz with
// pipeline.yaml), and validation. It performs no I/O beyond the bytes it is given.
package spec
