"""The canonical edge order: (receiver, sender, shift), lexicographic.

Every graph builder returns its edges in this order (a deterministic order that does
not depend on vesin's thread count; receiver-sorted scatters are ~4x faster, DESIGN.md
§5). Getting there is most of the cost of a radius graph on top of vesin's search, so
it is done with packed keys: an edge becomes one int64, the keys are sorted as plain
values and unpacked into the rows of the output edge index.
"""

from __future__ import annotations

import functools
import sys

import numpy as np

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # receivers (E,), senders (E,), shifts (E, 3)

# canonical_edges packs an edge into one int64 key: the receiver in the high 32-bit
# word, the sender and the shift code in the low one, which holds this many bits.
_LOW_WORD_BITS = 32
_HIGH_WORD_BITS = 31  # the receiver; the key stays non-negative
# Keys whose fields both fit this many bits are radix sorted (_sort_keys).
_RADIX_BITS = 16
# Index of the low 32-bit word of an int64 seen as two uint32s.
_LOW_WORD = 0 if sys.byteorder == "little" else 1
# Largest table of shift vectors decoded through (rows = images per axis, cubed).
_SHIFT_TABLE_ROWS = 1 << 15


def canonical_edges(
    receivers: np.ndarray, senders: np.ndarray, shifts: np.ndarray, n: int, mirror: bool = False
) -> Pairs:
    """Edges in (receiver, sender, shift) order; keys are unique, so the order is total.

    With ``mirror``, each given pair ``(i, j, S)`` stands for two edges, itself and
    ``(j, i, -S)`` (a half list in, the full list out); the caller guarantees that no
    given pair is the mirror of another. Returns fresh arrays (never views of the
    inputs, which may be vesin's buffers); senders and receivers are the rows of one
    (2, E) array (``neighbours.edge_index_array``).
    """
    if len(receivers) == 0:
        return empty_pairs()
    # Shift digits run over a range symmetric about 0, so that negating a shift maps
    # its code c to span^3 - 1 - c. Flat reductions: numpy's axis-0 ones over (E, 3)
    # are slow.
    reach = max(-int(shifts.min()), int(shifts.max()))
    span = 2 * reach + 1  # values per shift component
    atom_bits = max(n - 1, 1).bit_length()
    code_bits = max(span**3 - 1, 1).bit_length()
    if atom_bits + code_bits > _LOW_WORD_BITS or atom_bits > _HIGH_WORD_BITS:
        # Too many atoms times images for one low word: rare (~10^8 atoms), slower.
        if mirror:
            receivers, senders = (
                np.concatenate([receivers, senders]),
                np.concatenate([senders, receivers]),
            )
            shifts = np.concatenate([shifts, -np.asarray(shifts, dtype=np.int64)])
        order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], senders, receivers))
        index = np.stack([senders[order], receivers[order]]).astype(np.int64, copy=False)
        return index[1], index[0], shifts[order].astype(np.int64)
    # Pack receiver, sender and the shift (one base-`span` code) into one int64, sort
    # the values alone and unpack them: a value sort streams through memory, while
    # argsort-then-gather makes random passes (4.1M edges: 0.9 s against 0.1 s). The
    # shift code is built in int32 and decoded by a lookup in a (span^3, 3) table.
    narrow = code_bits <= 30 and shifts.dtype == np.int32  # else int64 arithmetic
    code = shifts[:, 0] + (np.int32(reach) if narrow else np.int64(reach))  # (P,)
    for axis in (1, 2):
        code *= span
        code += shifts[:, axis]
    code += reach * (span + 1)  # the offsets of components 1 and 2, left out above
    pairs = len(receivers)
    edges = 2 * pairs if mirror else pairs
    # The (2, E) output (rows senders, receivers: an edge index) holds everything: the
    # keys are built and sorted in the receivers row and decoded out of it, with the
    # senders row as scratch. Each fresh multi-MB array costs page faults as well as
    # its pass (4.1M edges: a separate key array cost more than its 3 passes).
    index = np.empty((2, edges), dtype=np.int64)
    key, scratch = index[1], index[0, :pairs]
    forward = key[:pairs]
    np.left_shift(receivers, _LOW_WORD_BITS, out=forward)
    forward |= np.left_shift(senders, code_bits, out=scratch)
    forward |= code
    if mirror:  # (j, i, -S): the same arrays with the atom fields swapped
        backward = key[pairs:]
        np.left_shift(senders, _LOW_WORD_BITS, out=backward)
        backward |= np.left_shift(receivers, code_bits, out=scratch)
        backward |= np.subtract(span**3 - 1, code, out=code)
    _sort_keys(key, atom_bits + code_bits)
    # A strided view of the low words: sender and code come out in one pass each.
    low = key.view(np.uint32)[_LOW_WORD::2]
    code = np.bitwise_and(low, (1 << code_bits) - 1, out=index[0])
    if span**3 <= _SHIFT_TABLE_ROWS:
        out_shifts = np.take(_shift_table(reach), code, axis=0)  # half the time of table[code]
    else:  # many images per axis: decode digit by digit
        out_shifts = np.empty((edges, 3), dtype=np.int64)
        code = code.copy()
        for axis in (2, 1, 0):
            code, out_shifts[:, axis] = np.divmod(code, span)
        out_shifts -= reach
    np.right_shift(low, code_bits, out=index[0])
    np.right_shift(key, _LOW_WORD_BITS, out=key)  # in place: the receivers
    return index[1], index[0], out_shifts


def _sort_keys(key: np.ndarray, low_bits: int) -> None:
    """Sort packed keys (unique) in place; ``low_bits`` of the low word are in use."""
    if low_bits <= _RADIX_BITS:
        # Small structures (<= 2,048 atoms at one image per axis): both fields fit
        # 16 bits, and numpy's stable argsort of uint16 is a radix sort, so two of
        # them (low field, then receiver) order the keys in linear time: 0.57 ms
        # against 1.0 ms for timsort at 36k edges (864 atoms).
        words = key.view(np.uint16)  # four per key
        order = np.argsort(words[_LOW_WORD * 3 :: 4], kind="stable")
        order = order[np.argsort(words[2 - _LOW_WORD :: 4][order], kind="stable")]
        key[:] = key[order]
        return
    # Keys are unique, so "stable" only picks the algorithm: timsort exploits the
    # short ascending runs in vesin's output (4.1M edges, 2 busy cores: 90 ms
    # against 265 ms for quicksort and 270 ms for torch.sort, whose thread pool
    # also suffers most when the cores are shared).
    key.sort(kind="stable")


@functools.lru_cache(maxsize=8)
def _shift_table(reach: int) -> np.ndarray:
    """(span^3, 3) read-only table: row c is the shift whose code is c, for components
    in [-reach, reach] (a table per call cost 0.3 ms, 5 % of a 900-atom graph)."""
    grid = np.arange(-reach, reach + 1, dtype=np.int64)
    table = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)
    table.flags.writeable = False
    return table


def empty_pairs() -> Pairs:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
