"""What runs inside a flow run: contexts, tasks, futures, task runners, caching, run logs.

Used by the flow-run child (``execution.child``) and by a flow called in a plain script
(``Flow.__call__``); nothing here imports the scheduler, the store or the webserver.
"""
