"""IAM policy evaluation: parse, evaluate and explain AWS policies (pure).

Modules: ``model`` parses and validates (``compile_policy``), ``statement`` the
compiled types, ``request`` the inputs, ``evaluator`` AWS's decision procedure
(``evaluate``), ``trace`` the results, ``principals``/``conditions``/
``variables``/``arnmatch``/``keys`` the matchers; ``accounts`` reads
``get-account-authorization-details``, ``suite`` and ``webidentity`` serve
``kubeiam policy test``; ``cli`` is ``kubeiam policy simulate|explain|test|lint``.
Imports nothing from ``policy.rbac``, ``policy.tiers`` or ``policy.paths``.
"""

from __future__ import annotations

__all__: list[str] = []
