"""``jobline bench``: the benchmarks (queue, pipelines, http and kafka targets).

Nothing else in jobline imports these modules; the command loads them when it runs.
"""
