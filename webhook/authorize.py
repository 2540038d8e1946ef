"""``POST /authorize``: SubjectAccessReviews decided from RBAC files and deny rules.

Optional: enabled by the server config's ``authorization`` key::

    authorization:
      rbacPaths: [/etc/kubeiam/rbac]        # files or directories (YAML/JSON, Lists)
      privilegedBypass: true                # allow group system:masters first (default)
      denyRules:                            # checked before RBAC (policy/rbac/authz.py)
        - name: no-prod-secrets
          subjects: [{kind: Group, name: contractors}]
          verbs: [get, list, watch]
          apiGroups: [""]
          resources: [secrets]
          namespaces: [prod]

Answers (docs/rbac-and-tiers.md): ``allowed: true`` when RBAC allows; ``denied:
true`` when a deny rule matches (placed before RBAC in an
``AuthorizationConfiguration``, that denies what the cluster's RBAC would
allow); otherwise NoOpinion (``allowed: false`` only), so the next authorizer
decides; dangling role references go to ``evaluationError``. A body that is not
a SubjectAccessReview (also: not strict JSON, a repeated key) is answered 400
(the API server then applies its ``failurePolicy``); as on ``/authenticate``, a
body over 64 KiB is a 413 and any method but POST a 405, both with a JSON
Kubernetes ``Status`` body. The RBAC objects are re-read when a file under
``rbacPaths`` changes (checked at most every few seconds); a bad reload keeps
the last good objects.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import MethodNotAllowed, RequestEntityTooLarge

from policy.errors import InvalidPolicyError
from policy.rbac.authz import DenyRule, decide, parse_deny_rules
from policy.rbac.evaluator import RBACPolicy
from policy.rbac.load import load_rbac_paths
from policy.rbac.sar import build_sar_response, parse_subject_access_review
from webhook.errors import ConfigError, InvalidReviewError
from webhook.tokenreview import MAX_BODY_BYTES, build_status, parse_json_body
from webhook.views import ALL_METHODS, read_body

__all__ = ["AuthorizationSettings", "RBACHolder", "authorize_bp", "install_authorizer"]

log = logging.getLogger(__name__)
authorize_bp = Blueprint("authorize", __name__)
_EXTENSION = "kubeiam.authorize"
_KEYS = frozenset({"rbacPaths", "denyRules", "privilegedBypass"})
# How often the RBAC files' modification times are compared (seconds).
RELOAD_CHECK_S = 2.0


@dataclass(frozen=True, slots=True)
class AuthorizationSettings:
    """The ``authorization`` section of the server config."""

    rbac_paths: tuple[Path, ...]
    deny_rules: tuple[DenyRule, ...] = ()
    privileged_bypass: bool = True

    @classmethod
    def parse(
        cls, raw: object, *, base_dir: Path | None = None
    ) -> AuthorizationSettings:
        """Build the settings from the parsed ``authorization`` mapping.

        Args:
            raw: The mapping.
            base_dir: Directory that relative ``rbacPaths`` resolve against.

        Returns:
            The settings.

        Raises:
            ConfigError: A key is unknown or has a bad value.
        """
        if not isinstance(raw, Mapping):
            raise ConfigError("authorization: must be a mapping")
        unknown = set(raw) - _KEYS
        if unknown:
            raise ConfigError(f"authorization: unknown key(s) {sorted(unknown)}")
        paths = raw.get("rbacPaths") or []
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ConfigError("authorization.rbacPaths: must be a list of paths")
        bypass = raw.get("privilegedBypass", True)
        if not isinstance(bypass, bool):
            raise ConfigError("authorization.privilegedBypass: must be true or false")
        try:
            rules = parse_deny_rules(
                raw.get("denyRules"), where="authorization.denyRules"
            )
        except InvalidPolicyError as exc:
            raise ConfigError(str(exc)) from exc
        base = base_dir or Path()
        resolved = tuple(Path(p) if Path(p).is_absolute() else base / p for p in paths)
        return cls(resolved, rules, bypass)


class RBACHolder:
    """The current RBAC objects, re-read when the files change.

    Args:
        paths: Files or directories.
        clock: Monotonic seconds (injected for tests).
    """

    def __init__(
        self, paths: tuple[Path, ...], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._paths = paths
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._checked = clock()
        self.policy: RBACPolicy = self._load()

    def _stat(self) -> tuple[tuple[str, int], ...]:
        out: list[tuple[str, int]] = []
        for path in self._paths:
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            for f in files:
                try:
                    out.append((str(f), f.stat().st_mtime_ns))
                except OSError:
                    out.append((str(f), -1))
        return tuple(out)

    def _load(self) -> RBACPolicy:
        try:
            return load_rbac_paths(list(self._paths)).policy()
        except InvalidPolicyError as exc:
            raise ConfigError(f"authorization.rbacPaths: {exc}") from exc

    def current(self) -> RBACPolicy:
        """The policy, reloaded first if a file changed since the last check.

        Returns:
            The newest good policy.
        """
        now = self._clock()
        if now - self._checked < RELOAD_CHECK_S:
            return self.policy
        with self._lock:
            self._checked = now
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self.policy = self._load()
                    log.info(
                        "rbac reloaded", extra={"paths": [str(p) for p in self._paths]}
                    )
                except ConfigError as exc:
                    log.warning(
                        "rbac reload failed, keeping the last good objects: %s", exc
                    )
        return self.policy


@dataclass(frozen=True, slots=True)
class _State:
    settings: AuthorizationSettings
    holder: RBACHolder


def install_authorizer(
    app: Flask, raw: object, *, base_dir: Path | None = None
) -> bool:
    """Enable ``POST /authorize`` when the config has an ``authorization`` section.

    Args:
        app: The webhook app.
        raw: The ``authorization`` mapping, or None (the endpoint stays off).
        base_dir: Directory relative paths resolve against (the config's).

    Returns:
        Whether the endpoint was installed.

    Raises:
        ConfigError: The section or the RBAC files are invalid.
    """
    if raw is None:
        return False
    settings = AuthorizationSettings.parse(raw, base_dir=base_dir)
    app.extensions[_EXTENSION] = _State(settings, RBACHolder(settings.rbac_paths))
    app.register_blueprint(authorize_bp)
    return True


def _json(doc: Mapping[str, object], status: int) -> Response:
    return Response(json.dumps(doc), status=status, mimetype="application/json")


@authorize_bp.route(
    "/authorize", methods=list(ALL_METHODS), provide_automatic_options=False
)
def authorize() -> ResponseReturnValue:
    """Decide one SubjectAccessReview (v1 or v1beta1), answering in its apiVersion."""
    if request.method != "POST":
        raise MethodNotAllowed(valid_methods=["POST"])
    state: _State = current_app.extensions[_EXTENSION]
    try:
        body = parse_json_body(read_body())
    except InvalidReviewError as exc:
        raise InvalidPolicyError(
            f"body: {exc.message}", policy="SubjectAccessReview"
        ) from exc
    review = parse_subject_access_review(body)
    result = decide(
        state.holder.current(),
        review.user,
        review.attributes,
        deny_rules=state.settings.deny_rules,
        privileged_bypass=state.settings.privileged_bypass,
    )
    log.info(
        "authorize",
        extra={"user": review.user.name, "decision": result.decision.value},
    )
    answer = build_sar_response(
        review.api_version,
        result.decision,
        reason=result.reason,
        evaluation_error=result.evaluation_error,
    )
    return _json(answer, 200)


@authorize_bp.errorhandler(InvalidPolicyError)
def _bad_review(exc: InvalidPolicyError) -> ResponseReturnValue:
    log.info("authorize: bad request: %s", exc)
    return _json({"error": "not a SubjectAccessReview", "detail": str(exc)}, 400)


@authorize_bp.errorhandler(MethodNotAllowed)
def _method_not_allowed(exc: MethodNotAllowed) -> ResponseReturnValue:
    log.info("authorize: method %s not allowed", request.method)
    response = _json(build_status(405, "MethodNotAllowed", "expected POST"), 405)
    response.headers["Allow"] = "POST"
    return response


@authorize_bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
    message = f"the body exceeds {MAX_BODY_BYTES} bytes"
    log.info("authorize: %s", message)
    return _json(build_status(413, "RequestEntityTooLarge", message), 413)
