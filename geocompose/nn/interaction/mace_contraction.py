"""MACE's symmetric contraction: ``A`` (N, K x irreps_a) and species → ``B`` (N, K x targets).

    B_i,k,LM = sum_{nu=1}^{correlation} sum_{eta} W^{nu}_{z_i,k,eta} (A_i,k (x) ... (x) A_i,k)^{nu}_{eta,LM}

The products of order ``nu`` are ``uuu`` plans of
:func:`~geocompose.nn.ops.paths.enumerate_paths`, made one order at a time
(``P^nu = P^{nu-1} (x) A``) and pruned (:func:`contraction_levels`). They act on each
channel ``k`` alike and carry no weights, so each order is one fixed bilinear map per
channel, ``P^nu_k = C^nu (P^{nu-1}_k (x) A_k)``: :class:`SymmetricContraction` builds
``C^nu`` once, by evaluating e3nn's product of that order (one channel) on basis
vectors, keeps the component pairs it couples, and runs each order as one product of
those pairs and one matmul over all N x K rows. e3nn's generated code runs a handful of small ops per coupling
(44 couplings at l_max 2, correlation 3), and a training step differentiates them
twice (forces with ``create_graph``, then the loss): per-op overhead dominated on
small batches (issue 19). The pair form gathers components one by one, which costs
memory traffic that e3nn's contiguous per-coupling blocks avoid: on many rows (atoms x
channels) x wide bases it is slower, so ``forward`` runs it only under
:data:`PAIR_FORM_LIMIT` and e3nn's products above (same weights, same state dict).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
from e3nn import o3
from torch import nn

from geocompose.nn.ops.channelwise import cat_last
from geocompose.nn.ops.paths import MixingMode, PathPlan, enumerate_paths
from geocompose.types import TypeRefusal


@dataclass(frozen=True)
class ContractionLevel:
    """The products of order ``nu``: ``irreps`` (each segment ``K x ir``) and, for
    ``nu >= 2``, the ``uuu`` :class:`PathPlan` that makes them from order ``nu - 1`` and
    ``A`` (None at ``nu = 1``, and where no coupling of that order is needed)."""

    irreps: o3.Irreps
    plan: PathPlan | None = None

    @property
    def couplings(self) -> tuple[tuple[int, int, int], ...]:
        """``(i_prev, i_a, i_out)`` of each coupling of this order."""
        paths = self.plan.paths if self.plan is not None else ()
        return tuple((p.i_in1, p.i_in2, p.i_out) for p in paths)


def contraction_levels(
    irreps_a: o3.Irreps, targets: list[o3.Irrep], correlation: int
) -> list[ContractionLevel]:
    """Products of ``A`` with itself up to ``correlation``, pruned to what can reach ``targets``.

    A segment of order ``nu`` is kept if it is a target irrep or can still reach one in
    the ``correlation - nu`` products left (``|l - l_t| <= l_max(A) * left``).
    """
    a_lmax = irreps_a.lmax
    target_ls = {ir.l for ir in targets}

    def useful(ir: o3.Irrep, left: int) -> bool:
        return ir in targets or (
            left > 0 and any(abs(ir.l - lt) <= a_lmax * left for lt in target_ls)
        )

    levels = [ContractionLevel(irreps_a)]  # order 1 is A itself (also every right factor)
    for nu in range(2, correlation + 1):
        prev = levels[-1].irreps

        def keep(i1: int, i2: int, ir3: o3.Irrep, nu: int = nu, prev: o3.Irreps = prev) -> bool:
            if not useful(ir3, correlation - nu):
                return False
            # A_k (x) A_k: (l2 x l1) repeats (l1 x l2); for l1 = l2 the part odd under
            # exchange, (-1)^(l1 + l2 + l3) = -1, is identically zero.
            ir1, ir2 = prev[i1].ir, irreps_a[i2].ir
            return not (nu == 2 and (i2 < i1 or (i2 == i1 and (ir1.l + ir2.l + ir3.l) % 2)))

        plan = enumerate_paths(prev, irreps_a, mode=MixingMode.UUU, keep=keep)
        if isinstance(plan, TypeRefusal):  # nothing of this order reaches a target
            levels.append(ContractionLevel(o3.Irreps("")))
            continue
        levels.append(ContractionLevel(plan.irreps_out, plan))
    return levels


MAX_CONTRACTION_COEFFICIENTS = 2_000_000
"""Most Clebsch-Gordan coefficients the symmetric contraction's products may hold.

