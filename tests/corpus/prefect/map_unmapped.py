# Source: PrefectHQ/prefect, docs/v3/develop/task-runners.mdx, code block: Using the unmapped annotation
#   at commit 22df360e7dabb73e1679671f14314c5ba73d1b2b
#   https://github.com/PrefectHQ/prefect/blob/22df360e7dabb73e1679671f14314c5ba73d1b2b/docs/v3/develop/task-runners.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
from dockyard import flow, task, unmapped

@task
def sum_plus(x, static_iterable):
    return x + sum(static_iterable)

@flow
def sum_it(numbers, static_iterable):
    futures = sum_plus.map(numbers, unmapped(static_iterable))
    return futures.result()

resulting_sum = sum_it([4, 5, 6], [1, 2, 3])
assert resulting_sum == [10, 11, 12]
