# Source: PrefectHQ/examples, flows/whoami.py
#   at commit 3f64f734e1f6b9f0e062bf0816b2fc5f59065672
#   https://github.com/PrefectHQ/examples/blob/3f64f734e1f6b9f0e062bf0816b2fc5f59065672/flows/whoami.py
# License: Apache-2.0 (as PrefectHQ publishes its example repositories; the LICENSE file was not in the index read). Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
# /// script
# dependencies = ["prefect"]
# ///

"""
This flow will log information about the current environment. Use it to
diagnose issues with your environment, especially when deploying to
infrastructure.

The flow has no dependencies and can be deployed from its public source:

```python
from prefect import flow

flow.from_source(
    source="https://github.com/PrefectHQ/examples.git",
    entrypoint=flows/whoami.py:whoami,
).deploy(
    name="default",
    work_pool_name="my-work-pool",
)
```
"""

import os
import platform
import socket
import sys

import dockyard as prefect


@prefect.flow
def whoami():
    logger = prefect.get_run_logger()

    data = {
        "Platform": platform.machine(),
        "OS": platform.version(),
        "Python": sys.version,
        "Prefect": prefect.__version__,
        "Hostname": socket.gethostname(),
        "User": os.getenv("USER"),
        "CWD": os.getcwd(),
        "CPUs": os.cpu_count(),
        "PID": os.getpid(),
        "UID": os.getuid(),
    }

    for key, value in data.items():
        logger.info(f"{key}: {value}")


if __name__ == "__main__":
    whoami()
