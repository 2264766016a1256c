"""Propagate field types block by block; refuse what does not type-check, located."""

from __future__ import annotations

from geocompose.compiler.resolve import Stage
from geocompose.errors import BlueprintError
from geocompose.types import FieldType
from geocompose.types import fields as F
from geocompose.types.signature import Signature, TypeRefusal


def typecheck(stages: list[Stage], locate) -> tuple[list[Signature], dict[str, FieldType]]:
    """Signatures of all stages, and the field types after the last one.

    Args:
        stages: resolved stages in pipeline order.
        locate: knob path → Location (or None), to point errors at the YAML.

    Raises:
        BlueprintError: the first stage whose typing rule refuses its upstream, or a
            block that claims to read a field with a type upstream does not give.
    """
    upstream: dict[str, FieldType] = dict(F.INPUT_TYPES)
    signatures = []
    for stage in stages:
        knob = stage.knob.split("#")[0]
        sig = stage.signature(upstream)
        if isinstance(sig, TypeRefusal):
            raise BlueprintError(sig.render(), locate(knob), knob)
        for name, ftype in sig.reads.items():
            if upstream.get(name) != ftype:
                raise BlueprintError(
                    f"'{stage.label}' declares it reads `{name}` as {ftype}, but upstream "
                    f"gives {upstream.get(name, 'nothing')} (a bug in that block's signature)",
                    locate(knob),
                    knob,
                )
        upstream.update(sig.writes)
        signatures.append(sig)
    return signatures, upstream
