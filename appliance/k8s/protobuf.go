package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
)

// protobufMagic starts every Kubernetes protobuf body (kubectl sends built-in types this way).
var protobufMagic = []byte("k8s\x00")

// isProtobuf reports whether a request body is in Kubernetes' protobuf envelope.
func isProtobuf(contentType string, body []byte) bool {
	return contentType == "application/vnd.kubernetes.protobuf" || bytes.HasPrefix(body, protobufMagic)
}

// decodeProtobuf reads a Secret or ConfigMap from Kubernetes' protobuf envelope.
func decodeProtobuf(body []byte) (*Object, error) {
	if !bytes.HasPrefix(body, protobufMagic) {
		return nil, fmt.Errorf("protobuf body without the k8s magic prefix: %w", ErrInvalid)
	}
	var env kruntime.Unknown
	if err := env.Unmarshal(body[len(protobufMagic):]); err != nil {
		return nil, fmt.Errorf("protobuf envelope: %v: %w", err, ErrInvalid)
	}
	switch env.Kind {
	case "Secret":
		var s corev1.Secret
		if err := s.Unmarshal(env.Raw); err != nil {
			return nil, fmt.Errorf("protobuf Secret: %v: %w", err, ErrInvalid)
		}
		o := &Object{APIVersion: "v1", Kind: "Secret", Metadata: fromMeta(s.ObjectMeta), Type: string(s.Type), Immutable: s.Immutable, Data: map[string][]byte{}}
		for k, v := range s.Data {
			o.Data[k] = v
		}
		for k, v := range s.StringData {
			o.Data[k] = []byte(v)
		}
		return o, nil
	case "ConfigMap":
		var c corev1.ConfigMap
		if err := c.Unmarshal(env.Raw); err != nil {
			return nil, fmt.Errorf("protobuf ConfigMap: %v: %w", err, ErrInvalid)
		}
		o := &Object{APIVersion: "v1", Kind: "ConfigMap", Metadata: fromMeta(c.ObjectMeta), Immutable: c.Immutable, Data: map[string][]byte{}}
		for k, v := range c.Data {
			o.Data[k] = []byte(v)
		}
		for k, v := range c.BinaryData {
			o.Data[k] = v
		}
		return o, nil
	case "PersistentVolumeClaim", "Namespace":
		// Read with the API's own types and taken as JSON, the form the box keeps.
		var v interface {
			Unmarshal([]byte) error
		}
		if env.Kind == "Namespace" {
			v = &corev1.Namespace{}
		} else {
			v = &corev1.PersistentVolumeClaim{}
		}
		if err := v.Unmarshal(env.Raw); err != nil {
			return nil, fmt.Errorf("protobuf %s: %v: %w", env.Kind, err, ErrInvalid)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("protobuf %s: %v: %w", env.Kind, err, ErrInvalid)
		}
		o, err := DecodeBody("application/json", b)
		if err != nil {
			return nil, err
		}
		o.APIVersion, o.Kind = "v1", env.Kind
		return o, nil
	}
	return nil, fmt.Errorf("protobuf kind %q is not served: %w", env.Kind, ErrInvalid)
}

func fromMeta(m metav1.ObjectMeta) ObjectMeta {
	return ObjectMeta{Name: m.Name, Namespace: m.Namespace, ResourceVersion: m.ResourceVersion, Labels: m.Labels, Annotations: m.Annotations, ManagedFields: m.ManagedFields}
}
