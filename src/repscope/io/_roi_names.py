"""ROI requests by name, shared by the NSD and Algonauts loaders.

Both datasets label voxels (or vertices) with integer ids per *family* (``prf-visualrois``,
``floc-bodies``, ...) and name the ids in a table. A request is one of

* a label name, ``"EBA"`` or ``"V1v"``, looked up in every family;
* ``"family:name"``, the label in that family only (to disambiguate);
* a family name alone, ``"floc-bodies"``: every label > 0 of that family;
* a dorsal+ventral alias, ``"V1"`` = ``V1v`` ∪ ``V1d`` where a family has both halves and no
  label called ``V1`` itself.

A bare name found both in one of NSD's curated families (``prf-visualrois``, ``floc-*``,
``streams``, ``nsdgeneral``) and in an atlas family (``Kastner2015``, ``HCP_MMP1``, which also
label V1v, V1 ...) means the curated label, so ``"V1"`` on a full NSD download is
``prf-visualrois``'s V1v ∪ V1d; ``"Kastner2015:V1v"`` asks for the atlas. A name found in more
than one family of the same kind is an error that suggests ``"family:name"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from repscope._validation import InputError

__all__ = ["RoiRequest", "available_listing", "resolve_rois"]

#: Atlas families: a bare name resolves to them only when no curated family has it.
ATLAS_FAMILIES = ("Kastner2015", "HCP_MMP1")

#: The halves a dorsal+ventral alias joins: ``"V1"`` -> ``("V1v", "V1d")``.
_ALIAS_SUFFIXES = ("v", "d")


@dataclass(frozen=True)
class RoiRequest:
    """One requested ROI resolved to label ids of one family.

    Attributes
    ----------
    name : str
        The request as the user wrote it (the key of ``BrainResponses.roi_masks``).
    family : str
        Family whose label volume holds the ROI.
    ids : tuple of int or None
        Label ids that make up the ROI; None means every label > 0 of the family.
    """

    name: str
    family: str
    ids: tuple[int, ...] | None


def resolve_rois(
    rois: str | Iterable[str], labels: Mapping[str, Mapping[int, str]]
) -> list[RoiRequest]:
    """Resolve ROI requests against the label tables of the families on disk.

    Parameters
    ----------
    rois : str or iterable of str
        One request or several, in the forms listed in the module docstring.
    labels : mapping of family to (mapping of label id to name)
        The families present, in preference order for messages; ids > 0 are labels.

    Returns
    -------
    list of RoiRequest
        One per request, in request order.

    Raises
    ------
    InputError
        No request, a repeated request, an unknown name or family, or an ambiguous name.
    """
    requests = [rois] if isinstance(rois, str) else list(rois)
    if not requests:
        raise InputError("rois is empty; pass at least one ROI name, e.g. rois=['EBA'].")
    seen: set[str] = set()
    resolved = []
    for request in requests:
        if not isinstance(request, str) or not request:
            raise InputError(f"ROI {request!r} is not a name; pass ROI names as strings.")
        if request in seen:
            raise InputError(f"ROI {request!r} is requested twice; pass each ROI once.")
        seen.add(request)
        resolved.append(_resolve_one(request, labels))
    return resolved


def _resolve_one(request: str, labels: Mapping[str, Mapping[int, str]]) -> RoiRequest:
    if ":" in request:
        family, name = request.split(":", 1)
        if family not in labels:
            raise InputError(
                f"ROI family {family!r} (in {request!r}) is not available; "
                f"families present: {', '.join(labels) or 'none'}."
            )
        ids = _ids_in_family(name, labels[family])
        if ids is None:
            raise InputError(
                f"ROI {name!r} is not a label of family {family!r}; its labels are: "
                f"{_family_listing(labels[family])}."
            )
        return RoiRequest(request, family, ids)
    if request in labels:
        return RoiRequest(request, request, None)
    matches = {}
    for family, table in labels.items():
        ids = _ids_in_family(request, table)
        if ids is not None:
            matches[family] = ids
    if not matches:
        from repscope.io._model_spec import near_matches

        names = sorted({n for t in labels.values() for i, n in t.items() if i > 0} | set(labels))
        raise InputError(
            f"unknown ROI {request!r}; available: {available_listing(labels)} "
            f"(or a family name, or V1/V2/V3 for ventral+dorsal){near_matches(request, names)}."
        )
    curated = {family: ids for family, ids in matches.items() if family not in ATLAS_FAMILIES}
    if curated:
        matches = curated
    if len(matches) > 1:
        options = " or ".join(f"'{family}:{request}'" for family in matches)
        raise InputError(
            f"ROI {request!r} is a label of several families ({', '.join(matches)}); "
            f"pass {options}."
        )
    ((family, ids),) = matches.items()
    return RoiRequest(request, family, ids)


def _ids_in_family(name: str, table: Mapping[int, str]) -> tuple[int, ...] | None:
    """Label ids named ``name`` in one family (or its v+d halves), None if absent."""
    by_name = {label: i for i, label in table.items() if i > 0}
    if name in by_name:
        return (by_name[name],)
    halves = [name + suffix for suffix in _ALIAS_SUFFIXES]
    if all(half in by_name for half in halves):
        return tuple(by_name[half] for half in halves)
    return None


def _family_listing(table: Mapping[int, str]) -> str:
    return " ".join(table[i] for i in sorted(table) if i > 0) or "(none)"


def available_listing(labels: Mapping[str, Mapping[int, str]]) -> str:
    """One line listing every family and its label names, for error messages."""
    if not labels:
        return "no ROI families found"
    return "; ".join(f"{family}: {_family_listing(table)}" for family, table in labels.items())
