"""A preprocessing cache: decode and resize (and window) each file once, then read uint8 arrays from a
memory-mapped store every epoch.

One store per set of preprocessing parameters (their hash names the folder). Entries are keyed by the
file's content (BLAKE2b); a file whose size, modification and change times and inode match what the index
recorded is not hashed again. A changed file or new parameters miss the cache and are decoded again; the
store is then rewritten with the old entries copied over. The data file is written in full under a fresh
name before the index that points at it replaces the old one, so a crash at any point leaves the previous
store intact. Processes sharing a cache (DDP ranks, tuning workers, several predicts) read it under a shared
lock and extend it under an exclusive one: one decodes, the others wait and reuse what it wrote.
A decoder may return a small JSON-able dict beside its array (a DICOM's original size, say); it is kept in
the index and read back with the slot.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from radlab.core.errors import RadlabDataError
from radlab.core.io.atomic import atomic_write_text
from radlab.core.io.inputs import require_regular
from radlab.core.io.locks import locked

if TYPE_CHECKING:
    from radlab.core.io.images import ColourMode
    from radlab.core.transforms.image import ResizeMode

INDEX = "index.json"
Decoder = Callable[[str], "np.ndarray | tuple[np.ndarray, dict[str, Any]]"]
"""path -> uint8 array, or (array, a small JSON-able dict kept beside it in the index)."""


def content_key(path: str | Path) -> str:
    """BLAKE2b-128 of a file's bytes."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def params_key(params: dict[str, Any]) -> str:
    return hashlib.blake2b(json.dumps(params, sort_keys=True).encode(), digest_size=8).hexdigest()


class _Decode(Dataset):
    def __init__(self, paths: Sequence[str], decode: Decoder) -> None:
        self.paths, self.decode = paths, decode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, Any, str]:
        try:
            return index, self.decode(self.paths[index]), ""
        except RadlabDataError as exc:
            return index, None, str(exc)


def _identity(item: Any) -> Any:
    return item


def file_identity(stat: os.stat_result) -> list[int]:
    """What must be unchanged for a file not to be hashed again: size, modification and change times, inode.
    The change time moves with any rewrite, even one that restores the modification time (cp -p, rsync -t)."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _not_cacheable(path: str) -> RadlabDataError:
    """Why a file got a "missing:" key: not there, not a regular file, or not readable."""
    try:
        require_regular(path)
    except RadlabDataError as error:
        return error
    return RadlabDataError(path, "no such file" if not os.path.exists(path) else "permission denied")


class PreprocessCache:
    """uint8 arrays of one `shape` per file, for one parameter set, under `folder/prep-<hash>/`."""

    def __init__(self, folder: str | Path, params: dict[str, Any], shape: Sequence[int]) -> None:
        self.params = dict(params)
        self.shape = tuple(int(s) for s in shape)
        self.root = Path(folder) / f"prep-{params_key({**self.params, 'shape': self.shape})}"
        self._index: dict[str, Any] | None = None
        self._data: np.ndarray | None = None
        self.meta: list[dict[str, Any]] = []  # per path of the last ensure(): what the decoder returned beside

    def _load_index(self) -> dict[str, Any]:
        path = self.root / INDEX
        if path.is_file():
            try:
                index = json.loads(path.read_text(encoding="utf-8"))
                if tuple(index["shape"]) == self.shape and (self.root / index["data"]).is_file():
                    return index
            except (ValueError, KeyError, TypeError):
                pass
        return {"shape": list(self.shape), "data": None, "slots": {}, "errors": {}, "files": {}, "meta": {}}

    def keys(self, paths: Sequence[str | Path], known: dict[str, Any] | None = None) -> list[str]:
        """Content keys of `paths`; files unchanged since the index saw them (size, times, inode) are not
        re-read. A file that is missing, unreadable or not a regular file (a FIFO would block the hash) gets a
        key of its own that no store holds ("missing:<path>"): its decoder then reports it."""
        return self._keys(paths, (known or self._load_index())["files"])[0]

    def _keys(self, paths: Sequence[str | Path], files: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """(each path's key, path -> [*identity, key] for each regular file: what an index records)."""
        found, seen_now = [], {}
        for path in map(str, paths):
            try:
                stat = os.stat(path)
                seen = files.get(path)
                if not S_ISREG(stat.st_mode):
                    found.append(f"missing:{path}")
                    continue
                key = seen[4] if seen and seen[:4] == file_identity(stat) else content_key(path)
            except OSError:
                found.append(f"missing:{path}")
                continue
            found.append(key)
            seen_now[path] = [*file_identity(stat), key]
        return found, seen_now

    def ensure(self, paths: Sequence[str | Path], decode: Decoder, workers: int = 0) -> tuple[np.ndarray, list[str]]:
        """(slot per path, error per path): decodes what the store lacks, then maps the store.

        `decode(path)` returns a uint8 array of `shape` (or (array, dict): `self.meta` then holds each path's
        dict) or raises RadlabDataError (the error is cached too, so a corrupt file is reported every time but
        decoded once)."""
        with locked(self.root, shared=True):  # no writer swaps the store while its index is read and mapped
            index, keys, missing, seen = self._plan(paths, {})
            if not missing:
                self._map(index)
        if missing:
            with locked(self.root):  # one writer; the others (DDP ranks, other predicts) wait, then reuse it
                index, keys, missing, seen = self._plan(paths, seen)  # files hashed above are not hashed again
                if missing:
                    index = self._extend(index, missing, seen, decode, workers)
                self._map(index)
        slots = np.array([index["slots"].get(k, -1) for k in keys], dtype=np.int64)
        errors = [index["errors"].get(k, "") if s < 0 else "" for k, s in zip(keys, slots, strict=True)]
        stored_meta = index.get("meta", {})
        self.meta = [stored_meta.get(k, {}) for k in keys]
        for k, (key, path) in enumerate(zip(keys, map(str, paths), strict=True)):
            if key.startswith("missing:"):
                errors[k] = str(_not_cacheable(path))
        return slots, errors

    def _plan(
        self, paths: Sequence[str | Path], seen: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str], list[str], dict[str, Any]]:
        """(the index as it stands, each path's key, the keys the store lacks, what was learnt of each file);
        `seen` is what an earlier plan learnt, trusted while a file's identity is unchanged."""
        index = self._load_index()
        keys, learnt = self._keys(paths, {**index["files"], **seen})
        missing = sorted({k for k in keys if k not in index["slots"] and k not in index["errors"]})
        return index, keys, missing, learnt

    def _map(self, index: dict[str, Any]) -> None:
        self._index = index
        self._data = np.load(self.root / index["data"], mmap_mode="r", allow_pickle=False) if index["data"] else None

    def _extend(self, index, missing, seen, decode, workers) -> dict[str, Any]:
        wanted = set(missing)
        todo: dict[str, str] = {}
        for path, (*_, key) in seen.items():
            if key in wanted:
                todo.setdefault(key, path)
        old = np.load(self.root / index["data"], mmap_mode="r", allow_pickle=False) if index["data"] else None
        count = (0 if old is None else len(old)) + len(todo)
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"data-{uuid.uuid4().hex[:12]}.npy"
        data = np.lib.format.open_memmap(self.root / name, mode="w+", dtype=np.uint8, shape=(count, *self.shape))
        if old is not None:
            data[: len(old)] = old
        slots, errors, meta = dict(index["slots"]), dict(index["errors"]), dict(index.get("meta", {}))
        next_slot = 0 if old is None else len(old)
        order = list(todo.items())
        loader = DataLoader(
            _Decode([p for _, p in order], decode),
            batch_size=None,
            num_workers=workers,
            collate_fn=_identity,
            generator=torch.Generator().manual_seed(0),  # leaves the global RNG (and so training) untouched
        )
        for i, decoded, error in loader:
            key = order[i][0]
            if error:
                errors[key] = error
                continue
            array = decoded
            if isinstance(decoded, tuple):
                array, meta[key] = decoded
            data[next_slot] = np.asarray(array, dtype=np.uint8).reshape(self.shape)
            slots[key] = next_slot
            next_slot += 1
        data.flush()
        del data
        files = {**index["files"], **seen}
        new = {"shape": list(self.shape), "data": name, "slots": slots, "errors": errors, "files": files, "meta": meta}
        new["params"] = self.params
        atomic_write_text(self.root / INDEX, json.dumps(new))
        for stale in self.root.glob("data-*.npy"):
            if stale.name != name:
                stale.unlink(missing_ok=True)
        return new

    def array(self, slot: int) -> np.ndarray:
        """The cached array in `slot` (a view of the memory map)."""
        if self._data is None:
            raise RuntimeError("call ensure() first")
        return self._data[slot]


