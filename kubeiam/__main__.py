"""``python -m kubeiam``."""

from __future__ import annotations

from kubeiam.cli import main

raise SystemExit(main())
