"""Data: the RBAC objects every Kubernetes 1.36 cluster starts with (YAML files)."""
