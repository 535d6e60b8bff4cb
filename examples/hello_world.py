"""The first flow: served every 60 seconds with tags and default parameters.

    dockyard serve examples/hello_world.py:hello_world --interval 2
or  python examples/hello_world.py
"""

from dockyard import flow


@flow(log_prints=True)
def hello_world(name: str = "world", goodbye: bool = False):
    print(f"Hello {name} from dockyard!")
    if goodbye:
        print(f"Goodbye {name}!")


if __name__ == "__main__":
    # Creates the deployment and serves it until Ctrl+C / SIGTERM.
    hello_world.serve(
        name="my-first-deployment",
        tags=["onboarding"],
        parameters={"goodbye": True},
        interval=60,
    )
