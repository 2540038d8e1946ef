"""Shell entry points of the webhook: ``server`` and ``mappings``."""

from __future__ import annotations


def server_main(argv: list[str]) -> int:
    """``kubeiam server``: see :mod:`webhook.server_cli`."""
    from webhook.server_cli import main

    return main(argv)


def mappings_main(argv: list[str]) -> int:
    """``kubeiam mappings``: see :mod:`webhook.mappings_cli`."""
    from webhook.mappings_cli import main

    return main(argv)
