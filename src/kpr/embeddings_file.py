"""The ``.npz`` file ``kpr embed`` writes, streamed to disk batch by batch.

Members: ``embeddings`` [N, 1+K, D] float32 (L2-normalised per slot), ``visibility`` [N, 1+K],
``prompted`` [N] bool and ``names`` [N] str. Rows are appended to raw files in a temporary
directory next to the output and assembled into the zip at the end, so memory stays bounded by
one batch and an interrupted run leaves nothing at the output path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np

from kpr.errors import KPRError
from kpr.io_utils import atomic_path, naming_errors
from kpr.predictor import Embeddings

_TENSORS = ("embeddings", "visibility", "prompted")


class EmbeddingsWriter:
    """Append embedded batches, then :meth:`close` writes the ``.npz`` atomically.

    Use as a context manager; leaving it through an exception writes nothing.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with naming_errors(self.path):
            self._tmp = tempfile.TemporaryDirectory(
                prefix=f".{self.path.name}.", dir=self.path.parent
            )
        self._files: dict[str, BinaryIO] = {}
        self._rows: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        self.names: list[str] = []

    def add(self, names: Sequence[str], embedded: Embeddings) -> None:
        """Append ``len(names)`` rows (``embedded`` in the same order)."""
        if len(names) != len(embedded):
            raise KPRError(
                f"EmbeddingsWriter.add: {len(names)} names for {len(embedded)} embeddings"
            )
        for key in _TENSORS:
            array = np.ascontiguousarray(getattr(embedded, key).numpy())
            row = (array.shape[1:], array.dtype)
            if self._rows.setdefault(key, row) != row:
                raise KPRError(f"EmbeddingsWriter.add: {key} rows changed shape or type")
            if key not in self._files:
                self._files[key] = open(Path(self._tmp.name) / key, "wb")
            self._files[key].write(array.tobytes())
        self.names.extend(names)

    def close(self) -> Path:
        """Assemble the ``.npz`` at :attr:`path` (atomic rename) and remove the temporary files."""
        if not self.names:
            raise KPRError(f"{self.path}: nothing was embedded, no file written")
        for f in self._files.values():
            f.close()
        n = len(self.names)
        with (
            atomic_path(self.path) as tmp,
            zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf,
        ):
            for key in _TENSORS:
                shape, dtype = self._rows[key]
                with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array_header_2_0(
                        member,
                        {
                            "descr": np.lib.format.dtype_to_descr(dtype),
                            "fortran_order": False,
                            "shape": (n, *shape),
                        },
                    )
                    with open(Path(self._tmp.name) / key, "rb") as raw:
                        shutil.copyfileobj(raw, member, 1 << 20)
            with zf.open("names.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.array(self.names, dtype=str))
        self._tmp.cleanup()
        return self.path

    def discard(self) -> None:
        for f in self._files.values():
            f.close()
        self._tmp.cleanup()

    def __enter__(self) -> EmbeddingsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.discard()


def read_embeddings(path: str | os.PathLike[str]) -> tuple[list[str], Embeddings]:
    """Read ``kpr embed`` output: (names, :class:`~kpr.predictor.Embeddings` without part masks)."""
    import torch

    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in (*_TENSORS, "names") if k not in data.files]
            if missing:
                raise KPRError(f"{path}: not a kpr embeddings file (missing {missing})")
            arrays = {k: torch.from_numpy(data[k]) for k in _TENSORS}
            names = [str(n) for n in data["names"]]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise KPRError(f"{path}: cannot read embeddings ({exc})") from None
    return names, Embeddings(arrays["embeddings"], arrays["visibility"], arrays["prompted"])
