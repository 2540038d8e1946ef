//go:build tools

// Package peers pins aws-iam-authenticator, the Go peer kubeiam is compared with.
package peers

import _ "sigs.k8s.io/aws-iam-authenticator/cmd/aws-iam-authenticator"