Counted from irreps before anything is built (:func:`contraction_coefficients`). MACE's
published settings are far below (l_max 3, correlation 3: 5,184 per channel set);
l_max 8 at correlation 4 holds 27.9M, and e3nn needed minutes only to compile it."""


def contraction_coefficients(irreps_a: o3.Irreps, levels: list[ContractionLevel]) -> int:
    """Clebsch-Gordan coefficients of every coupling of every order: the build cost."""
    return sum(
        prev.irreps[i1].ir.dim * irreps_a[i2].ir.dim * level.irreps[i3].ir.dim
        for prev, level in pairwise(levels)
        for i1, i2, i3 in level.couplings
    )


def channel_rows(x: torch.Tensor, irreps: o3.Irreps) -> torch.Tensor:
    """(N, irreps.dim) in e3nn's layout, every segment ``K x ir`` → (N, K, irreps.dim / K):
    one row per channel holding all its components."""
    n = x.shape[0]
    parts = x.split([mul * ir.dim for mul, ir in irreps], -1)
    return cat_last([p.reshape(n, mul, ir.dim) for p, (mul, ir) in zip(parts, irreps)])


def coupling_matrix(plan: PathPlan, left: o3.Irreps, right: o3.Irreps) -> torch.Tensor:
    """(left.dim * right.dim, out.dim): the ``uuu`` product of ``plan`` for ONE channel as
    a matrix, row ``i * right.dim + j`` = product of basis vectors ``e_i`` and ``e_j``.

    ``left``/``right`` are the plan's inputs with multiplicity 1; e3nn's product of those
    (same couplings and normalisation: a ``uuu`` path's does not depend on the
    multiplicity) is bilinear, so its values on basis pairs are the whole map."""
    one = o3.TensorProduct(left, right, o3.Irreps([(1, ir) for _, ir in plan.irreps_out]),
                           plan.instructions())  # fmt: skip
    eye_l, eye_r = torch.eye(left.dim), torch.eye(right.dim)
    x1 = eye_l.repeat_interleave(right.dim, dim=0)  # (left.dim * right.dim, left.dim)
    x2 = eye_r.repeat(left.dim, 1)
    with torch.no_grad():
        return one(x1, x2)


PAIR_FORM_LIMIT = 2_000_000
"""Largest ``rows x gathered columns`` (N x K x ``pair_work``) run in the pair form.

