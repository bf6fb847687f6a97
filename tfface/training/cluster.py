"""TF_CONFIG for MultiWorkerMirroredStrategy: the same worker list on every host, each its own index.

Worker 0 is the chief (it writes logs, checkpoints and the model). Every worker must start the same
command; training begins once all have connected.
"""

from __future__ import annotations

import json

from tfface.errors import TffaceError


def worker_tf_config(workers: list[str], index: int) -> str:
    """The TF_CONFIG JSON for worker `index` of `workers` ("host:port" each)."""
    bad = [w for w in workers if w.rpartition(":")[0] == "" or not w.rpartition(":")[2].isdigit()]
    if not workers or bad:
        raise TffaceError(f"--workers must be HOST:PORT,HOST:PORT,... Received: {','.join(workers) or '(none)'}")
    if not 0 <= index < len(workers):
        raise TffaceError(f"--worker-index must be in 0..{len(workers) - 1}. Received: {index}")
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
