"""Per-run knobs as Dagster run config: what a person changes for one run in the launchpad.

A field left empty (the default) takes the resource's value, which its RECLAKE_* variable sets, so
a run without config runs as the environment says; a field set in the launchpad replaces it for
that run only. `reclake config` and docs/configuration.md name each knob's variable.
"""

import dagster as dg
from pydantic import Field


def knob(variable: str, what: str, ge: int = 0, le: int | None = None):
    """A run-config field, empty by default, whose description names the variable behind it; a set
    value is checked against the same bounds as the variable's."""
    return Field(default=None, ge=ge, le=le, description=f"{what}; empty: {variable}")


class RunKnobs(dg.Config):
    """Run config over a resource's fields (same names): the set ones replace the resource's."""

    def overrides(self) -> dict:
        return {k: v for k, v in self.model_dump().items() if v is not None}