The pair form runs ~10 ops per order where e3nn's runs ~10 per coupling, but gathers
components one by one: on 8 ethanol molecules (72 x 32 rows, l_max 2; 0.9M) a training
step took 0.67x the time of the per-coupling form, while on 512 Cu atoms x 128 channels
at l_max 3 (87M) its forward took 4x as long and on 16 atoms x 128 channels (2.7M)
twice as long forward, even with gradients; 256 x 32 at l_max 2 (3.2M): 0.73x with a
gradient, 1.6x forward alone (loaded 2-core machine, one thread)."""


class SymmetricContraction(nn.Module):
    """``A`` (N, K x irreps_a) and species (N,) → ``B`` (N, K x targets), see the module doc.

    Weights ``W^nu`` are one (species, K, paths) parameter per order and target, as in
    e3nn's per-coupling form; the sum over paths runs as one gather of the used
    columns of every order, a product with the weights of the atom's species spread over
    those columns, and one matmul adding each column into its output component.

    Args:
        irreps_a: the one-particle basis, one segment ``K x ir`` per irrep.
        irreps_out: the written irreps, all with multiplicity ``K``.
        correlation: the highest order ``nu`` (body order ``nu + 1``).
        num_species: rows of the per-species weights.
    """

    def __init__(
        self, irreps_a: o3.Irreps, irreps_out: o3.Irreps, correlation: int, num_species: int
    ):
        super().__init__()
        self.k = irreps_a[0].mul
        self.irreps_a, self.irreps_out = irreps_a, irreps_out
        targets = [ir for _, ir in irreps_out]
        self.levels = contraction_levels(irreps_a, targets, correlation)
        one_a = o3.Irreps([(1, ir) for _, ir in irreps_a])  # one channel's A
        # Per order nu >= 2, the pairs (prev component, A component) with a nonzero
        # coupling, and their rows of C^nu: most pairs couple to nothing (at l_max 2,
        # correlation 3: 131 of 324 at nu = 3), so only those are multiplied.
        couplings = []
        for prev, level in pairwise(self.levels):
            if level.plan is None:  # nothing of this order (nor above) reaches a target
                break
            one_prev = o3.Irreps([(1, ir) for _, ir in prev.irreps])
            couplings.append(coupling_matrix(level.plan, one_prev, one_a))
        self.orders = len(couplings)
        for nu, coupling in enumerate(couplings[:-1]):
            rows = coupling.abs().amax(-1).nonzero().flatten()  # rows = prev * A.dim + a
            self.register_buffer(f"left_{nu}", rows // one_a.dim, persistent=False)
            self.register_buffer(f"right_{nu}", rows % one_a.dim, persistent=False)
            self.register_buffer(f"coupling_{nu}", coupling[rows], persistent=False)  # (pairs, dim)
        # Every column of the orders: (path of its weight, output component), for the
        # columns a weight multiplies (targets); weights concatenated in creation order.
        self.weights = nn.ParameterList()
        counts = [sum(ir == t for lev in self.levels for _, ir in lev.irreps) for t in targets]
        out_offsets = [0]
        for ir in targets:
            out_offsets.append(out_offsets[-1] + ir.dim)
        weighted: list[dict[int, tuple[int, int]]] = []  # per order: column -> (path, component)
        path_offset = 0
        for level in self.levels:
            one = o3.Irreps([(1, ir) for _, ir in level.irreps])
            weighted.append({})
            for t, target in enumerate(targets):
                slices = [sl for sl, (_, ir) in zip(one.slices(), one) if ir == target]
                if not slices:
                    continue
                # Same draws, in the same order, as the per-coupling form always made.
                self.weights.append(nn.Parameter(
                    torch.randn(num_species, self.k, len(slices)) / counts[t] ** 0.5))  # fmt: skip
                full = [
                    sl for sl, (_, ir) in zip(level.irreps.slices(), level.irreps) if ir == target
                ]
                self.register_buffer(f"columns_{len(weighted) - 1}_{t}",
                                     torch.cat([torch.arange(sl.start, sl.stop) for sl in full]))  # fmt: skip
                for p, sl in enumerate(slices):
                    for m, column in enumerate(range(sl.start, sl.stop)):
                        weighted[-1][column] = (path_offset + p, out_offsets[t] + m)
                path_offset += len(slices)
        # Terms of B: the weighted columns of the orders below the last (concatenated),
        # then the last order's coupling entries (pair, column, coefficient) directly:
        # it feeds nothing further, so its products are never formed as columns.
        columns, paths, components, coefficients, offset = [], [], [], [], 0
        for nu, level in enumerate(self.levels[: max(self.orders, 1)]):  # A at least
            for column, (path, component) in sorted(weighted[nu].items()):
                columns.append(offset + column)
                paths.append(path)
                components.append(component)
                coefficients.append(1.0)
            offset += level.irreps.dim // self.k
        self.register_buffer("columns", torch.tensor(columns, dtype=torch.long), persistent=False)
        left, right = [], []
        last = couplings[-1] if couplings else torch.zeros(0, 0)
        for row, column in last.nonzero().tolist():
            if column in weighted[self.orders]:
                path, component = weighted[self.orders][column]
                left.append(row // one_a.dim)
                right.append(row % one_a.dim)
                paths.append(path)
                components.append(component)
                coefficients.append(float(last[row, column]))
        self.register_buffer("last_left", torch.tensor(left, dtype=torch.long), persistent=False)
        self.register_buffer("last_right", torch.tensor(right, dtype=torch.long), persistent=False)
        self.register_buffer("paths", torch.tensor(paths, dtype=torch.long), persistent=False)
        # (terms, output components): each term's coefficient in its component.
        add = torch.zeros(len(paths), out_offsets[-1])
        add[torch.arange(len(paths)), torch.tensor(components, dtype=torch.long)] = torch.tensor(
            coefficients, dtype=add.dtype
        )
        self.register_buffer("add", add, persistent=False)
        self.out_sizes = [ir.dim for ir in targets]
        # The per-coupling form: e3nn's product of each order on all K channels at once.
        self.products = nn.ModuleList()
        for prev, level in pairwise(self.levels):
            if level.plan is not None:
                self.products.append(level.plan.tensor_product(shared_weights=True))
            else:  # an empty order (no coupling needed): e3nn builds an all-zero product
                self.products.append(o3.TensorProduct(prev.irreps, irreps_a, level.irreps, []))
        self.terms = [[t for t in range(len(targets)) if hasattr(self, f"columns_{nu}_{t}")]
                      for nu in range(len(self.levels))]  # fmt: skip
        # Pair form while rows x gathered columns stays under this (see forward).
        self.pair_work = (
            len(paths)
            + sum(2 * getattr(self, f"left_{nu}").numel() for nu in range(self.orders - 1))
            + self.last_left.numel()
        )

    def forward(self, a: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        if a.shape[0] * self.k * self.pair_work <= PAIR_FORM_LIMIT:
            return self.pair_form(a, species)
        return self.per_coupling_form(a, species)

    def per_coupling_form(self, a: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """e3nn's product per order, then per order and target ``sum_p W[z,k,p] P[p]``."""
        n, k = a.shape[0], self.k
        out = [a.new_zeros(n, k, ir.dim) for _, ir in self.irreps_out]
        product, w = a, iter(self.weights)
        for nu, terms in enumerate(self.terms):
            if nu > 0:
                product = self.products[nu - 1](product, a)  # (N, level.irreps.dim)
            for t in terms:
                d = self.irreps_out[t].ir.dim
                # (N, paths, K, 2l+1): gathering, not slicing (a slice's backward zero-fills
                # a full-size gradient per slice).
                columns = getattr(self, f"columns_{nu}_{t}")
                segments = product.index_select(-1, columns).view(n, -1, k, d)
                out[t] = out[t] + torch.einsum("nkp,npkd->nkd", next(w)[species], segments)
        return torch.cat([o.reshape(n, k * o.shape[-1]) for o in out], dim=-1)

    def pair_form(self, a: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """The dense coupling matrices on each channel's components (module doc)."""
        n = a.shape[0]
        a = channel_rows(a, self.irreps_a)  # (N, K, A.dim)
        products, product = [a], a
        for nu in range(self.orders - 1):
            # (N, K, pairs) @ (pairs, level.dim): the next order.
            pairs = product.index_select(-1, getattr(self, f"left_{nu}")) * a.index_select(
                -1, getattr(self, f"right_{nu}")
            )
            product = pairs @ getattr(self, f"coupling_{nu}")
            products.append(product)
        terms = [cat_last(products).index_select(-1, self.columns)]  # (N, K, columns)
        if self.orders:  # the last order's pairs, (N, K, entries)
            terms.append(
                product.index_select(-1, self.last_left) * a.index_select(-1, self.last_right)
            )
        weights = torch.cat(list(self.weights), -1)[species]  # (N, K, paths)
        b = (cat_last(terms) * weights.index_select(-1, self.paths)) @ self.add  # (N, K, sum 2L+1)
        # e3nn layout: per target, its K x (2L+1) block.
        parts = b.split(self.out_sizes, -1)
        return cat_last([o.reshape(n, self.k * d) for o, d in zip(parts, self.out_sizes)])

    def extra_repr(self) -> str:
        sizes = ", ".join(
            f"nu={nu + 1}: {len(lev.irreps)} couplings" for nu, lev in enumerate(self.levels)
        )
        return f"K={self.k}, out={self.irreps_out}, {sizes}"
