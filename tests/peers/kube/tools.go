//go:build tools

// Package peers pins the Kubernetes control-plane binaries built for kubeiam's tests.
package peers

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
