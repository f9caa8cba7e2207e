"""The training stage's output layout: every file that training, evaluation and the demo
experiment write under their output folders, and read back.

Paths are plain strings joined with "/" (no I/O), like schemas.layout for the pipeline's
outputs; the names relative to a report folder are what report.md links to.
"""

from dataclasses import dataclass

PARTIAL_SUFFIX = ".partial"  # a file or folder being written; renamed into place when complete
CHECKPOINT_PREFIX = "step-"
CHECKPOINT_DIGITS = 8
# Complete checkpoints only: a partial one never has its final name.
CHECKPOINT_GLOB = CHECKPOINT_PREFIX + "[0-9]" * CHECKPOINT_DIGITS
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PLOTS_DIR = "plots"
PR_CURVES_PNG = "pr_curves.png"
RADIUS_BY_DEPTH_PNG = "radius_by_depth.png"
RETRIEVAL_GRID_PNG = "retrieval_grid.png"
TRAIN_DIR = "train"  # an experiment model's training.train output
EVAL_DIR = "eval"  # an experiment model's evaluation report


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def partial(path: str) -> str:
    """The name a file or folder is written under before it is renamed to ``path``."""
    return path + PARTIAL_SUFFIX


def plot_name(png: str) -> str:
    """A plot relative to its report folder: plots/{png}."""
    return f"{PLOTS_DIR}/{png}"


@dataclass(frozen=True)
class TrainOutput:
    """Files under training.train's --output (a local folder shared by all ranks)."""

    root: str

    @property
    def config_json(self) -> str:
        """The resolved config of the run."""
        return _join(self.root, "config.json")

    @property
    def metrics_jsonl(self) -> str:
        """One JSON object per logged step."""
        return _join(self.root, "metrics.jsonl")

    @property
    def tensorboard_dir(self) -> str:
        """TensorBoard event files of the metrics (training.scalars)."""
        return _join(self.root, "tensorboard")

    @property
    def encoder(self) -> str:
        """The final encoder (training.encoders.save_encoder)."""
        return _join(self.root, "encoder.safetensors")

    @property
    def checkpoints_dir(self) -> str:
        return _join(self.root, "checkpoints")

    def checkpoint(self, step: int) -> str:
        """checkpoints/step-NNNNNNNN: the checkpoint folder after ``step`` updates."""
        return _join(self.checkpoints_dir, f"{CHECKPOINT_PREFIX}{step:0{CHECKPOINT_DIGITS}d}")


@dataclass(frozen=True)
class CheckpointFiles:
    """The files of one checkpoint folder."""

    root: str

    @property
    def model(self) -> str:
        """Encoder and loss parameters (safetensors)."""
        return _join(self.root, "model.safetensors")

    @property
    def state(self) -> str:
        """Optimizer, step, data and RNG states (torch.save of tensors and plain containers)."""
        return _join(self.root, "state.pt")


@dataclass(frozen=True)
class EvalOutput:
    """Files under training.evaluate's --output."""

    root: str

    @property
    def report_json(self) -> str:
        return _join(self.root, REPORT_JSON)

    @property
    def report_md(self) -> str:
        return _join(self.root, REPORT_MD)

    @property
    def default_cache_dir(self) -> str:
        """The embedding cache when --cache_dir is not given."""
        return _join(self.root, "cache")

    def plot(self, png: str) -> str:
        return _join(self.root, plot_name(png))


@dataclass(frozen=True)
class EmbeddingCacheEntry:
    """One entry of the embedding cache: {cache_dir}/{key}/ (any fsspec URL)."""

    root: str

    @classmethod
    def of(cls, cache_dir: str, key: str) -> "EmbeddingCacheEntry":
        return cls(_join(cache_dir, key))

    @property
    def crops(self) -> str:
        """The crop table (one row per embedded crop), Parquet."""
        return _join(self.root, "crops.parquet")

    @property
    def embeddings(self) -> str:
        """(N, D) float32, row i = crop i (numpy .npy)."""
        return _join(self.root, "embeddings.npy")

    @property
    def meta(self) -> str:
        """The entry's description, written last: the completion marker."""
        return _join(self.root, "meta.json")


def seed_run(model: str, seed: int) -> str:
    """An experiment run's folder under experiment/: {model}/seed-{seed}."""
    return f"{model}/seed-{seed}"


@dataclass(frozen=True)
class ExperimentOutput:
    """Files of the demo experiment, under the pipeline output root it reads from."""

    root: str  # the pipeline output root (--output)

    @property
    def folder(self) -> str:
        return _join(self.root, "experiment")

    def train_dir(self, run: str) -> str:
        """{run}/train: a trained model's training.train output (run: see seed_run)."""
        return _join(self.folder, run, TRAIN_DIR)

    def eval_dir(self, run: str) -> str:
        """{run}/eval: a model's evaluation report."""
        return _join(self.folder, run, EVAL_DIR)

    @property
    def cache_dir(self) -> str:
        """The embedding cache shared by the experiment's evaluations."""
        return _join(self.folder, "cache")

    @property
    def results_json(self) -> str:
        return _join(self.folder, "results.json")

    @property
    def results_md(self) -> str:
        return _join(self.folder, "results.md")

    @property
    def pr_curves_png(self) -> str:
        return _join(self.folder, PR_CURVES_PNG)
