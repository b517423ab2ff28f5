"""forgetting_aus: the thin library behind the book reproducing Prajod et al. 2022.

Modules, one per concern: ``facs`` (vocabulary), ``config`` (profiles, seeding), ``cache``
(content-addressed artifacts), ``runner`` (papermill orchestration), ``synth`` (synthetic
FACS world and dataset twins), ``datasets`` (readers of the real formats), ``models``,
``losses``, ``training``, ``evaluation``, ``explain``, ``concepts``, ``plots``.
"""

__version__ = "0.1.0"

from . import truth_audit as _truth_audit

_truth_audit.install()  # a no-op unless FORGETTING_AUS_TRUTH_AUDIT is set (the smoke book's test)
