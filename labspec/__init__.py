"""labspec: the lab spec language. Reads YAML, renders params, validates, builds the model.

This package never imports docker, paramiko or provisioner (a test proves it).
"""

from labspec.errors import LabupError, Problem, SpecError

__all__ = ["LabupError", "Problem", "SpecError"]
