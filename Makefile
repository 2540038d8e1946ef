# kubeiam: `make demo` and `make test` work on a fresh Debian machine with python3 and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_WORKERS ?= 2

.PHONY: demo test lint bench soak fuzz-atheris kind-up clean deps-system peers peer-npm differential cluster

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { apt-get update && apt-get install -y python3 python3-venv; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { apt-get update && apt-get install -y python3-venv; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[local,dev]' --config-settings editable_mode=compat
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Tests need a real kubectl (an exec-plugin consumer), openssl-free TLS only, and
# Graphviz's dot (`kubeiam policy paths -o svg`); `make bench` uses hyperfine for
# the `kubeiam token` start-up row and drives the webhook servers with wrk.
deps-system:
	@if ls /usr/lib/google-cloud-sdk/bin/kubectl.1.* >/dev/null 2>&1 || command -v kubectl >/dev/null; then :; \
	else apt-get update && apt-get install -y kubernetes-client; fi
	@command -v dot >/dev/null || { apt-get update && apt-get install -y graphviz; }
	@command -v wrk >/dev/null || { apt-get update && apt-get install -y wrk; }
	@command -v hyperfine >/dev/null || { apt-get update && apt-get install -y hyperfine; }

# The Go peers (kube-apiserver, kube-controller-manager, etcd, aws-iam-authenticator), built once
# per machine from the Go module proxy into ~/.cache/kubeiam/peers/<versions-hash>/.
peers:
	@command -v go >/dev/null || { apt-get update && apt-get install -y golang-go; }
	bash tests/peers/build.sh >/dev/null

# The IAM differential peer (@cloud-copilot/iam-simulate, pinned in tests/peers/npm/package-lock.json),
# installed once into tests/peers/npm/node_modules (gitignored).
PEER_NPM := tests/peers/npm/node_modules/.package-lock.json
$(PEER_NPM): tests/peers/npm/package.json tests/peers/npm/package-lock.json
	@command -v node >/dev/null || { apt-get update && apt-get install -y nodejs npm; }
	cd tests/peers/npm && npm ci --no-audit --no-fund --silent
	touch $(PEER_NPM)

peer-npm: $(PEER_NPM)


demo: $(STAMP)
	$(VENV)/bin/kubeiam demo

# The suite: static checks first (ruff, mypy --strict), then pytest on 2 workers.
test: $(STAMP) deps-system peers peer-npm lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not slow" -p no:cacheprovider --timeout 600

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP) deps-system peers peer-npm
	$(PY) -m bench

# The differentials at full size (make test runs a bounded, fixed-seed part of each):
# kubeiam's IAM engine against iam-simulate (20,000 generated cases), and kubeiam's verifier
# against aws-iam-authenticator (needs root for the STS namespace; see docs/testing.md).
DIFFERENTIAL_COUNT ?= 10000
differential: $(STAMP) $(PEER_NPM) peers
	$(PY) -m tests.policy.iam.iam_differential --seed 1 --count 20000
	KUBEIAM_DIFFERENTIAL_COUNT=$(DIFFERENTIAL_COUNT) $(PY) -m pytest -p no:cacheprovider -s -q tests/differential

soak: $(STAMP)
	$(PY) -m pytest -m slow -p no:cacheprovider tests

fuzz-atheris: $(STAMP)
	$(PY) -m pip install -q 'atheris>=2.3,<3'
	$(PY) bench/fuzz_atheris.py -max_total_time=300

# A local control plane (etcd + kube-apiserver built by `make peers`) with kubeiam wired in,
# no Docker needed; prints the kubectl commands to try. See docs/getting-started-local-cluster.md.
cluster: $(STAMP) deps-system peers
	$(PY) -m tests.fixtures.controlplane

# Needs Docker and kind (not available on the CI machines); see docs/getting-started-kind.md.
kind-up:
	bash manifests/kind-up.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
