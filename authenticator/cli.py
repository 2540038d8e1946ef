"""Shell entry points of the identity core: ``token`` and ``sts-emulator``.

``kubeiam verify`` is wired in :mod:`kubeiam.verify_cli` (it reads the server config).

Each delegates lazily to its own module so that ``kubeiam token`` loads only
what a token needs.
"""

from __future__ import annotations


def token_main(argv: list[str]) -> int:
    """``kubeiam token``: see :mod:`authenticator.token_cli`."""
    from authenticator.token_cli import main

    return main(argv)


def emulator_main(argv: list[str]) -> int:
    """``kubeiam sts-emulator``: see :mod:`authenticator.emulator_cli`."""
    from authenticator.emulator_cli import main

    return main(argv)
