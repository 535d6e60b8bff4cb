# Source: PrefectHQ/prefect, docs/v3/how-to-guides/deployments/create-schedules.mdx, code block: Schedule parameters in Python (send_email_flow.py)
#   at commit 0519a63192b704e7437dc5467c3f5b1ff2850c69
#   https://github.com/PrefectHQ/prefect/blob/0519a63192b704e7437dc5467c3f5b1ff2850c69/docs/v3/how-to-guides/deployments/create-schedules.mdx
# License: Apache-2.0. Copyright Prefect Technologies, Inc.
# Imports changed from prefect to dockyard; nothing else changed.
from dockyard import flow
from dockyard.schedules import Cron

@flow
def send_email(to: str, message: str = "Stop goofing off!"):
    print(f"Sending email to {to} with message: {message}")

send_email.serve(
  name="my-flow",
  schedules=[
    Cron(
      "0 8 * * *",
      slug="jim-email",
      parameters={"to": "jim.halpert@dundermifflin.com"}
    ),
    Cron(
      "5 8 * * *",
      slug="dwight-email",
      parameters={
        "to": "dwight.schrute@dundermifflin.com",
        "message": "Stop goofing off! You're assistant _to_ the regional manager!"
      }
    )
  ]
)
