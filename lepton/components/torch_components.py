"""Built-in torch components (MLP, small CNN) with a deterministic CPU
training loop; weights saved as safetensors, shapes as JSON. torch is
imported only when one of these is used (the `torch` extra)."""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lepton.components.base import Component
from lepton.components.interface import Interface, WiringError, proba, require
from lepton.errors import IntegrityError

WEIGHTS = "weights.safetensors"
SHAPES = "shapes.json"


class TorchParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    epochs: int = Field(20, ge=1, le=10_000)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, ge=1)
    weight_decay: float = Field(0.0, ge=0)


# torch's RNG, thread count and determinism switch are process-wide: two
# trainings in threads of one process (a thread task runner, a Dask worker's
# threads) would change them under each other, so they take turns.
_PROCESS_WIDE = threading.Lock()


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[Any]:
    """Seeded, deterministic, single-threaded torch; global settings restored
    after. One at a time per process (see _PROCESS_WIDE)."""
    import torch

    with _PROCESS_WIDE:
        threads = torch.get_num_threads()
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        torch.manual_seed(seed)
        try:
            yield torch.Generator().manual_seed(seed)
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
            torch.set_num_threads(threads)


class TorchClassifier(Component):
    """A torch module trained with Adam and cross-entropy; outputs softmax."""

    Params = TorchParams
    supervised = True
    final = True
    accepts: tuple[str, ...] = ("vector",)

    def __init__(self, params: BaseModel) -> None:
        super().__init__(params)
        self.module: Any = None
        self.shapes: dict[str, Any] = {}
        self.n_classes: int | None = None  # known from its wiring

    def build(self, in_shape: tuple[int, ...], n_classes: int) -> Any:
        raise NotImplementedError

    def output(self, given: Interface, classes: tuple[str, ...], name: str, upstream: str) -> Interface:
        require(given, self.accepts, upstream=upstream, component=name, wants=self.wants())
        self.n_classes = len(classes)
        return proba(classes)

    def wants(self) -> str:
        return "a numeric feature vector"

    def fit(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        import torch
        from torch import nn

        assert y is not None
        p = self.params
        # one output per class of the wiring, seen in training or not
        n_classes = max(self.n_classes or 0, int(y.max()) + 1)
        self.shapes = {"in_shape": list(x.shape[1:]), "n_classes": n_classes}
        with deterministic(seed) as gen:
            self.module = self.build(tuple(x.shape[1:]), n_classes)
            opt = torch.optim.Adam(self.module.parameters(), lr=p.lr, weight_decay=p.weight_decay)
            loss_fn = nn.CrossEntropyLoss()
            xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
            self.module.train()
            for _ in range(p.epochs):
                order = torch.randperm(len(xt), generator=gen)
                for start in range(0, len(xt), p.batch_size):
                    idx = order[start : start + p.batch_size]
                    opt.zero_grad()
                    loss = loss_fn(self.module(xt[idx]), yt[idx])
                    loss.backward()
                    opt.step()
        self.module.eval()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            logits = self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
            return torch.softmax(logits, dim=1).numpy()

    def n_params(self) -> int:
        return int(sum(p.numel() for p in self.module.parameters()))

    def save(self) -> dict[str, bytes]:
        from safetensors.torch import save

        state = {k: v.contiguous() for k, v in self.module.state_dict().items()}
        return {WEIGHTS: save(state), SHAPES: json.dumps(self.shapes, sort_keys=True).encode()}

    def load(self, files: dict[str, bytes]) -> None:
        from safetensors.torch import load

        try:
            self.shapes = json.loads(files[SHAPES])
            self.module = self.build(tuple(self.shapes["in_shape"]), int(self.shapes["n_classes"]))
            self.module.load_state_dict(load(files[WEIGHTS]), strict=True)
        except Exception as e:  # noqa: BLE001 - SafetensorError has no public base class
            raise IntegrityError(f"{self.type} state is not loadable: {e}") from e
        self.module.eval()


class MLPParams(TorchParams):
    hidden: tuple[int, ...] = Field((64,), description="hidden layer widths")


class MLP(TorchClassifier):
    type = "torch.mlp"
    Params = MLPParams

    def build(self, in_shape: tuple[int, ...], n_classes: int) -> Any:
        from torch import nn

        layers: list[Any] = []
        width = math.prod(in_shape)
        for h in self.params.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_classes))
        return nn.Sequential(nn.Flatten(), *layers)


class CNNParams(TorchParams):
    channels: int = Field(16, ge=1, le=512)


class SmallCNN(TorchClassifier):
    type = "torch.small_cnn"
    Params = CNNParams
    accepts = ("image",)

    def wants(self) -> str:
        return "an image tensor [channels x height x width]"

    def output(self, given: Interface, classes: tuple[str, ...], name: str, upstream: str) -> Interface:
        produced = super().output(given, classes, name, upstream)
        # two 2x2 max-pools (after size-keeping 3x3 convolutions): each side
        # must be at least 4 for the second pool to have an output
        if given.shape is not None and (len(given.shape) != 3 or min(given.shape[1:]) < 4):
            raise WiringError(
                f"component '{name}' pools each side of its image by 4 but '{upstream}' "
                f"produces {given}: it needs [channels x height x width], height and width at least 4"
            )
        return produced

    def build(self, in_shape: tuple[int, ...], n_classes: int) -> Any:
        from torch import nn

        c, h, w = in_shape
        k = self.params.channels
        return nn.Sequential(
            nn.Conv2d(c, k, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(k, 2 * k, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * k * (h // 4) * (w // 4), n_classes),
        )


class ReshapeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    shape: tuple[int, ...] = Field(..., min_length=1, description="e.g. [1, 8, 8]")


class Reshape(Component):
    """Reshape a flat feature vector into an image (no fitted state)."""

    type = "reshape"
    Params = ReshapeParams

    def output(self, given: Interface, classes: tuple[str, ...], name: str, upstream: str) -> Interface:
        require(given, ("vector",), upstream=upstream, component=name, wants="a feature vector")
        shape = tuple(self.params.shape)
        if given.size is not None and given.size != math.prod(shape):
            raise WiringError(
                f"component '{name}' reshapes to {'x'.join(map(str, shape))} "
                f"({math.prod(shape)} values) but '{upstream}' produces {given}"
            )
        if len(shape) not in (1, 3):
            raise WiringError(
                f"component '{name}' reshapes '{upstream}' to {'x'.join(map(str, shape))}: a shape "
                "must be [n] (a vector) or [channels, height, width] (an image)"
            )
        kind = "image" if len(shape) == 3 else "vector"
        return Interface(kind=kind, dtype=given.dtype, shape=shape)

    def fit(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        return None

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), *self.params.shape)

    def save(self) -> dict[str, bytes]:
        return {}

    def load(self, files: dict[str, bytes]) -> None:
        return None


TORCH_COMPONENTS: list[type[Component]] = [MLP, SmallCNN, Reshape]
