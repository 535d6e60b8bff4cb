"""Pure domain: flow and deployment definitions, schedules, policies, states, planning.

Nothing here reads a clock, does I/O, starts a process or touches the store; modules
import only each other and ``dockyard.errors``.
"""
