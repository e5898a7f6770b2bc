"""The benchmark's flow-controlled job type, loaded by its worker processes too.

``jobline bench --limit N`` starts its workers with ``JOBLINE_EXTRA_APPS=jobline.bench``
and ``JOBLINE_BENCH_LIMIT=N``, so they define the same ``bench_limited`` type (a limit is
part of a type's code) and run its claim.
"""

from __future__ import annotations

import os

from jobline.core.flow import Limit
from jobline.jobtypes import job

LIMIT = int(os.environ.get("JOBLINE_BENCH_LIMIT") or 1)


@job(name="bench_limited", limit=Limit(LIMIT, key="k"))
async def bench_limited(k: int = 0) -> None:
    """A noop under ``Limit(JOBLINE_BENCH_LIMIT, key="k")``."""
