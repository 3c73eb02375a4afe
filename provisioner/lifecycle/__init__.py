"""What to do on one engine: plan, up, down, reset and status of a lab instance.

The verbs live in :mod:`provisioner.lifecycle.verbs`; this face hands them on. The steps:
``planner`` (desired vs observed, by labels and config hashes), ``images``, ``apply``
(create and start), ``destroy`` (down, rollback), ``instances`` (status), ``progress``.
"""

from provisioner.lifecycle.verbs import UpFailed, UpResult, down, plan, reset, status, up

__all__ = ["UpFailed", "UpResult", "down", "plan", "reset", "status", "up"]
