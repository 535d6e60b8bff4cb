# Source: PrefectHQ/prefect, docs/v3/develop/write-tasks.mdx, code block: Example task (repo_info.py)
#   at commit 259e8686b7c37f8ac02e3d6c8c520b290e08560a
#   https://github.com/PrefectHQ/prefect/blob/259e8686b7c37f8ac02e3d6c8c520b290e08560a/docs/v3/develop/write-tasks.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed (offline HTTP answers: tests/corpus/offline).
import httpx
from dockyard import flow, task
from typing import Optional


@task
def get_url(url: str, params: Optional[dict[str, any]] = None):
    response = httpx.get(url, params=params)
    response.raise_for_status()
    return response.json()


@flow(retries=3, retry_delay_seconds=5, log_prints=True)
def get_repo_info(repo_name: str = "PrefectHQ/prefect"):
    url = f"https://api.github.com/repos/{repo_name}"
    repo_stats = get_url(url)
    print(f"{repo_name} repository statistics 🤓:")
    print(f"Stars 🌠 : {repo_stats['stargazers_count']}")
    print(f"Forks 🍴 : {repo_stats['forks_count']}")


if __name__ == "__main__":
    get_repo_info()