class ResizedImage:
    """decode(path) for images: read (PIL, one colour mode) and resize as radlab's eval transform does,
    -> (S, S, C) uint8. Picklable, for loader workers."""

    def __init__(self, size: int, resize: ResizeMode = "stretch", colour: ColourMode = "L") -> None:
        from radlab.core.transforms import build_image_transform

        self.params = {"kind": "image", "size": size, "resize": resize, "colour": colour, "version": 1}
        self.transform = build_image_transform(size, resize=resize)
        self.colour = colour
        channels = 3 if colour == "RGB" else 1
        self.shape = (size, size, channels)

    def __call__(self, path: str) -> np.ndarray:
        from radlab.core.io.images import read_image

        image = self.transform.pipeline(image=read_image(path, self.colour))["image"]
        return image.reshape(self.shape)


def cached_image_dataset(
    paths: Sequence[str | Path],
    cache_dir: str | Path,
    size: int,
    resize: ResizeMode = "stretch",
    augment: Callable[[np.ndarray], torch.Tensor] | None = None,
    workers: int = 0,
) -> CachedDataset:
    """A CachedDataset of images resized like `build_image_transform(size, resize=...)`'s eval transform."""
    decode = ResizedImage(size, resize)
    cache = PreprocessCache(cache_dir, decode.params, decode.shape)
    return CachedDataset(paths, cache, decode, augment, workers)


class CachedDataset(Dataset):
    """Items {"index", "image", "error"} like ImageFileDataset's, read from a PreprocessCache.

    Stored arrays are (H, W, C) uint8; `augment` (random training transforms, array -> (C, H, W) tensor) runs
    on each read when given, else the array is only transposed."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        cache: PreprocessCache,
        decode: Decoder,
        augment: Callable[[np.ndarray], torch.Tensor] | None = None,
        workers: int = 0,
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.cache = cache
        self.augment = augment
        self.slots, self.errors = cache.ensure(self.paths, decode, workers)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        slot = int(self.slots[index])
        if slot < 0:
            height, width, channels = self.cache.shape
            blank = torch.zeros((channels, height, width), dtype=torch.uint8)
            return {"index": index, "image": blank, "error": self.errors[index]}
        array = np.array(self.cache.array(slot))
        if self.augment is not None:
            image = self.augment(array)
        else:
            image = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
        return {"index": index, "image": image, "error": ""}
