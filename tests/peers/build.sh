#!/usr/bin/env bash
# Builds the Go peers (kube-apiserver, kube-controller-manager, etcd, aws-iam-authenticator)
# from the Go module proxy into a per-machine cache keyed by the pinned versions, once.
# Prints the bin directory on stdout; progress goes to stderr. Arguments: build only
# the named peers (default: all four).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=/dev/null
source "$here/versions.env"
key="$(cat "$here/versions.env" "$here"/kube/go.mod "$here"/kube/go.sum \
        "$here"/kube/etcd/main.go "$here"/authenticator/go.mod "$here"/authenticator/go.sum \
        | sha256sum | cut -c1-16)"
cache="${KUBEIAM_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeiam/peers}/$key"
bin="$cache/bin"
want=(kube-apiserver kube-controller-manager etcd aws-iam-authenticator)
# `build.sh aws-iam-authenticator` (or any subset): only those, without waiting for the rest.
if (($#)); then want=("$@"); fi
missing=()
for b in "${want[@]}"; do [[ -x "$bin/$b" ]] || missing+=("$b"); done
if ((${#missing[@]} == 0)); then echo "$bin"; exit 0; fi
command -v go >/dev/null || { echo "build.sh: Go is needed to build the peers (apt-get install golang-go)" >&2; exit 1; }
mkdir -p "$bin"
# One build at a time per machine (parallel test workers or sessions wait for it).
exec 9>"$cache/.lock"
flock 9
missing=()
for b in "${want[@]}"; do [[ -x "$bin/$b" ]] || missing+=("$b"); done
if ((${#missing[@]} == 0)); then echo "$bin"; exit 0; fi
export GOFLAGS="-mod=mod -trimpath" CGO_ENABLED=0
log() { echo "peers: $*" >&2; }
start=$(date +%s)
build_kube() {
    local name=$1 pkg=$2
    log "building $name ($KUBERNETES_VERSION) ..."
    (cd "$here/kube" && go build -ldflags "-s -w \
        -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
        -X k8s.io/component-base/version.gitMajor=1 \
        -X k8s.io/component-base/version.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) \
        -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION" \
        -o "$bin/$name.tmp" "$pkg") && mv "$bin/$name.tmp" "$bin/$name"
}
for b in "${missing[@]}"; do
    case $b in
        kube-apiserver) build_kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver ;;
        kube-controller-manager) build_kube kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager ;;
        etcd)
            log "building etcd ($ETCD_VERSION) ..."
            (cd "$here/kube" && go build -ldflags "-s -w" -o "$bin/etcd.tmp" ./etcd) && mv "$bin/etcd.tmp" "$bin/etcd" ;;
        aws-iam-authenticator)
            log "building aws-iam-authenticator ($AWS_IAM_AUTHENTICATOR_VERSION) ..."
            (cd "$here/authenticator" && go build \
                -ldflags "-s -w -X sigs.k8s.io/aws-iam-authenticator/pkg.Version=$AWS_IAM_AUTHENTICATOR_VERSION" \
                -o "$bin/aws-iam-authenticator.tmp" sigs.k8s.io/aws-iam-authenticator/cmd/aws-iam-authenticator) \
                && mv "$bin/aws-iam-authenticator.tmp" "$bin/aws-iam-authenticator" ;;
    esac
done
log "built ${missing[*]} in $(( $(date +%s) - start )) s into $bin ($(du -sh "$bin" | cut -f1))"
echo "$bin"
