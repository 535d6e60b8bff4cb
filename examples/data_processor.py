"""A flow on an instance method: configuration set once, used by every run.

    python examples/data_processor.py
"""

from dockyard import flow


class DataProcessor:
    """Processor configured when it is created."""

    def __init__(self, environment: str):
        if environment == "prod":
            self.api_url = "https://api.example.com"
            self.batch_size = 1000
        else:
            self.api_url = "https://staging.example.com"
            self.batch_size = 100

    @flow(log_prints=True)
    def process_batch(self, batch_id: str):
        """Process one batch with the instance's settings."""
        print(f"Processing batch {batch_id}")
        print(f"API URL: {self.api_url}")
        print(f"Batch size: {self.batch_size}")
        return {"batch": batch_id, "size": self.batch_size}


# A module-level instance, so `dockyard serve examples/data_processor.py:processor.process_batch`
# and dockyard.yaml can name it too.
processor = DataProcessor(environment="staging")

if __name__ == "__main__":
    DataProcessor(environment="staging").process_batch.serve(
        name="batch-processor", parameters={"batch_id": "demo"}, interval=30
    )
