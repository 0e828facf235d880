// k8s-strict decodes Kubernetes objects (a JSON array on stdin, one object
// per element) into the Go API types of k8s.io/api with unknown fields
// disallowed, the way `kubectl apply --validate=strict` rejects a misspelt
// field. It complements the JSON-schema check (deploy/validate/validate.mjs),
// whose schemas allow unknown fields. Prints one line per object,
// "ok KIND NAME" or "FAIL KIND NAME: reason"; kinds it does not know print
// "skip KIND NAME". Exits 1 if any object failed.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

func newObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	}
	return nil
}

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var objects []json.RawMessage
	if err := json.Unmarshal(in, &objects); err != nil {
		fmt.Fprintln(os.Stderr, "input is not a JSON array:", err)
		os.Exit(2)
	}
	failed := false
	for _, raw := range objects {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			fmt.Printf("FAIL ? ?: %v\n", err)
			failed = true
			continue
		}
		obj := newObject(head.APIVersion, head.Kind)
		if obj == nil {
			fmt.Printf("skip %s %s\n", head.Kind, head.Metadata.Name)
			continue
		}
		if err := yaml.UnmarshalStrict(raw, obj); err != nil {
			fmt.Printf("FAIL %s %s: %v\n", head.Kind, head.Metadata.Name, err)
			failed = true
			continue
		}
		fmt.Printf("ok %s %s\n", head.Kind, head.Metadata.Name)
	}
	if failed {
		os.Exit(1)
	}
}
