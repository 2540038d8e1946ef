#!/usr/bin/env bash
# Create a kind cluster whose API server authenticates (and optionally
# authorizes) through the kubeiam webhook. Used by `make kind-up`.
#
# Needs: docker (or podman with KIND_EXPERIMENTAL_PROVIDER=podman), kind >= 0.27,
# kubectl, and this repository's .venv (`make test` or `make demo` creates it).
# Edit (environment): CLUSTER_NAME, CLUSTER_ID (the ID tokens are signed for),
# IMAGE, KUBEIAM (the kubeiam executable). Re-running reuses the CA and keys in
# .kubeiam/pki. Remove with: kind delete cluster --name "$CLUSTER_NAME".
# See docs/getting-started-kind.md.
set -euo pipefail

cd "$(dirname "$0")/.."
CLUSTER_NAME=${CLUSTER_NAME:-kubeiam}
CLUSTER_ID=${CLUSTER_ID:-kubeiam}
IMAGE=${IMAGE:-kubeiam:dev}
KUBEIAM=${KUBEIAM:-.venv/bin/kubeiam}
STATE=.kubeiam
CTX="kind-${CLUSTER_NAME}"

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-up: '$tool' is required" >&2; exit 1; }
done
[ -x "$KUBEIAM" ] || { echo "kind-up: $KUBEIAM not found; run 'make test' first" >&2; exit 1; }

echo "== 1/6 certificates and webhook kubeconfigs ($STATE/pki)"
"$KUBEIAM" init --cluster-id "$CLUSTER_ID" --output-dir "$STATE/pki"

echo "== 2/6 files for the API server ($STATE/control-plane; never the CA key)"
install -d -m 0700 "$STATE/control-plane"
install -m 0600 "$STATE/pki/webhook.kubeconfig" "$STATE/pki/authorize.kubeconfig" "$STATE/control-plane/"
install -m 0644 manifests/authorization-config.yaml "$STATE/control-plane/authorization-config.yaml"

echo "== 3/6 image $IMAGE"
docker build -f manifests/Containerfile -t "$IMAGE" .

echo "== 4/6 kind cluster $CLUSTER_NAME"
kind create cluster --name "$CLUSTER_NAME" --config manifests/kind-cluster.yaml
kind load docker-image "$IMAGE" --name "$CLUSTER_NAME"

echo "== 5/6 webhook (kube-system)"
kubectl --context "$CTX" -n kube-system create secret generic kubeiam-tls \
  --from-file=tls.crt="$STATE/pki/webhook.crt" \
  --from-file=tls.key="$STATE/pki/webhook.key" \
  --from-file=ca.crt="$STATE/pki/ca.crt" \
  --from-file=client.crt="$STATE/pki/apiserver-client.crt" \
  --from-file=client.key="$STATE/pki/apiserver-client.key" \
  --dry-run=client -o yaml | kubectl --context "$CTX" apply -f -
kubectl --context "$CTX" apply -f manifests/crd-iamidentitymapping.yaml
kubectl --context "$CTX" wait --for condition=established --timeout=60s \
  crd/iamidentitymappings.iamauthenticator.k8s.aws
kubectl --context "$CTX" apply -f manifests/rbac.yaml -f manifests/aws-auth-configmap.yaml
sed "s/^    clusterID: .*/    clusterID: ${CLUSTER_ID}/" manifests/server-configmap.yaml \
  | kubectl --context "$CTX" apply -f -
sed "s#image: kubeiam:dev#image: ${IMAGE}#" manifests/daemonset.yaml \
  | kubectl --context "$CTX" apply -f -
kubectl --context "$CTX" -n kube-system rollout status daemonset/kubeiam --timeout=120s

echo "== 6/6 your kubeconfig: context kubeiam-${CLUSTER_NAME} (logs in with IAM)"
server=$(kubectl config view --minify --context "$CTX" -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --raw --minify --context "$CTX" \
  -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
"$KUBEIAM" kubeconfig -i "$CLUSTER_ID" --server "$server" --ca-data "$ca" \
  --alias "kubeiam-${CLUSTER_NAME}" --user-alias "kubeiam-${CLUSTER_NAME}" --no-set-context

cat <<DONE

Done. Map your IAM role or user in kube-system/aws-auth (manifests/aws-auth-configmap.yaml)
or with an IAMIdentityMapping, bind its groups with RBAC, then:
  kubectl --context kubeiam-${CLUSTER_NAME} get --raw /version
The admin context ${CTX} (client certificate) keeps working while the webhook is down.
DONE
