# Source: PrefectHQ/prefect, docs/v3/develop/task-runners.mdx, code block: Nested mapped tasks
#   at commit 22df360e7dabb73e1679671f14314c5ba73d1b2b
#   https://github.com/PrefectHQ/prefect/blob/22df360e7dabb73e1679671f14314c5ba73d1b2b/docs/v3/develop/task-runners.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
import re

from dockyard import flow, task
from dockyard.futures import wait

def count_words(text: str) -> int:
    """Count the number of words in a text."""
    return len(text.split())

def extract_emails(text: str) -> list[str]:
    return re.findall(r"[\w.+-]+@[\w-]+\.[\w.-]+", text)

@task
def analyze_texts(texts: list[str]) -> dict[str, list[int | list[str]]]:
    futures = {
        op.__name__: task(op).map(texts) for op in [count_words, extract_emails]
    }
    wait([f for futs in futures.values() for f in futs])
    return {name: [f.result() for f in futs] for name, futs in futures.items()}

@flow
def run_text_analysis():
    """Analyze a batch of social media posts with multiple operations."""
    results = analyze_texts(
        texts=[
            "Just visited #Paris! Contact me at visitor@example.com #travel #vacation",
            "Working on my new #project. Reach out at developer@example.com if interested!",
            "Happy to announce our company event #celebration #milestone email: events@company.org",
        ]
    )
    print("\nAnalysis Results:")
    print(f"  Word counts: {results['count_words']}")
    print(f"  Extracted emails: {results['extract_emails']}\n")
    return results

run_text_analysis()
