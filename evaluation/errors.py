"""Failure classes of an evaluation run, so a worker can record which kind of failure happened.

Each message says what to do about it. ``failure_class`` gives the short name to store.
"""


class EvaluationError(Exception):
    """Base class of every failure ``evaluate_checkpoint`` raises on purpose."""

    failure_class = "evaluation_error"


class CheckpointLoadError(EvaluationError):
    """The checkpoint folder could not be read or is not a supported VLM."""

    failure_class = "load_error"


class OutOfMemory(EvaluationError):
    """The device ran out of memory; retry with a smaller --batch-size or on a larger device."""

    failure_class = "out_of_memory"


class HarnessError(EvaluationError):
    """lmms-eval failed: unknown task name, broken task YAML, or an error while scoring."""

    failure_class = "harness_error"


class EnvironmentMismatch(EvaluationError):
    """A module the harness (or a task's code) imports is missing or is not the version it needs:
    the worker's Python environment differs from the lock.  Not the user's fault, and another try
    on the same worker fails the same way, so it is not retried."""

    failure_class = "environment_error"

    def __init__(self, module: str, error: BaseException, where: str):
        self.module = module
        super().__init__(
            f"{where} could not import the Python module {module!r} ({type(error).__name__}: {error}): this "
            f"worker's environment differs from the lock. Run `make install` on the worker (it installs exactly "
            f"requirements.txt) and restart it, then start the evaluation again. If the module is missing from the "
            f"lock itself, the task needs a dependency Frontier leaves out (requirements-excludes.txt): remove it "
            f"there and run `make lock`."
        )


class DatasetUnavailable(EvaluationError):
    """A task's dataset cannot be read here: missing from the dataset mirror (``evaluation.datasets``), or, for a
    task outside the catalog, not in the Hugging Face cache while offline."""

    failure_class = "dataset_unavailable"

    def __init__(self, task: str, reason: str, command: str | None = None):
        self.task = task
        self.command = command
        if command:
            advice = (
                f"Fill the dataset mirror: run `{command}` on a machine with access to the Hugging Face hub "
                f"(FRONTIER_DATASETS_DIR pointing at the shared mirror, or copy the folder it writes there); "
                f"`python -m evaluation datasets status` lists what is present."
            )
        else:
            advice = (
                "Download it into the Hugging Face cache on a machine with network access (and run with "
                "HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0), or evaluate the offline synthetic tasks instead."
            )
        super().__init__(f"dataset of task {task!r} is unavailable: {reason}. {advice}")


class EvaluationCancelled(EvaluationError):
    """``should_stop()`` asked to stop; raised between batches."""

    failure_class = "cancelled"
