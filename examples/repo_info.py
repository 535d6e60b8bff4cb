"""A flow with a cron schedule, tags, a description and a version label.

    python examples/repo_info.py
"""

from dockyard import flow


@flow(retries=2, retry_delay_seconds=5)
def get_repo_info(repo_name: str = "acme/dockyard"):
    """Report a few facts about a repository (offline stand-in for an API call)."""
    owner, _, name = repo_name.partition("/")
    stats = {"owner": owner, "name": name, "stars": len(name) * 7}
    print(f"{repo_name}: {stats['stars']} stars")
    return stats


if __name__ == "__main__":
    get_repo_info.serve(
        name="my-first-deployment",
        cron="* * * * *",
        tags=["testing", "tutorial"],
        description="Given a repository, logs statistics about it.",
        version="tutorial/deployments",
    )
