# kubeiam: `make demo` and `make test` work on a fresh Debian machine with python3 and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_WORKERS ?= 2

.PHONY: demo test lint bench soak fuzz-atheris kind-up clean deps-system peers cluster

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { apt-get update && apt-get install -y python3 python3-venv; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { apt-get update && apt-get install -y python3-venv; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[local,dev]' --config-settings editable_mode=compat
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Tests need a real kubectl (an exec-plugin consumer) and openssl-free TLS only.
deps-system:
	@if ls /usr/lib/google-cloud-sdk/bin/kubectl.1.* >/dev/null 2>&1 || command -v kubectl >/dev/null; then :; \
	else apt-get update && apt-get install -y kubernetes-client; fi

# The Go peers (kube-apiserver, kube-controller-manager, etcd, aws-iam-authenticator), built once
# per machine from the Go module proxy into ~/.cache/kubeiam/peers/<versions-hash>/.
peers:
	@command -v go >/dev/null || { apt-get update && apt-get install -y golang-go; }
	bash tests/peers/build.sh >/dev/null

demo: $(STAMP)
	$(VENV)/bin/kubeiam demo

# The suite: static checks first (ruff, mypy --strict), then pytest on 2 workers.
test: $(STAMP) deps-system peers lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not slow" -p no:cacheprovider --timeout 600

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP) deps-system
	$(PY) -m bench

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
