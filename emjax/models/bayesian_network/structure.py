"""The DAG of a Bayesian network: parsing into a hashable canonical form, checks, ordering.

The canonical structure is a tuple of ``(child, parents)`` pairs, one per variable in order, with
``parents`` a tuple (the order of the child's CPT's leading axes); it is itself a valid input.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping


def check_cardinalities(cardinalities) -> tuple:
    """``cardinalities`` as a tuple of positive ints."""
    try:
        cards = tuple(cardinalities)
    except TypeError:
        raise ValueError(f"cardinalities must be a sequence of positive integers; got "
                         f"{cardinalities!r}.") from None
    if not cards:
        raise ValueError("cardinalities must name at least one variable; got an empty sequence.")
    for v, c in enumerate(cards):
        if not isinstance(c, numbers.Integral) or isinstance(c, bool) or c < 1:
            raise ValueError(f"cardinalities[{v}] must be a positive integer; got {c!r}.")
    return tuple(int(c) for c in cards)


def _variable(value, n_vars: int, what: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not 0 <= value < n_vars:
        raise ValueError(f"structure: unknown {what} {value!r}; variables are the integers "
                         f"0..{n_vars - 1} (one per entry of cardinalities).")
    return int(value)


def _is_sequence(value) -> bool:
    return hasattr(value, "__iter__") and not isinstance(value, (str, bytes))


def canonical_structure(structure, n_vars: int) -> tuple:
    """``((0, parents of 0), (1, parents of 1), ...)`` from ``{child: parents}`` or pairs.

    Raises:
        ValueError: a child or parent outside ``0..n_vars-1``, a child listed twice, a repeated
            parent, or a cycle (the cycle is named).
    """
    pairs = structure.items() if isinstance(structure, Mapping) else structure
    parents = [()] * n_vars
    listed = set()
    try:
        pairs = [(child, ps) for child, ps in pairs]
    except (TypeError, ValueError):
        raise ValueError("structure must be a mapping {child: parents} or a sequence of "
                         f"(child, parents) pairs; got {structure!r}.") from None
    for child, ps in pairs:
        child = _variable(child, n_vars, "child")
        if child in listed:
            raise ValueError(f"structure lists variable {child} as a child more than once.")
        listed.add(child)
        if not isinstance(ps, numbers.Integral) and not _is_sequence(ps):
            raise ValueError(f"structure: the parents of variable {child} must be a variable index "
                             f"or a sequence of them; got {ps!r}.")
        ps = (ps,) if isinstance(ps, numbers.Integral) else tuple(ps)
        ps = tuple(_variable(p, n_vars, f"parent of variable {child}:") for p in ps)
        if len(set(ps)) != len(ps):
            raise ValueError(f"structure: variable {child} has a repeated parent in {ps}.")
        parents[child] = ps
    topological_order(tuple(parents))
    return tuple(enumerate(parents))


def topological_order(parents) -> tuple:
    """Variables with every parent before its children; raises ``ValueError`` naming a cycle.

    ``parents[v]`` is the tuple of parents of variable ``v``.
    """
    order, state = [], {}  # state: 1 = on the current path, 2 = done

    def visit(v, path):
        if state.get(v) == 2:
            return
        if state.get(v) == 1:
            cycle = path[path.index(v):] + [v]
            raise ValueError("structure has a cycle: " + " -> ".join(map(str, cycle[::-1]))
                             + " (each arrow points from parent to child).")
        state[v] = 1
        for p in parents[v]:
            visit(p, path + [v])
        state[v] = 2
        order.append(v)

    for v in range(len(parents)):
        visit(v, [])
    return tuple(order)
